export * from "./errors.js";
export * from "./redact.js";
export * from "./restic.js";
export * from "./types.js";
export * from "./version.js";
