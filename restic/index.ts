export * from "./errors.js";
export * from "./options.js";
export * from "./redact.js";
export * from "./restic.js";
export * from "./types.js";
export * from "./version.js";
export { backupFlags, backupPathArgs } from "./args.js";
export { backupSummary, backupWarnings, jsonLines, progressKey, resticDetail, statusReader } from "./output.js";
