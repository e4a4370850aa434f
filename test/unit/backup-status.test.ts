import { describe, expect, it } from "vitest";
import type { BackupJob } from "../../backup/jobs.js";
import type { JobResult } from "../../backup/report.js";
import type { Snapshot } from "../../restic/index.js";
import { addReplicas, jobStatus, snapshotItem } from "../../backup/status.js";
import type { PairStatus } from "../../backup/replication/index.js";

/** backup status judges a job by every one of its items, each against the job's RPO. */

const now = new Date("2026-11-22T12:00:00Z");
const job: BackupJob = {
  id: "lab-db-01/db-hourly",
  host: "lab-db-01",
  site: "primary",
  policy: "db-hourly",
  ssh: { host: "127.0.0.1", port: 22, user: "backup" },
  sources: [{ kind: "postgresql" }, { kind: "files", paths: ["/etc"], excludes: [] }],
  repository: "primary",
  schedule: "5 * * * *",
  retention: { keepLast: 1 },
  rpoMinutes: 90,
  limitUploadKiB: 0,
  randomizedDelaySec: 0,
  stallMs: 300_000,
  minAgeMs: 7 * 86_400_000,
  arrivalLagMs: 25 * 3_600_000,
};
const minutesAgo = (m: number) => new Date(now.getTime() - m * 60_000).toISOString();
let n = 0;
const snap = (tags: string[], ago: number): Snapshot => ({ id: `${++n}`.padStart(64, "0"), short_id: `${n}`.padStart(8, "0"), time: minutesAgo(ago), tree: "", paths: [], hostname: job.host, tags: ["dcctl", `job:${job.id}`, ...tags] });
const files = (ago: number) => snap(["source:files"], ago);
const pg = (db: string, ago: number) => snap(["source:postgresql", `db:${db}`], ago);
const lastRun = (items: JobResult["items"], error?: string): JobResult => ({
  job: job.id, host: job.host, site: job.site, policy: job.policy, repository: "primary", status: error ? "failed" : "ok",
  startedAt: minutesAgo(10), finishedAt: minutesAgo(9), durationSeconds: 60, snapshots: [], bytesAdded: 0, filesNew: 0, filesChanged: 0, items, ...(error ? { error } : {}),
});

describe("backup status per item", () => {
  it("names the item of a snapshot from its tags", () => {
    expect(snapshotItem(["source:files"])).toBe("files");
    expect(snapshotItem(["source:postgresql", "pg:globals"])).toBe("postgresql/_globals");
    expect(snapshotItem(["source:postgresql", "db:portal"])).toBe("postgresql/portal");
    expect(snapshotItem(["source:mariadb", "db:mail"])).toBe("mariadb/mail");
    expect(snapshotItem(["dcctl"])).toBeUndefined();
  });

  it("is not ok when the files are fresh but a database's dump has been failing past the RPO", () => {
    const last = lastRun(
      [
        { name: "files", status: "ok" },
        { name: "postgresql/portal", status: "failed", error: "pg_dump: error: connection lost" },
      ],
      "postgresql/portal: pg_dump: error: connection lost",
    );
    const row = jobStatus(job, [files(5), pg("portal", 200)], last, now);
    expect(row.state).toBe("over-rpo");
    expect(row.items.map((i) => [i.item, i.state])).toEqual([
      ["files", "ok"],
      ["postgresql/portal", "over-rpo"],
    ]);
    expect(row.items[1]?.lastError).toBe("pg_dump: error: connection lost");
    expect(Math.round(row.ageMinutes ?? 0)).toBe(200);
  });

  it("counts a database the last run tried but never saved as never backed up", () => {
    const last = lastRun([{ name: "files", status: "ok" }, { name: "postgresql/portal", status: "failed", error: "x" }], "x");
    expect(jobStatus(job, [files(5)], last, now).state).toBe("none");
  });

  it("is ok only when every item is within its RPO, and forgets a database the last run no longer had", () => {
    const last = lastRun([{ name: "files", status: "ok" }, { name: "postgresql/portal", status: "ok" }]);
    const row = jobStatus(job, [files(5), pg("portal", 30), pg("dropped", 900)], last, now);
    expect(row.state).toBe("ok");
    expect(row.items.map((i) => i.item)).toEqual(["files", "postgresql/portal"]);
  });

  it("without a record of the last run, judges the items its snapshots show, and a database source with none as never backed up", () => {
    expect(jobStatus(job, [files(5), pg("portal", 100)], undefined, now).state).toBe("over-rpo");
    const onlyFiles = jobStatus(job, [files(5)], undefined, now);
    expect(onlyFiles.items.map((i) => [i.item, i.state])).toEqual([
      ["files", "ok"],
      ["postgresql", "none"],
    ]);
  });

  it("expects no dump of a server the last run listed with no database in it (an empty standby)", () => {
    const row = jobStatus(job, [files(5)], lastRun([{ name: "files", status: "ok" }]), now);
    expect(row.items.map((i) => i.item)).toEqual(["files"]);
    expect(row.state).toBe("ok");
  });

  it("judges the databases its snapshots show when the last run could not list them", () => {
    const last = lastRun([{ name: "postgresql", status: "failed", error: "psql: password authentication failed" }, { name: "files", status: "ok" }], "postgresql: psql: …");
    const row = jobStatus(job, [files(5), pg("portal", 20)], last, now);
    expect(row.items.map((i) => [i.item, i.state])).toEqual([
      ["files", "ok"],
      ["postgresql/portal", "ok"],
    ]);
    expect(row.lastError).toMatch(/^postgresql: /);
  });
});

