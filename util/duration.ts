/** Durations as people write them (step timeouts): 90s, 5m, 1h30m, or a bare number of seconds. */
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * The longest duration dcctl accepts (24 days): a Node timer longer than 2^31-1 ms (24.8 days) overflows and fires at
 * once, which would turn a generous step timeout into an instant failure.
 */
export const MAX_DURATION_MS = 24 * 24 * 3_600_000;
export const MAX_DURATION_TEXT = "576h (24 days)";

/** Milliseconds, or undefined for anything else (zero, negative and durations over MAX_DURATION_MS included). */
export function parseDuration(value: unknown): number | undefined {
  const ms = parseAnyDuration(value);
  return ms !== undefined && ms <= MAX_DURATION_MS ? ms : undefined;
}

/**
 * A span of time that is compared, never waited for (how old a snapshot may get, how late a copy may arrive): the
 * same forms plus days (7d, 36h, 1d12h), zero allowed, no upper bound (no timer is set from it). Undefined otherwise.
 */
export function parseSpan(value: unknown): number | undefined {
  if (value === 0 || value === "0") return 0;
  if (typeof value === "number") return Number.isFinite(value) && value > 0 ? value * 1000 : undefined;
  if (typeof value !== "string" || !/^(\d+(ms|s|m|h|d))+$/.test(value.trim())) return undefined;
  let total = 0;
  for (const [, n, unit] of value.trim().matchAll(/(\d+)(ms|s|m|h|d)/g)) total += Number(n) * (unit === "d" ? 86_400_000 : (UNIT_MS[unit ?? "s"] ?? 0));
  return total;
}

/** A span as people write it back: 7d, 36h, 90m, 45s (the largest unit that divides it). */
export function formatSpan(ms: number): string {
  if (ms === 0) return "0";
  for (const [unit, size] of [["d", 86_400_000], ["h", 3_600_000], ["m", 60_000], ["s", 1000]] as const) if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

function parseAnyDuration(value: unknown): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) && value > 0 ? value * 1000 : undefined;
  if (typeof value !== "string" || !/^(\d+(ms|s|m|h))+$/.test(value.trim())) return undefined;
  let total = 0;
  for (const [, n, unit] of value.trim().matchAll(/(\d+)(ms|s|m|h)/g)) total += Number(n) * (UNIT_MS[unit ?? "s"] ?? 0);
  return total > 0 ? total : undefined;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m} min ${Math.round(s % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}
