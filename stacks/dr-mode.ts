/** `standby`: the secondary as it runs every day. `active`: after failover, with the application tier brought up. */
export type DrMode = "standby" | "active";
export const DR_MODES: readonly DrMode[] = ["standby", "active"];
