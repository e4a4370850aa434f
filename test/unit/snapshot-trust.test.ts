import { describe, expect, it } from "vitest";
import type { Snapshot } from "../../restic/index.js";
import { ageMinutes, chooseSnapshot, effectiveTime, judgeArrivals, judgeAsFound, seriesOf, type ArrivalContext, type JudgedSnapshot, type KnownSnapshot, type RunEvidence } from "../../backup/trust.js";

/**
 * The rules that make a snapshot implausible (backup/trust.ts), on what the secondary sees: the times a snapshot
 * claims against when it first saw it, what was already there, and the runs' records. Each rule is shown catching the
 * forgery it is for, and letting real copies through — a replicate's batch, a copy minutes after its backup.
 */

const H = 3_600_000;
const seen = new Date("2026-12-05T04:40:00Z");
const after = new Date("2026-12-05T03:40:00Z");
const at = (ms: number) => new Date(seen.getTime() + ms).toISOString();
let n = 0;
const id = () => (++n).toString(16).padStart(8, "0") + "f".repeat(56);

function snap(o: { time: string; db?: string; run?: string | null; original?: string; host?: string }): Snapshot {
  const i = id();
  const tags = ["dcctl", `job:${o.host ?? "lab-db-01"}/db-hourly`, "source:postgresql", `db:${o.db ?? "portal"}`, ...(o.run === null ? [] : [`run:${o.run ?? "20261205T030500-4242"}`])];
  return { id: i, short_id: i.slice(0, 8), time: o.time, tree: "t", paths: [`/postgresql/${o.db ?? "portal"}.dump`], hostname: o.host ?? "lab-db-01", tags, ...(o.original ? { original: o.original } : {}) };
}

const known = (s: Snapshot, trusted = true): KnownSnapshot => ({ id: s.id, time: s.time, series: seriesOf(s), ...(s.original ? { copyOf: s.original } : {}), trusted });

/** Evidence that the run made exactly these (source-repository) ids. */
const madeBy = (ids: string[], complete = true): Map<string, RunEvidence> => new Map([["20261205T030500-4242", { found: true, snapshots: new Set(ids), complete, where: "the primary site's records" }]]);

function ctx(o: Partial<ArrivalContext> = {}): ArrivalContext {
  return { seen, after, earlier: [], lagOf: () => 25 * H, ...o };
}

/** The rules each snapshot broke, by id. */
function rules(batch: Snapshot[], c: ArrivalContext): string[][] {
  const v = judgeArrivals(batch, c);
  return batch.map((s) => v.get(s.id)?.distrust.map((d) => d.rule) ?? []);
}

