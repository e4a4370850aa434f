/**
 * `standby`: the secondary as it runs every day. `active`: after failover, with the application tier brought up.
 * `drill`: standby plus drill copies of the standby databases and of the application tier on the isolated drill
 * network, for a DR drill that must not touch anything in service.
 */
export type DrMode = "standby" | "active" | "drill";
export const DR_MODES: readonly DrMode[] = ["standby", "active", "drill"];
