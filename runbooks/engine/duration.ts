// Durations as runbooks write them and reports print them: one implementation, in util/.
export { MAX_DURATION_TEXT, formatDuration, parseDuration } from "../../util/duration.js";
