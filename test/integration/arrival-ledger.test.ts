import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { acceptSnapshot, addDistrust, arrivalLedgerPath, listJudged, trustMetricsPath } from "../../backup/arrival-ledger.js";
import type { BackupJob } from "../../backup/jobs.js";
import { pruneOwnRepository } from "../../backup/prune.js";
import { loadBackupConfig, type BackupConfig } from "../../backup/repositories.js";
import { runLookup } from "../../backup/run-evidence.js";
import { parsePrometheus } from "../../backup/report.js";
import { Restic, type Snapshot } from "../../restic/index.js";
import { toolPath } from "../../util/tools.js";
import { spoolOf } from "../../notify/event-feed.js";

/**
 * The arrival ledger (backup/arrival-ledger.ts) and retention by arrival through prune, on a real restic repository
 * that the secondary keeps on its disk: snapshots written with restic's own `--time`, as an intruder would, the runs'
 * records written as dcctl writes them, and this site's clock moved by the test.
 */
const work = mkdtempSync(join(tmpdir(), "dcctl-arrivals-"));
const repo = { url: join(work, "repo"), passwordFile: join(work, "repo.pass") };
const state = join(work, "state");
let config: BackupConfig;
const H = 3_600_000;
const T0 = new Date(Math.floor(Date.now() / 1000) * 1000 - 2 * H);
let clock = T0;
const now = () => clock;
const RUN = "20261205T010500-4242";
const job = { id: "lab-db-01/db-hourly", arrivalLagMs: 25 * H } as const;
const tags = ["dcctl", `job:${job.id}`, "source:postgresql", "db:portal"];

/** A snapshot as `restic backup --time` makes it: claimed at `at`, the dump's path, these tags. */
function write(at: Date, withTags: string[]): string {
  const time = at.toISOString().replace("T", " ").replace(/\.\d+Z$/, "");
  const res = spawnSync(toolPath("restic"), ["--no-cache", "backup", "--json", "--host", "lab-db-01", ...withTags.flatMap((t) => ["--tag", t]), "--time", time, "--stdin-filename", "postgresql/portal.dump", "--stdin-from-command", "--", "printf", "%s", at.toISOString()], {
    env: { ...process.env, TZ: "UTC", RESTIC_REPOSITORY: repo.url, RESTIC_PASSWORD_FILE: repo.passwordFile },
    encoding: "utf8",
  });
  if (res.status !== 0) throw new Error(res.stderr);
  const summary = res.stdout.trim().split("\n").map((l) => JSON.parse(l) as { message_type: string; snapshot_id?: string }).find((m) => m.message_type === "summary");
  return summary?.snapshot_id ?? "";
}

/** A run's report as backup run writes it, naming the snapshots it made. */
function recordRun(run: string, snapshots: string[]): void {
  const dir = join(state, "backup", "reports");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `run-${run}.jsonl`), [JSON.stringify({ type: "run", id: run }), JSON.stringify({ type: "job", run, job: job.id, snapshots })].join("\n") + "\n");
}

const verdicts = (list: (Snapshot & { distrust?: { rule: string }[]; pending?: string[] })[]) =>
  Object.fromEntries(list.map((s) => [s.id, s.distrust?.length ? s.distrust.map((d) => d.rule).join(",") : s.pending?.length ? "pending" : "trusted"]));

