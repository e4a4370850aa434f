import { describe, expect, it } from "vitest";
import type { KeepPolicy } from "../../restic/index.js";
import { minAgeShortened, planRetention, retentionGroups, type RetentionPlan } from "../../backup/retention.js";
import type { Distrust, JudgedSnapshot } from "../../backup/trust.js";

/**
 * Retention by arrival (backup/retention.ts): what `backup prune` keeps and forgets of one group, over the snapshots
 * the site trusts, ordered by when they reached it, each bucketed by the time it counts as made at, and nothing that
 * arrived within minAge removed. Days and hours are this site's local time: UTC here.
 */
process.env.TZ = "UTC";

const H = 3_600_000;
const D = 24 * H;
const now = new Date("2026-12-05T04:40:00Z");
const ago = (ms: number) => new Date(now.getTime() - ms).toISOString();
let n = 0;

/** A snapshot that claims `claimedAgo` and was first seen `seenAgo` ago, after a listing `afterAgo` ago (none: the ledger began with it). */
function s(claimedAgo: number, seenAgo: number | undefined, o: { afterAgo?: number; distrust?: Distrust[]; pending?: string[] } = {}): JudgedSnapshot {
  const id = (++n).toString(16).padStart(8, "0") + "e".repeat(56);
  const arrival = seenAgo === undefined ? undefined : { seen: ago(seenAgo), ...(o.afterAgo !== undefined ? { after: ago(o.afterAgo) } : {}) };
  return { id, short_id: id.slice(0, 8), time: ago(claimedAgo), tree: "t", paths: ["/postgresql/portal.dump"], hostname: "lab-db-01", tags: ["dcctl", "job:lab-db-01/db-hourly"], ...(arrival ? { arrival } : {}), ...(o.distrust ? { distrust: o.distrust } : {}), ...(o.pending ? { pending: o.pending } : {}) };
}

/** A real snapshot, copied to the secondary 20 minutes after its backup and seen at a listing 10 minutes later. */
const real = (claimedAgo: number) => s(claimedAgo, claimedAgo - 30 * 60_000, { afterAgo: claimedAgo - 10 * 60_000 });
const implausible = (rule: string): Distrust[] => [{ kind: "implausible", rule, reason: rule, at: now.toISOString() }];
const ids = (list: JudgedSnapshot[]) => list.map((x) => x.short_id).sort();
const week = 7 * D;
const plan = (group: JudgedSnapshot[], keep: KeepPolicy, minAgeMs = week): RetentionPlan<JudgedSnapshot> => planRetention(group, keep, { now, minAgeMs });

