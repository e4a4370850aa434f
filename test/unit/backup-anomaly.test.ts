import { describe, expect, it } from "vitest";
import { DEFAULT_ANOMALY, scoreSnapshots, settingsByJob, suspiciousSnapshots, type AnomalyScore } from "../../backup/anomaly.js";
import { parsePolicies } from "../../backup/policies.js";
import { InputError } from "../../util/errors.js";
import type { BackupSummary, Snapshot } from "../../restic/index.js";

/**
 * The score from restic's per-snapshot summaries, on histories shaped like the ones restic writes: a files tree of
 * 300 documents (3 MiB that compress to 30 %) changing a little each day (a file filed, one archived, a few changed),
 * database dumps, trees of scans.
 */

const MiB = 1024 * 1024;
let clock = Date.parse("2026-11-01T02:00:00Z");
let serial = 0;

interface Shape {
  files?: number;
  /** Files new or changed: one new, the rest changed, unless `added` says how many are new. */
  touched?: number;
  filesNew?: number;
  bytes?: number;
  added?: number;
  /** packed / added of the new data. */
  ratio?: number;
  parent?: boolean;
  job?: string;
  paths?: string[];
  summary?: false;
}

function snap(o: Shape = {}): Snapshot {
  const files = o.files ?? 300;
  const touched = o.touched ?? 4;
  const added = o.added ?? 200 * 1024;
  const summary: Partial<BackupSummary> = {
    files_new: o.filesNew ?? Math.min(1, touched),
    files_changed: Math.max(0, touched - (o.filesNew ?? Math.min(1, touched))),
    files_unmodified: files - touched,
    data_added: added,
    data_added_packed: Math.round(added * (o.ratio ?? 0.3)),
    total_files_processed: files,
    total_bytes_processed: o.bytes ?? 3 * MiB,
  };
  serial += 1;
  clock += 86_400_000;
  const id = serial.toString(16).padStart(64, "0");
  return {
    id,
    short_id: id.slice(0, 8),
    time: new Date(clock).toISOString(),
    tree: "t",
    paths: o.paths ?? ["/srv"],
    hostname: "qn-app-01",
    tags: ["dcctl", `job:${o.job ?? "qn-app-01/app-daily"}`, "source:files", `run:${serial}`],
    ...(o.parent === false ? {} : { parent: "p" }),
    ...(o.summary === false ? {} : { summary }),
  };
}

/** A tree's first backup (everything new, no parent) and `n` ordinary days after it. */
function ordinaryTree(n: number, o: Shape = {}): Snapshot[] {
  const files = o.files ?? 300;
  const bytes = o.bytes ?? 3 * MiB;
  const first = snap({ ...o, parent: false, touched: files, added: bytes, bytes });
  return [first, ...Array.from({ length: n }, (_, i) => snap({ ...o, touched: 2 + (i % 5), added: (100 + 40 * (i % 4)) * 1024 }))];
}

function scoreOf(all: Snapshot[], s: Snapshot | undefined, settings = DEFAULT_ANOMALY): AnomalyScore {
  const score = scoreSnapshots(all, { settingsFor: () => settings }).get(s?.id ?? "");
  if (!score) throw new Error("no score");
  return score;
}