describe("a snapshot that arrives is judged implausible when", () => {
  it("it claims a time after it was first seen (beyond five minutes of clock skew)", () => {
    const ahead = snap({ time: at(30 * 24 * H), original: "p1" });
    const skewed = snap({ time: at(4 * 60_000), original: "p2" });
    expect(rules([ahead, skewed], ctx({ runs: madeBy(["p1", "p2"]) }))).toEqual([["future"], []]);
    const d = judgeArrivals([ahead], ctx({ runs: madeBy(["p1"]) })).get(ahead.id)?.distrust[0];
    expect(d).toMatchObject({ kind: "implausible", rule: "future", at: seen.toISOString() });
    expect(d?.reason).toBe("claims 2027-01-04T04:40:00Z, 30d after this site first saw it (2026-12-05T04:40:00Z)");
  });

  it("it claims a time further before the last listing that did not hold it than its job's arrivalLag", () => {
    const old = snap({ time: new Date(after.getTime() - 26 * H).toISOString(), original: "p1" });
    const late = snap({ time: new Date(after.getTime() - 24 * H).toISOString(), original: "p2" });
    expect(rules([old, late], ctx({ runs: madeBy(["p1", "p2"]) }))).toEqual([["too-late"], []]);
    // With no listing before (the ledger begins with it), nothing is known of how late it is.
    expect(rules([old], ctx({ after: undefined, runs: madeBy(["p1"]) }))).toEqual([[]]);
    // Each job's own lag: a policy can allow a week.
    expect(rules([old], ctx({ lagOf: () => 7 * 24 * H, runs: madeBy(["p1"]) }))).toEqual([[]]);
  });

  it("it claims to be older than a trusted snapshot of the same host, job and item that was already here", () => {
    const real = snap({ time: at(-90 * 60_000) });
    const older = snap({ time: at(-100 * 60_000), original: "p1" });
    const otherDb = snap({ time: at(-100 * 60_000), db: "mail", original: "p2" });
    const otherHost = snap({ time: at(-100 * 60_000), host: "lab-db-02", original: "p3" });
    const c = ctx({ earlier: [known(real)], runs: madeBy(["p1", "p2", "p3"]) });
    expect(rules([older, otherDb, otherHost], c)).toEqual([["older-than-series"], [], []]);
    // What was already distrusted is no standard to hold a newcomer to.
    expect(rules([older], ctx({ earlier: [known(real, false)], runs: madeBy(["p1"]) }))).toEqual([[]]);
  });

  it("it is a second copy of a snapshot already here (restic rewrite --new-time of a real one), or one of two arriving together", () => {
    const real = snap({ time: at(-50 * 60_000), original: "p1" });
    const rewritten = snap({ time: at(-1 * 60_000), original: "p1" });
    expect(rules([rewritten], ctx({ earlier: [known(real)], runs: madeBy(["p1"]) }))).toEqual([["second-copy"]]);
    // A rewrite of a snapshot that was made here (no `original`) names that one's id.
    const direct = snap({ time: at(-50 * 60_000) });
    const ofDirect = snap({ time: at(-1 * 60_000), original: direct.id });
    expect(rules([ofDirect], ctx({ earlier: [known(direct)], runs: madeBy([direct.id]) }))).toEqual([["second-copy"]]);
    const twinA = snap({ time: at(-50 * 60_000), original: "p2" });
    const twinB = snap({ time: at(-1 * 60_000), original: "p2" });
    expect(rules([twinA, twinB], ctx({ runs: madeBy(["p2"]) }))).toEqual([["second-copy"], ["second-copy"]]);
  });

  it("no run on record made it: no run tag, a run that made others, a run nobody recorded", () => {
    const untagged = snap({ time: at(-30 * 60_000), run: null, original: "p1" });
    const replay = snap({ time: at(-30 * 60_000) });
    const unknownRun = snap({ time: at(-30 * 60_000), run: "20261205T031500-99", original: "p3" });
    const runs = new Map<string, RunEvidence>([...madeBy(["p1"]), ["20261205T031500-99", { found: false, definitive: true, where: "this site's records, the primary site's" }]]);
    expect(rules([untagged, replay, unknownRun], ctx({ runs }))).toEqual([["no-run"], ["no-run"], ["no-run"]]);
    const v = judgeArrivals([replay, unknownRun], ctx({ runs }));
    expect(v.get(replay.id)?.distrust[0]?.reason).toBe("run 20261205T030500-4242 (the primary site's records) made 1 snapshot, not this one");
    expect(v.get(unknownRun.id)?.distrust[0]?.reason).toBe("no run 20261205T031500-99 is on record (this site's records, the primary site's)");
  });

  it("— but a check it cannot make yet stays open: no records read, a run still running, a site that did not answer", () => {
    const s = snap({ time: at(-30 * 60_000), original: "p9" });
    const unread = new Map<string, RunEvidence>([["20261205T030500-4242", { found: false, definitive: false, where: "the primary site's records not read: it does not answer" }]]);
    for (const runs of [undefined, madeBy(["p1"], false), unread]) {
      const v = judgeArrivals([s], ctx(runs ? { runs } : {})).get(s.id);
      expect(v).toEqual({ distrust: [], pending: ["no-run"] });
    }
  });
});