describe("retention by arrival", () => {
  it("the attack of issue 24: a snapshot dated a month ahead and twenty dated in the past take no real snapshot's place", () => {
    // Real: one a day for 20 days (the lab's db-daily), each seen soon after its backup.
    const reals = Array.from({ length: 20 }, (_, d) => real(d * D + H));
    // Forged from the primary, all arriving at the last listing: one 30 days ahead, twenty spread over past months.
    const future = s(-30 * D, 0, { afterAgo: H, distrust: implausible("future") });
    const past = Array.from({ length: 20 }, (_, i) => s((40 + i * 7) * D, 0, { afterAgo: H, distrust: implausible("too-late") }));
    const keep: KeepPolicy = { keepDaily: 14, keepWeekly: 8 };

    // As `restic forget --keep-*` sees them (every claim believed, ordered by it): real snapshots lose their places.
    const believed = [...reals, future, ...past].map(({ distrust: _d, arrival: _a, ...x }) => x);
    const byClaim = plan(believed, keep, 0);
    expect(ids(byClaim.remove).filter((id) => ids(reals).includes(id)).length).toBeGreaterThan(0);
    expect(ids(byClaim.keep)).toEqual(expect.arrayContaining([future.short_id, ...past.slice(0, 4).map((p) => p.short_id)]));

    // As the secondary judges them: the forged ones are kept aside, the real ones keep exactly the places they had alone.
    const judged = plan([...reals, future, ...past], keep, 0);
    expect(ids(judged.quarantined)).toEqual(ids([future, ...past]));
    const alone = plan(reals, keep, 0);
    expect(ids(judged.keep)).toEqual(ids(alone.keep));
    expect(ids(judged.remove)).toEqual(ids(alone.remove));
    // 14 daily (each of the three weeks' newest among them); with minAge (a week) nothing that arrived this week goes.
    expect(alone.keep.length).toBe(14);
    expect(plan([...reals, future, ...past], keep).remove.every((x) => now.getTime() - Date.parse(x.arrival?.seen ?? "") >= week)).toBe(true);
  });

  it("orders by arrival: keepLast keeps the last that arrived", () => {
    const a = real(10 * D);
    const b = real(9 * D);
    const c = real(8 * D);
    expect(ids(plan([c, a, b], { keepLast: 2 }).keep)).toEqual(ids([b, c]));
    expect(ids(plan([c, a, b], { keepLast: 2 }).remove)).toEqual(ids([a]));
  });

  it("never removes what arrived less than minAge ago, whatever the rules say; minAge 0 lets them go", () => {
    const group = [real(6 * D), real(5 * D), real(2 * D), real(D), real(H)];
    const kept = plan(group, { keepLast: 1 });
    expect(kept.keep.length).toBe(1);
    expect(kept.young.length).toBe(4);
    expect(kept.remove).toEqual([]);
    expect(plan(group, { keepLast: 1 }, 0).remove.length).toBe(4);
    // A copy that arrived yesterday of a backup made ten days ago is young here: minAge runs from arrival.
    const lateCopy = s(10 * D, D, { afterAgo: D + H });
    expect(plan([real(H), lateCopy], { keepLast: 1 }).young).toEqual([lateCopy]);
  });

  it("buckets each snapshot by its claim, never later than its arrival", () => {
    // Claimed on 2 Dec at 23:50, seen on 3 Dec at 00:20: it is 2 December's daily snapshot.
    const lateNight = s(now.getTime() - Date.parse("2026-12-02T23:50:00Z"), now.getTime() - Date.parse("2026-12-03T00:20:00Z"), { afterAgo: now.getTime() - Date.parse("2026-12-02T23:40:00Z") });
    const dec3 = s(now.getTime() - Date.parse("2026-12-03T12:00:00Z"), now.getTime() - Date.parse("2026-12-03T12:30:00Z"), { afterAgo: now.getTime() - Date.parse("2026-12-03T11:40:00Z") });
    expect(ids(plan([lateNight, dec3], { keepDaily: 2 }, 0).keep)).toEqual(ids([lateNight, dec3]));
    // Within one day, by arrival the newest of its day is kept, the other goes.
    const morning = real(now.getTime() - Date.parse("2026-12-03T08:00:00Z"));
    expect(ids(plan([morning, dec3], { keepDaily: 2 }, 0).remove)).toEqual(ids([morning]));
  });

  it("what a ledger found when it began is ordered and aged by its claim", () => {
    const found = [s(30 * D, 2 * D), s(20 * D, 2 * D), s(10 * D, 2 * D)];
    const p = plan([...found, real(H)], { keepLast: 2 });
    expect(ids(p.keep)).toEqual(ids([found[2] as JudgedSnapshot, p.keep.find((x) => x.arrival?.after) as JudgedSnapshot]));
    expect(ids(p.remove)).toEqual(ids(found.slice(0, 2)));
  });

  it("snapshots with a check still open take no place and are not removed", () => {
    const open = s(2 * D, 2 * D - H, { afterAgo: 2 * D + H, pending: ["no-run"] });
    const p = plan([real(20 * D), open], { keepLast: 1 }, 0);
    expect(p.pending).toEqual([open]);
    expect(p.keep.length).toBe(1);
    expect(p.remove).toEqual([]);
  });

  it("groups as restic does, by host and paths", () => {
    const a = real(H);
    const b = { ...real(H), paths: ["/postgresql/mail.dump"] };
    const c = { ...real(H), hostname: "lab-db-02" };
    expect(retentionGroups([a, b, c, real(2 * H)]).map((g) => g.length)).toEqual([2, 1, 1]);
  });
});

describe("minAge below the default", () => {
  it("is named, once per policy, in the one check an approval can be asked for", () => {
    const jobs = [
      { policy: "db-hourly", minAgeMs: week },
      { policy: "files-test", minAgeMs: 0 },
      { policy: "files-test", minAgeMs: 0 },
      { policy: "app-daily", minAgeMs: 2 * D },
    ];
    expect(minAgeShortened(jobs).map((m) => m.text)).toEqual([
      "policy files-test: minAge 0 is shorter than the default 7d: prune may remove snapshots that reached this site at any age",
      "policy app-daily: minAge 2d is shorter than the default 7d: prune may remove snapshots that reached this site 2d ago",
    ]);
  });
});
