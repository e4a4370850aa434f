// Durations as runbooks write them and reports print them: one implementation, in util/.
export { formatDuration, parseDuration } from "../../util/duration.js";
