/**
 * Wall-clock times in a site's IANA time zone (the inventory's `timeZone:`), with the zone data Node ships (Intl):
 * read into instants, and instants said back in that zone. A wall time the zone skips (clocks forward) or repeats
 * (clocks back) is no single instant, and is said to be so rather than guessed.
 */

/** True when Intl knows the zone (Asia/Ho_Chi_Minh, UTC, …). */
export function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone });
    return zone.trim() !== "";
  } catch {
    return false;
  }
}

const formats = new Map<string, Intl.DateTimeFormat>();

/** The zone's wall clock at an instant, to the second, as the milliseconds of the same fields read as UTC. */
function wallMs(zone: string, ms: number): number {
  let f = formats.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", { timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });
    formats.set(zone, f);
  }
  const part = (type: string) => Number(f.formatToParts(ms).find((p) => p.type === type)?.value ?? 0);
  return Date.UTC(part("year"), part("month") - 1, part("day"), part("hour"), part("minute"), part("second"));
}

/** The zone's offset from UTC at an instant, in minutes (Asia/Ho_Chi_Minh: 420). */
export function zoneOffsetMinutes(zone: string, ms: number): number {
  const whole = Math.floor(ms / 1000) * 1000;
  return Math.round((wallMs(zone, whole) - whole) / 60_000);
}

export interface WallTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

/**
 * The instant (whole seconds) a wall time of the zone names, or why there is none: `skipped` (the clocks jumped over
 * it) or `repeated` (it happened twice; an offset must say which).
 */
export function instantOfWallTime(zone: string, w: WallTime): number | "skipped" | "repeated" {
  const asUtc = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
  // The offsets in force a day either side cover any change of the zone's clocks near that time.
  const offsets = new Set([zoneOffsetMinutes(zone, asUtc - 86_400_000), zoneOffsetMinutes(zone, asUtc), zoneOffsetMinutes(zone, asUtc + 86_400_000)]);
  const found = [...new Set([...offsets].map((o) => asUtc - o * 60_000))].filter((ms) => wallMs(zone, ms) === asUtc);
  if (found.length === 0) return "skipped";
  if (found.length > 1) return "repeated";
  return found[0] ?? "skipped";
}

/** `+07:00`, `-03:30`, `+00:00`. */
export function offsetText(minutes: number): string {
  const a = Math.abs(minutes);
  return `${minutes < 0 ? "-" : "+"}${String(Math.floor(a / 60)).padStart(2, "0")}:${String(a % 60).padStart(2, "0")}`;
}

/**
 * An instant as the zone's wall clock says it, with its offset: `2026-12-05 10:59:00.123+07:00`. `fraction` (the
 * digits after the second, as typed: up to microseconds) replaces the milliseconds a Date keeps.
 */
export function formatInZone(ms: number, zone: string, fraction?: string): string {
  const whole = Math.floor(ms / 1000) * 1000;
  const wall = new Date(wallMs(zone, whole)).toISOString().slice(0, 19).replace("T", " ");
  const frac = fraction ?? String(ms - whole).padStart(3, "0");
  return `${wall}${frac && !/^0*$/.test(frac) ? `.${frac}` : ""}${offsetText(zoneOffsetMinutes(zone, whole))}`;
}
