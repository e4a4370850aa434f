// The DR engine reports through the one progress display of dcctl.
export { plainProgress, progressFor, silentProgress, terminalProgress, type Progress } from "../../util/progress.js";