describe("the anomaly score of a snapshot", () => {
  it("does not judge a group's first snapshot, and scores ordinary days near 0", () => {
    const tree = ordinaryTree(20);
    const scores = scoreSnapshots(tree);
    expect(scores.get(tree[0]?.id ?? "")?.verdict).toBe("unjudged");
    expect(scores.get(tree[0]?.id ?? "")?.reason).toMatch(/first snapshot/);
    const ordinary = tree.slice(1).map((s) => scores.get(s.id));
    expect(ordinary.every((s) => s?.verdict === "ok")).toBe(true);
    expect(Math.max(...ordinary.map((s) => s?.score ?? 1))).toBeLessThan(0.1);
    // The second run already has a measure: judged against no change, the first full backup being no ordinary day.
    expect(ordinary[0]?.parts.files?.assumed).toBe(true);
    expect(ordinary[2]?.parts.files?.assumed).toBeUndefined();
  });

  it("flags a tree encrypted in place: every file changed, every byte new, nothing compresses", () => {
    const tree = ordinaryTree(6);
    const encrypted = snap({ touched: 300, added: 3 * MiB + 4800, ratio: 0.99 });
    const score = scoreOf([...tree, encrypted], encrypted);
    expect(score.verdict).toBe("suspicious");
    expect(score.score).toBeGreaterThan(0.9);
    expect(score.reason).toMatch(/^score 0\.9\d above 0\.5: 100% of its 300 files rewritten or replaced \(usually 1\.\d%\), 100% of its 3\.0 MiB rewritten \(usually \d\.\d%\), its 3\.0 MiB of new data compresses to 99% \(usually 30%\)$/);
    expect(suspiciousSnapshots([...tree, encrypted])).toEqual(new Map([[encrypted.id, { kind: "suspicious", reason: score.reason, score: score.score }]]));
  });

  it("flags the second run already when it is the encrypted one", () => {
    const first = snap({ parent: false, touched: 300, added: 3 * MiB });
    const encrypted = snap({ touched: 300, added: 3 * MiB, ratio: 1 });
    expect(scoreOf([first, encrypted], encrypted).verdict).toBe("suspicious");
  });

  it("lets through what adds much, what rewrites all but compresses as before, and a restore that adds nothing", () => {
    const tree = ordinaryTree(6);
    // A load doubling the tree, scans among them: new files, none of those there rewritten.
    const loaded = snap({ files: 600, touched: 300, filesNew: 300, bytes: 6 * MiB, added: 3 * MiB, ratio: 0.9 });
    // Every document converted to another text format: all rewritten, compressing as before.
    const converted = snap({ touched: 300, added: 3 * MiB, ratio: 0.31 });
    // A restore rewrote every file with what the repository already holds.
    const restored = snap({ touched: 300, added: 20 * 1024 });
    const scores = scoreSnapshots([...tree, loaded, converted, restored]);
    expect(scores.get(loaded.id)).toMatchObject({ verdict: "ok", score: 0 });
    expect(scores.get(loaded.id)?.parts.files?.value).toBe(0);
    expect(scores.get(converted.id)?.verdict).toBe("ok");
    expect(scores.get(converted.id)?.score).toBeLessThan(0.2);
    expect(scores.get(restored.id)).toMatchObject({ verdict: "ok", score: 0, reason: "adds only 20 KiB of new data" });
  });

  it("lets through the first load of documents into a tree that held one file", () => {
    const readme = snap({ files: 1, touched: 1, filesNew: 1, bytes: 80, added: 900, parent: false });
    const quiet = snap({ files: 1, touched: 0, bytes: 80, added: 0 });
    const loaded = snap({ files: 165, touched: 164, filesNew: 164, bytes: 3 * MiB, added: 3 * MiB + 9000, ratio: 0.7 });
    // Mostly scans, new to the repository: data that does not compress, against an assumed usual compression alone.
    const scans = snap({ files: 165, touched: 164, filesNew: 164, bytes: 3 * MiB, added: 1.4 * MiB, ratio: 0.96 });
    for (const s of [loaded, scans]) {
      const score = scoreSnapshots([readme, quiet, s]).get(s.id);
      expect(score?.verdict).not.toBe("suspicious");
      expect(score?.score ?? 0).toBeLessThan(0.1);
    }
  });

  it("flags files encrypted into new ones that replace them (a.doc gone, a.doc.locked new)", () => {
    const tree = ordinaryTree(6);
    const renamed = snap({ touched: 300, filesNew: 300, added: 3 * MiB, ratio: 1 });
    const score = scoreOf([...tree, renamed], renamed);
    expect(score.parts.files?.value).toBe(1);
    expect(score.verdict).toBe("suspicious");
  });

  it("lets through a day that adds one scan (new data that does not compress, little of it)", () => {
    const tree = ordinaryTree(10);
    const scan = snap({ touched: 3, added: 900 * 1024, ratio: 1 });
    const score = scoreOf([...tree, scan], scan);
    expect(score.verdict).toBe("ok");
    expect(score.parts.incompressible?.part).toBe(1);
    expect(score.score).toBeLessThan(0.2);
  });

  it("does not let an attack become the normal: the next encrypted run is measured against the days before it", () => {
    const tree = ordinaryTree(6);
    const first = snap({ touched: 300, added: 3 * MiB, ratio: 1 });
    const second = snap({ touched: 300, added: 3 * MiB, ratio: 1 });
    const scores = scoreSnapshots([...tree, first, second]);
    expect(scores.get(first.id)?.verdict).toBe("suspicious");
    expect(scores.get(second.id)?.verdict).toBe("suspicious");
    expect(scores.get(second.id)?.history).toBe(7);
  });

  it("judges a database dump (one file, new at every run) by its new bytes and their compression", () => {
    const dump = (added: number, ratio = 0.25, parent?: false) => snap({ files: 1, touched: 1, bytes: 40 * MiB, added, ratio, paths: ["/postgresql/portal.dump"], ...(parent === false ? { parent } : {}) });
    const dumps = [dump(40 * MiB, 0.25, false), ...Array.from({ length: 8 }, (_, i) => dump((6 + (i % 3) * 3) * MiB, 0.25, false))];
    const scores = scoreSnapshots(dumps);
    expect(scores.get(dumps[0]?.id ?? "")?.verdict).toBe("unjudged");
    // The second dump: no ordinary dump before it to take the usual new bytes from; judged by compression alone.
    expect(Object.keys(scores.get(dumps[1]?.id ?? "")?.parts ?? {})).toEqual(["incompressible"]);
    expect(Object.keys(scores.get(dumps[3]?.id ?? "")?.parts ?? {})).toEqual(["bytes", "incompressible"]);
    expect(dumps.slice(1).every((d) => scores.get(d.id)?.verdict === "ok" && (scores.get(d.id)?.score ?? 1) < 0.2)).toBe(true);
    const encrypted = dump(40 * MiB, 1, false);
    expect(scoreOf([...dumps, encrypted], encrypted).verdict).toBe("suspicious");
    // A dump that grew much, compressing as before: not suspicious.
    const grown = dump(30 * MiB, 0.26, false);
    expect(scoreOf([...dumps, grown], grown).verdict).toBe("ok");
  });

  it("judges a small dump, all new at every run, by compression alone", () => {
    const dump = (ratio: number) => snap({ files: 1, touched: 1, bytes: 400 * 1024, added: 401 * 1024, ratio, paths: ["/mariadb/mail.sql"], parent: false });
    const dumps = Array.from({ length: 6 }, () => dump(0.2));
    const encrypted = dump(1);
    const scores = scoreSnapshots([...dumps, encrypted]);
    expect(Object.keys(scores.get(dumps[4]?.id ?? "")?.parts ?? {})).toEqual(["incompressible"]);
    expect(scores.get(dumps[4]?.id ?? "")?.verdict).toBe("ok");
    expect(scores.get(encrypted.id)?.verdict).toBe("suspicious");
  });

  it("does not judge a group no sign can be measured for: a small dump of data that never compressed", () => {
    const dump = () => snap({ files: 1, touched: 1, bytes: 300 * 1024, added: 301 * 1024, ratio: 0.97, paths: ["/postgresql/scans.dump"], parent: false });
    const dumps = Array.from({ length: 5 }, dump);
    const last = scoreSnapshots(dumps).get(dumps[4]?.id ?? "");
    expect(last).toMatchObject({ verdict: "unjudged", parts: {} });
    expect(last?.reason).toMatch(/^none of the signs can be measured for its group/);
  });

  it("leaves out compression where the group's data never compressed (scans), and flags on the rest", () => {
    const tree = ordinaryTree(8, { ratio: 0.98 });
    const encrypted = snap({ touched: 300, added: 3 * MiB, ratio: 1 });
    const score = scoreOf([...tree, encrypted], encrypted);
    expect(score.parts.incompressible).toBeUndefined();
    expect(score.verdict).toBe("suspicious");
  });

  it("keeps groups apart (another job, other paths) and orders them by the time given", () => {
    const tree = ordinaryTree(5);
    const other = ordinaryTree(5, { job: "qn-app-02/app-daily" });
    const etc = snap({ paths: ["/etc"], touched: 300, added: 3 * MiB, ratio: 1 });
    const scores = scoreSnapshots([...tree, ...other, etc]);
    expect(scores.get(etc.id)?.verdict).toBe("unjudged");
    expect(scores.get(other[1]?.id ?? "")?.history).toBe(1);
    // Ordered by another time (say, when each reached the repository), the encrypted one comes first: not judged.
    const encrypted = snap({ touched: 300, added: 3 * MiB, ratio: 1 });
    const arrival = (s: Snapshot) => (s.id === encrypted.id ? 0 : Date.parse(s.time));
    expect(scoreSnapshots([...tree, encrypted], { timeOf: arrival }).get(encrypted.id)?.verdict).toBe("unjudged");
  });

  it("does not judge a snapshot without restic's summary, nor use it as history", () => {
    const old = snap({ summary: false, parent: false });
    const next = snap();
    const scores = scoreSnapshots([old, next]);
    expect(scores.get(old.id)).toMatchObject({ verdict: "unjudged", reason: expect.stringMatching(/no summary/) });
    expect(scores.get(next.id)?.verdict).toBe("unjudged");
  });

  it("follows the policy: its threshold and weights, by the snapshot's job", () => {
    const tree = ordinaryTree(6);
    const encrypted = snap({ touched: 300, added: 3 * MiB, ratio: 1 });
    const never = { threshold: 1, weights: DEFAULT_ANOMALY.weights };
    const settingsFor = settingsByJob([{ id: "qn-app-01/app-daily", anomaly: never }]);
    expect(scoreSnapshots([...tree, encrypted], { settingsFor }).get(encrypted.id)?.verdict).toBe("ok");
    // Without compression as a sign, a tree rewritten in a format that compresses as before is flagged.
    const converted = snap({ touched: 300, added: 3 * MiB, ratio: 0.3 });
    const noCompression = { threshold: 0.5, weights: { files: 1, bytes: 1, incompressible: 0 } };
    expect(scoreOf([...tree, converted], converted, noCompression).verdict).toBe("suspicious");
    expect(scoreOf([...tree, converted], converted).verdict).toBe("ok");
    // A job the policies no longer have: the defaults.
    expect(settingsByJob([])(encrypted)).toBe(DEFAULT_ANOMALY);
  });
});

