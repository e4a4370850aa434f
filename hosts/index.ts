export * from "./connect.js";
export * from "./executor.js";
export * from "./known-hosts.js";
export * from "./local.js";
export * from "./quote.js";
export * from "./ssh.js";
