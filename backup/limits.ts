import { MAX_DURATION_TEXT, parseDuration } from "../util/duration.js";

/**
 * How long restic may take at a site before it is stopped, the failure recorded and notified: the `limits:` section
 * of the repositories file (backup/repositories.ts). A backup job's own stall limit is its policy's stallTimeout
 * (backup/policies.ts); these bound what is not a job: listings, and the cycle's replicate, prune and verify.
 */
export interface SiteLimits {
  /** A snapshot listing, lookup or forget must answer within this. */
  listingMs: number;
  /** replicate (restic copy) and prune: stopped when their progress has not changed for this long. */
  stallMs: number;
  /** The whole of `backup replicate`. */
  replicateMs: number;
  /** The whole of `backup prune` (forget by retention, then prune). */
  pruneMs: number;
  /** The whole of `backup verify`: restic check shows no progress, so only this bounds it. */
  verifyMs: number;
}

/**
 * Long enough for a healthy repository of many snapshots on a slow link, short enough that a lost site shows as a
 * failure within the hour rather than as a job that never ends; restic prints a progress line every 5 s, so a stall of
 * minutes is no progress at all.
 */
export const DEFAULT_LIMITS: SiteLimits = {
  listingMs: 2 * 60_000,
  stallMs: 10 * 60_000,
  replicateMs: 6 * 3_600_000,
  pruneMs: 6 * 3_600_000,
  verifyMs: 12 * 3_600_000,
};

/** The keys of the section as written, with the field each fills. */
const KEYS = { listing: "listingMs", stall: "stallMs", replicate: "replicateMs", prune: "pruneMs", verify: "verifyMs" } as const satisfies Record<string, keyof SiteLimits>;

export type RawLimits = Partial<Record<keyof typeof KEYS, string | number>>;

/** What each key bounds, and its default as written (DEFAULT_LIMITS): for the configuration reference. */
const ABOUT: Record<keyof typeof KEYS, { default: string; description: string }> = {
  listing: { default: "2m", description: "A snapshot listing, lookup or forget answers within this." },
  stall: { default: "10m", description: "replicate and prune are stopped when restic's progress (printed every 5 s) has not changed this long." },
  replicate: { default: "6h", description: "The copy of `backup replicate`, in all." },
  prune: { default: "6h", description: "forget + prune, in all." },
  verify: { default: "12h", description: "restic check and the size after it, in all (check shows no progress, so only this bounds it)." },
};

/** The section's schema: durations as people write them (90s, 10m, 6h) or seconds; parsed by siteLimits. */
export const LIMITS_SCHEMA = {
  type: "object",
  additionalProperties: false,
  description: "How long restic may take at this site before it is stopped, recorded and notified. A duration (90s, 10m, 6h) or seconds.",
  properties: Object.fromEntries(Object.entries(ABOUT).map(([k, about]) => [k, { type: ["string", "number"], ...about }])),
} as const;

/** The limits with defaults filled in, and each value that is not a duration, with its path for a file:line. */
export function siteLimits(raw: RawLimits | undefined): { value: SiteLimits; problems: { path: string[]; message: string }[] } {
  const value = { ...DEFAULT_LIMITS };
  const problems: { path: string[]; message: string }[] = [];
  for (const [key, field] of Object.entries(KEYS) as [keyof typeof KEYS, keyof SiteLimits][]) {
    const given = raw?.[key];
    if (given === undefined) continue;
    const ms = parseDuration(given);
    if (ms === undefined) problems.push({ path: ["limits", key], message: `limits.${key}: "${given}" is not a duration (e.g. 90s, 10m, 6h; at most ${MAX_DURATION_TEXT})` });
    else value[field] = ms;
  }
  return { value, problems };
}
