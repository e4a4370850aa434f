/**
 * A moment as an operator types it on a command line: ISO 8601 with a date, a time and an offset
 * (2026-11-22T05:40:00Z, 2026-11-22T12:40+07:00). Without an offset the same text would mean a different moment on
 * a machine set to another zone, so it is refused; so are dates JavaScript would roll over (30 February) and moments
 * in the future.
 */
const ISO = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-](\d{2}):?(\d{2}))$/;

/** Clocks of two machines a few seconds apart must not turn "just now" into "in the future". */
const SKEW_MS = 60_000;

/** The moment, or why the text is not one (a phrase to put after the flag's name). */
export function parseInstant(text: string, now: Date = new Date()): Date | { problem: string } {
  const m = ISO.exec(text.trim());
  const example = "ISO 8601 with an offset, e.g. 2026-11-22T05:40:00Z or 2026-11-22T12:40:00+07:00";
  if (!m) return { problem: `not a time (use ${example})` };
  const [year, month, day, hour, minute, second] = [m[1], m[2], m[3], m[4], m[5], m[6] ?? "0"].map(Number) as [number, number, number, number, number, number];
  const offH = Number(m[8] ?? 0);
  const offM = Number(m[9] ?? 0);
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth || hour > 23 || minute > 59 || second > 59 || offH > 14 || offM > 59) {
    return { problem: `not a time: no such date or time of day (use ${example})` };
  }
  const at = new Date(text.trim());
  if (Number.isNaN(at.getTime())) return { problem: `not a time (use ${example})` };
  if (at.getTime() > now.getTime() + SKEW_MS) return { problem: `is in the future (now is ${now.toISOString().replace(/\.\d+Z$/, "Z")})` };
  return at;
}