describe("a policy's anomaly settings", () => {
  const policy = (extra: string[]) =>
    ["policies:", "  p:", "    sources: [{ kind: files, paths: [/srv] }]", '    schedule: "0 2 * * *"', "    retention: { keepDaily: 7 }", "    rpoMinutes: 1560", "    repository: primary", ...extra, ""].join("\n");
  const problems = (text: string): string[] => {
    try {
      parsePolicies("p.yaml", text);
    } catch (e) {
      if (e instanceof InputError) return e.problems;
      throw e;
    }
    return [];
  };

  it("defaults, and takes a threshold and weights", () => {
    expect(parsePolicies("p.yaml", policy([])).policies.get("p")?.anomaly).toEqual(DEFAULT_ANOMALY);
    const set = parsePolicies("p.yaml", policy(["    anomaly: { threshold: 0.7, weights: { incompressible: 2 } }"])).policies.get("p")?.anomaly;
    expect(set).toEqual({ threshold: 0.7, weights: { files: 1, bytes: 1, incompressible: 2 } });
  });

  it("refuses a threshold out of 0–1, an unknown weight, and no weight at all, at the line", () => {
    expect(problems(policy(["    anomaly: { threshold: 5 }"]))).toEqual(["p.yaml:8: policy p: anomaly.threshold must be <= 1"]);
    expect(problems(policy(["    anomaly: { weights: { entropy: 1 } }"]))).toEqual(['p.yaml:8: policy p: unknown field "entropy"']);
    expect(problems(policy(["    anomaly:", "      weights: { files: 0, bytes: 0, incompressible: 0 }"]))).toEqual([
      "p.yaml:9: policy p: anomaly.weights: at least one weight must be above 0 (to never flag a snapshot, set anomaly.threshold: 1)",
    ]);
  });
});