describe("real copies are not implausible", () => {
  it("a replicate's batch: the hour's dumps and files of several hosts, copied minutes after their backups, in order", () => {
    // The secondary listed at 03:40 (after); the backups ran at 04:05, replicate copied at 04:20, listed at 04:40.
    const earlier = [snap({ time: at(-95 * 60_000), original: "p0" }), snap({ time: at(-95 * 60_000), db: "mail", original: "q0" })];
    const batch = [snap({ time: at(-35 * 60_000), original: "p1" }), snap({ time: at(-35 * 60_000), db: "mail", original: "q1" }), snap({ time: at(-33 * 60_000), host: "lab-db-02", original: "r1" })];
    const v = judgeArrivals(batch, ctx({ earlier: earlier.map((e) => known(e)), runs: madeBy(["p1", "q1", "r1"]) }));
    expect([...v.values()]).toEqual(batch.map(() => ({ distrust: [], pending: [] })));
  });

  it("a day of hourly copies that arrive together after a WAN outage within the job's arrivalLag", () => {
    const batch = Array.from({ length: 24 }, (_, h) => snap({ time: new Date(after.getTime() - (23 - h) * H).toISOString(), original: `p${h}` }));
    const v = judgeArrivals(batch, ctx({ runs: madeBy(batch.map((s) => s.original ?? "")) }));
    expect([...v.values()].every((x) => x.distrust.length === 0)).toBe(true);
  });
});

describe("snapshots nobody saw arrive (a ledger begins, another site's repository)", () => {
  it("are taken as they claim, but for a time in the future", () => {
    const ok = snap({ time: at(-400 * 24 * H) });
    const ahead = snap({ time: at(2 * H) });
    const v = judgeAsFound([ok, ahead], seen);
    expect(v.get(ok.id)).toEqual({ distrust: [], pending: [] });
    expect(v.get(ahead.id)?.distrust.map((d) => d.rule)).toEqual(["future"]);
  });
});

describe("what status, restore and the drill take from the verdicts", () => {
  const judged = (s: Snapshot, o: Partial<JudgedSnapshot> = {}): JudgedSnapshot => ({ ...s, ...o });
  const real = judged(snap({ time: at(-40 * 60_000) }), { arrival: { seen: at(-20 * 60_000), after: at(-80 * 60_000) } });
  const forged = judged(snap({ time: at(30 * 24 * H) }), { arrival: { seen: at(0), after: at(-20 * 60_000) }, distrust: [{ kind: "implausible", rule: "future", reason: "…", at: at(0) }] });
  const older = judged(snap({ time: at(-100 * 60_000) }), { arrival: { seen: at(-80 * 60_000), after: at(-140 * 60_000) } });

  it("a snapshot counts as made at its claim, never later than its arrival: a future claim is not 0 min old", () => {
    expect(effectiveTime(forged)).toBe(seen.getTime());
    expect(ageMinutes(forged, new Date(seen.getTime() + 10 * 60_000))).toBe(10);
    expect(ageMinutes(real, seen)).toBe(40);
  });

  it("`latest` is the newest trusted snapshot, naming the distrusted ones passed over; an id is taken as named", () => {
    expect(chooseSnapshot([older, forged, real], "latest")).toEqual({ chosen: real, passedOver: [forged] });
    expect(chooseSnapshot([forged], "latest")).toEqual({ passedOver: [forged] });
    expect(chooseSnapshot([older, forged, real], forged.short_id).chosen).toBe(forged);
    expect(chooseSnapshot([older, forged, real], forged.id.slice(0, 12)).chosen).toBe(forged);
  });

  it("`latest` after a suspicious snapshot is the newest trusted one before it: the ones after hold the same damage", () => {
    const encrypted = judged(snap({ time: at(-30 * 60_000) }), { arrival: { seen: at(-29 * 60_000) }, distrust: [{ kind: "suspicious", rule: "anomaly", reason: "…", score: 0.99, at: at(0) }] });
    const after = judged(snap({ time: at(-10 * 60_000) }), { arrival: { seen: at(-9 * 60_000) } });
    expect(chooseSnapshot([older, real, encrypted, after], "latest")).toEqual({ chosen: real, passedOver: [encrypted, after] });
    expect(chooseSnapshot([older, real, encrypted, after], after.short_id).chosen).toBe(after);
    // Accepted (its distrust gone), it no longer holds the choice back.
    expect(chooseSnapshot([older, real, { ...encrypted, distrust: [] }, after], "latest").chosen).toBe(after);
  });
});
