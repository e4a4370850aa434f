import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { LockedError, acquireLock, liveHolder } from "../../util/lock.js";
import { mergeState, parsePrometheus, renderPrometheus, writeRunReport, type JobResult } from "../../backup/report.js";
import { runExitCode } from "../../backup/run.js";
import { ExitCode } from "../../util/errors.js";

const work = mkdtempSync(join(tmpdir(), "dcctl-lock-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The pid of a process that has exited (so it is certainly not alive, and not reused yet). */
function deadPid(): number {
  const res = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  return Number(res.stdout);
}

describe("lock files", () => {
  it("lets one exclusive holder in and refuses the next with exit 3", async () => {
    const a = await acquireLock(work, "host-a", { what: "host a" });
    const err = await acquireLock(work, "host-a", { what: "host a" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockedError);
    expect((err as LockedError).exitCode).toBe(ExitCode.locked);
    expect((err as LockedError).message).toMatch(/host a is locked by another run \(pid \d+/);
    a.release();
    (await acquireLock(work, "host-a")).release();
  });

  it("waits up to waitMs for the holder to let go", async () => {
    const a = await acquireLock(work, "host-b");
    setTimeout(() => a.release(), 300);
    const t0 = Date.now();
    const b = await acquireLock(work, "host-b", { waitMs: 5_000 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    b.release();
  });

  it("lets shared holders coexist but not beside an exclusive one", async () => {
    const s1 = await acquireLock(work, "repo-x", { mode: "shared" });
    const s2 = await acquireLock(work, "repo-x", { mode: "shared" });
    await expect(acquireLock(work, "repo-x", { mode: "exclusive" })).rejects.toBeInstanceOf(LockedError);
    s1.release();
    s2.release();
    const x = await acquireLock(work, "repo-x", { mode: "exclusive" });
    await expect(acquireLock(work, "repo-x", { mode: "shared" })).rejects.toBeInstanceOf(LockedError);
    x.release();
    expect(readdirSync(join(work, "repo-x"))).toEqual([]);
  });

  it("removes a lock whose process is gone", async () => {
    const dir = join(work, "host-c");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "exclusive.lock"), JSON.stringify({ pid: deadPid(), host: (await import("node:os")).hostname() }));
    writeFileSync(join(dir, "shared-1-1.lock"), JSON.stringify({ pid: deadPid() }));
    const lock = await acquireLock(work, "host-c");
    expect(JSON.parse(readFileSync(lock.path, "utf8")).pid).toBe(process.pid);
    expect(existsSync(join(dir, "shared-1-1.lock"))).toBe(false);
    lock.release();
  });

  it("keeps the holder's metadata, reads back the live holder and reports the stale holder it broke", async () => {
    const host = (await import("node:os")).hostname();
    const a = await acquireLock(work, "scope-m", { meta: { runId: "run-1" } });
    expect(a.brokeStale).toBeUndefined();
    expect(liveHolder(work, "scope-m")).toMatchObject({ pid: process.pid, host, meta: { runId: "run-1" } });
    const err = await acquireLock(work, "scope-m").catch((e: unknown) => e);
    expect((err as LockedError).holder).toMatchObject({ pid: process.pid, meta: { runId: "run-1" } });
    a.release();
    expect(liveHolder(work, "scope-m")).toBeUndefined();

    const gone = deadPid();
    writeFileSync(join(work, "scope-m", "exclusive.lock"), JSON.stringify({ pid: gone, host, at: "2026-01-01T00:00:00.000Z", meta: { runId: "crashed" } }));
    expect(liveHolder(work, "scope-m")).toBeUndefined();
    const b = await acquireLock(work, "scope-m", { meta: { runId: "run-2" } });
    expect(b.brokeStale).toEqual([{ pid: gone, host, at: "2026-01-01T00:00:00.000Z", meta: { runId: "crashed" }, file: join(work, "scope-m", "exclusive.lock"), start: undefined }]);
    expect(liveHolder(work, "scope-m")?.meta).toEqual({ runId: "run-2" });
    b.release();
  });
});

function result(job: string, status: JobResult["status"], finishedAt = "2026-01-01T00:00:10.000Z"): JobResult {
  return { job, host: job.split("/")[0] ?? "", site: "primary", policy: "app-daily", repository: "primary", status, startedAt: "2026-01-01T00:00:00.000Z", finishedAt, durationSeconds: 10.5, snapshots: ["abc"], bytesAdded: 1234, filesNew: 7, filesChanged: 1, ...(status === "ok" ? {} : { error: "boom" }) };
}

describe("run reports", () => {
  it("exit codes: 0 all ok, 1 all failed, 4 some failed, 3 locked", () => {
    expect(runExitCode([result("a/p", "ok"), result("b/p", "ok")])).toBe(0);
    expect(runExitCode([result("a/p", "failed"), result("b/p", "failed")])).toBe(1);
    expect(runExitCode([result("a/p", "ok"), result("b/p", "failed")])).toBe(4);
    expect(runExitCode([result("a/p", "locked")])).toBe(3);
    expect(runExitCode([result("a/p", "ok"), result("b/p", "locked")])).toBe(3);
  });

  it("keeps the last success across failed runs and renders a textfile Prometheus can parse", () => {
    let state = mergeState({}, [result("a/p", "ok"), result("b/p", "failed")]);
    state = mergeState(state, [result("a/p", "failed", "2026-01-02T00:00:00.000Z")]);
    const samples = parsePrometheus(renderPrometheus(state));
    const get = (name: string, job: string) => samples.find((s) => s.name === name && s.labels.job === job)?.value;
    expect(get("dcctl_backup_last_success_timestamp_seconds", "a/p")).toBe(Date.parse("2026-01-01T00:00:10Z") / 1000);
    expect(get("dcctl_backup_exit_status", "a/p")).toBe(1);
    expect(get("dcctl_backup_last_success_timestamp_seconds", "b/p")).toBeUndefined();
    expect(get("dcctl_backup_duration_seconds", "b/p")).toBe(10.5);
    expect(get("dcctl_backup_bytes_added", "b/p")).toBe(1234);
    expect(get("dcctl_backup_files_new", "b/p")).toBe(7);
    expect(() => parsePrometheus("dcctl_x{job=unquoted} 1")).toThrow();
  });

  it("writes the JSON-lines report and metrics atomically (no temp files left)", async () => {
    const dir = join(work, "state");
    const paths = { reportsDir: join(dir, "reports"), stateFile: join(dir, "state.json"), metricsFile: join(dir, "m.prom"), locksDir: join(dir, "locks") };
    const path = await writeRunReport(paths, { id: "r1", startedAt: "s", finishedAt: "f", exitCode: 4 }, [result("a/p", "ok"), result("b/p", "failed")]);
    const lines = readFileSync(path, "utf8").trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.type)).toEqual(["run", "job", "job"]);
    expect(lines[0]?.exitCode).toBe(4);
    expect(lines[2]?.error).toBe("boom");
    expect(readdirSync(paths.reportsDir).sort()).toEqual(["last-run.jsonl", "run-r1.jsonl"]);
    expect(readdirSync(dir).filter((f) => f.includes(".tmp"))).toEqual([]);
    expect(parsePrometheus(readFileSync(paths.metricsFile, "utf8")).length).toBeGreaterThan(0);
  });
});