beforeAll(async () => {
  writeFileSync(repo.passwordFile, "secret\n", { mode: 0o600 });
  await new Restic(repo).init();
  writeFileSync(join(work, "repositories.yaml"), stringify({ site: "secondary", repositories: { secondary: repo }, stateDir: state }));
  config = loadBackupConfig(join(work, "repositories.yaml"), { DCCTL_STATE_DIR: state });
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("the arrival ledger of the repository this site keeps", () => {
  const ids: Record<string, string> = {};

  it("begins by trusting what it finds as it claims, but for a time in the future", async () => {
    ids.old = write(new Date(T0.getTime() - 30 * 24 * H), [...tags, `run:${RUN}`]);
    ids.real1 = write(new Date(T0.getTime() - H), [...tags, `run:${RUN}`]);
    ids.ahead = write(new Date(T0.getTime() + 40 * 24 * H), [...tags, `run:${RUN}`]);
    const l = await listJudged(config, "secondary", { now, jobs: [job] });
    expect(l.byArrival).toBe(true);
    expect(l.ledgerBegan).toBe(T0.toISOString());
    expect(verdicts(l.snapshots)).toEqual({ [ids.old ?? ""]: "trusted", [ids.real1 ?? ""]: "trusted", [ids.ahead ?? ""]: "future" });
    const ledger = JSON.parse(readFileSync(arrivalLedgerPath(config, "secondary"), "utf8")) as { began: string; lastListing: string; snapshots: Record<string, { seen: string; after?: string }> };
    expect(ledger.snapshots[ids.real1 ?? ""]).toMatchObject({ seen: T0.toISOString() });
    expect(ledger.snapshots[ids.real1 ?? ""]?.after).toBeUndefined();
  });

  it("judges each newcomer when it first sees it, against its own clock, what was there and the runs' records", async () => {
    clock = new Date(T0.getTime() + 20 * 60_000);
    ids.real2 = write(new Date(T0.getTime() + 10 * 60_000), [...tags, `run:${RUN}`]);
    recordRun(RUN, [ids.real2]);
    ids.past = write(new Date(T0.getTime() - 3 * 24 * H), [...tags, `run:${RUN}`]);
    ids.older = write(new Date(T0.getTime() - 2 * H), [...tags, `run:${RUN}`]);
    ids.replay = write(new Date(T0.getTime() + 15 * 60_000), [...tags, `run:${RUN}`]);
    ids.untagged = write(new Date(T0.getTime() + 15 * 60_000), tags);
    // A run this site has no record of, while the other site's records cannot be read: not yet decided.
    ids.unknown = write(new Date(T0.getTime() + 15 * 60_000), [...tags, "run:20261205T011500-7"]);
    const l = await listJudged(config, "secondary", { now, jobs: [job], runs: runLookup(config) });
    const v = verdicts(l.snapshots);
    expect({ real2: v[ids.real2], past: v[ids.past], older: v[ids.older], replay: v[ids.replay], untagged: v[ids.untagged], unknown: v[ids.unknown] }).toEqual({
      real2: "trusted",
      past: "too-late,older-than-series,no-run",
      older: "older-than-series,no-run",
      replay: "no-run",
      untagged: "no-run",
      unknown: "pending",
    });
    expect(l.snapshots.find((s) => s.id === ids.real2)?.arrival).toEqual({ seen: clock.toISOString(), after: T0.toISOString() });
    // Counted beside the backup metrics.
    const samples = parsePrometheus(readFileSync(trustMetricsPath(config), "utf8"));
    const value = (name: string) => samples.find((s) => s.name === name && s.labels.repository === "secondary")?.value;
    expect([value("dcctl_snapshots_trusted"), value("dcctl_snapshots_implausible"), value("dcctl_snapshots_pending")]).toEqual([3, 5, 1]);
  });

  it("sends each distrusted snapshot to the SOC's feed once: DCCTL-4001, with what it claims and when it came", async () => {
    // The ledger's listings above ran without a feed: with one, what is distrusted and not yet sent is sent now, once.
    const withFeed = { ...config, soc: { collectors: [{ name: "soc", host: "127.0.0.1", port: 9, caFile: join(work, "no-ca.pem"), serverName: "soc" }], facility: "authpriv" as const, journald: false } };
    await listJudged(withFeed, "secondary", { now, jobs: [job] });
    await listJudged(withFeed, "secondary", { now, jobs: [job] });
    const spooled = readFileSync(spoolOf(state).file, "utf8").trim().split("\n").map((l) => JSON.parse(l) as { id: string; kind: string; outcome: string; severity: string; data: Record<string, string> });
    const implausible = spooled.filter((e) => e.kind === "snapshot.implausible");
    expect(implausible.map((e) => e.data.snapshot).sort()).toEqual([ids.ahead, ids.past, ids.older, ids.replay, ids.untagged].sort());
    expect(implausible.find((e) => e.data.snapshot === ids.past)).toMatchObject({ id: "DCCTL-4001", outcome: "detected", severity: "alert", data: { repository: "secondary", job: job.id, reason: "too-late,older-than-series,no-run", firstSeen: new Date(T0.getTime() + 20 * 60_000).toISOString() } });
  });

  it("keeps its verdicts; a partial listing records but drops nothing; a complete one drops what is gone", async () => {
    clock = new Date(T0.getTime() + 40 * 60_000);
    const partial = await listJudged(config, "secondary", { now, jobs: [job], filter: { tags: ["dcctl"], host: "nobody" } });
    expect(partial.snapshots).toEqual([]);
    const ledgerOf = () => JSON.parse(readFileSync(arrivalLedgerPath(config, "secondary"), "utf8")) as { lastListing: string; snapshots: Record<string, unknown> };
    expect(Object.keys(ledgerOf().snapshots)).toHaveLength(9);
    expect(ledgerOf().lastListing).toBe(new Date(T0.getTime() + 20 * 60_000).toISOString());
    await new Restic(repo).forgetIds([ids.untagged ?? ""]);
    const l = await listJudged(config, "secondary", { now, jobs: [job] });
    expect(Object.keys(ledgerOf().snapshots)).toHaveLength(8);
    expect(verdicts(l.snapshots)[ids.past ?? ""]).toBe("too-late,older-than-series,no-run");
  });

  it("takes another kind of distrust by one call", async () => {
    const real2 = (await listJudged(config, "secondary", { now, jobs: [job] })).snapshots.find((s) => s.id === ids.real2);
    if (!real2) throw new Error("real2 is gone");
    await addDistrust(config, "secondary", real2, { kind: "suspicious", rule: "anomaly", reason: "a jump in new and changed files", score: 4.2 }, clock);
    const after = (await listJudged(config, "secondary", { now, jobs: [job] })).snapshots.find((s) => s.id === ids.real2);
    expect(after?.distrust).toEqual([{ kind: "suspicious", rule: "anomaly", reason: "a jump in new and changed files", score: 4.2, at: clock.toISOString() }]);
  });

  it("prunes by arrival: only trusted snapshots go, by their places; distrusted and pending ones stay", async () => {
    const jobs = [{ ...job, host: "lab-db-01", retention: { keepLast: 1 }, minAgeMs: 0, policy: "db-hourly" } as unknown as BackupJob];
    const result = await pruneOwnRepository(jobs, config);
    // Trusted: old, real1 (real2 is now suspicious): keepLast 1 keeps real1, removes old.
    expect(result.jobs[0]).toMatchObject({ kept: 1, removed: 1, quarantined: 5, pending: 1, removedIds: [ids.old] });
    expect(result.minAgeShortened.map((m) => m.policy)).toEqual(["db-hourly"]);
    const left = new Set((await new Restic(repo).snapshots()).map((s) => s.id));
    expect(left.has(ids.old ?? "")).toBe(false);
    for (const k of ["real1", "real2", "ahead", "past", "older", "replay", "unknown"]) expect(left.has(ids[k] ?? ""), k).toBe(true);
  });

  it("trusts a snapshot an operator accepts after looking into it, keeping who, why and what it overruled", async () => {
    const done = await acceptSnapshot(config, "secondary", (ids.older ?? "").slice(0, 10), { by: "trucban", reason: "copied after a two-day WAN outage", now: clock });
    expect(done).toEqual({ id: ids.older, overruled: [expect.objectContaining({ rule: "older-than-series" }), expect.objectContaining({ rule: "no-run" })] });
    const l = await listJudged(config, "secondary", { now, jobs: [job] });
    expect(verdicts(l.snapshots)[ids.older ?? ""]).toBe("trusted");
    const ledger = JSON.parse(readFileSync(arrivalLedgerPath(config, "secondary"), "utf8")) as { snapshots: Record<string, { accepted?: { by: string; reason: string } }> };
    expect(ledger.snapshots[ids.older ?? ""]?.accepted).toMatchObject({ by: "trucban", reason: "copied after a two-day WAN outage" });
    await expect(acceptSnapshot(config, "secondary", ids.real1 ?? "", { by: "trucban", reason: "x" })).rejects.toThrow(/is trusted already/);
    await expect(acceptSnapshot(config, "secondary", "0000000000", { by: "trucban", reason: "x" })).rejects.toThrow(/not in the arrival ledger/);
  });
});
