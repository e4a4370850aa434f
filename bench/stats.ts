import { loadavg } from "node:os";

/** The middle of the samples (the mean of the two middle ones for an even count); NaN for none. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** The machine's load averages (1, 5, 15 min), as every bench prints them at its start and end. */
export function loadText(): string {
  return loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
}