describe("backup status counts only what this site trusts", () => {
  it("a snapshot dated 30 days ahead is not 'ok, 0 min old': it is not counted, and listed as not trusted", () => {
    const forged = { ...pg("portal", -30 * 1440), arrival: { seen: minutesAgo(1), after: minutesAgo(30) }, distrust: [{ kind: "implausible" as const, rule: "future", reason: "claims …", at: minutesAgo(1) }] };
    const row = jobStatus(job, [files(5), pg("portal", 200), forged], undefined, now, "secondary");
    expect(row.items.map((i) => [i.item, i.state, Math.round(i.ageMinutes ?? -1)])).toEqual([
      ["files", "ok", 5],
      ["postgresql/portal", "over-rpo", 200],
    ]);
    expect(row.distrusted).toEqual([{ repository: "secondary", id: forged.id, short_id: forged.short_id, hostname: "lab-db-01", job: job.id, item: "postgresql/portal", time: forged.time, arrival: forged.arrival, distrust: forged.distrust }]);
  });

  it("ages a trusted snapshot from its claim, never from later than its arrival", () => {
    // Two minutes ahead of this site's clock (within the tolerance), seen a minute ago: one minute old, not zero.
    const skewed = { ...pg("portal", -2), arrival: { seen: minutesAgo(1), after: minutesAgo(20) } };
    expect(jobStatus(job, [files(5), skewed], undefined, now).items.find((i) => i.item === "postgresql/portal")?.ageMinutes).toBe(1);
  });
});

describe("backup status beside replication", () => {
  const replica = (over: Partial<PairStatus> = {}): PairStatus => ({
    pair: "lab-dr-db-01", engine: "postgresql", primary: "lab-db-01", standby: "lab-dr-db-01", tier: 1, rpoSeconds: 900,
    health: "streaming", lagSeconds: 0.2, lagBytes: 0, primaryAnswered: true, notes: [], measuredAt: minutesAgo(1), ok: true, overRpo: false, ...over,
  });

  it("shows the replica beside the job of its primary, and a streaming replica never makes a late backup good", () => {
    const late = jobStatus(job, [pg("portal", 200), files(200)], lastRun([{ name: "postgresql/portal", status: "ok" }, { name: "files", status: "ok" }]), now);
    const other = { ...jobStatus(job, [pg("portal", 5), files(5)], undefined, now), job: "lab-db-02/db-daily", host: "lab-db-02" };
    const rows = [late, other];
    addReplicas(rows, [replica()]);
    expect(late.state).toBe("over-rpo");
    expect(late.replica).toMatchObject({ pair: "lab-dr-db-01", health: "streaming", lagSeconds: 0.2 });
    expect(late.warning).toMatch(/^lab-db-01 is replicated to lab-dr-db-01 \(streaming\), but a replica is no backup: no snapshot within the job's RPO of 90 min/);
    expect(other.replica).toBeUndefined();
    expect(other.warning).toBeUndefined();
  });

  it("warns of nothing when the backups are within their RPO", () => {
    const fresh = jobStatus(job, [pg("portal", 5), files(5)], undefined, now);
    addReplicas([fresh], [replica({ health: "broken", ok: false })]);
    expect(fresh.state).toBe("ok");
    expect(fresh.replica?.health).toBe("broken");
    expect(fresh.warning).toBeUndefined();
  });
});
