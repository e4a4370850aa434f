import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DEFAULT_LIMITS } from "../../backup/limits.js";
import { failedOperationMessage } from "../../backup/notices/operation.js";
import { loadBackupConfig } from "../../backup/repositories.js";
import { progressKey, Restic, ResticStalledError } from "../../restic/index.js";
import { InputError } from "../../util/errors.js";
import { ProgressClock, Watchdog } from "../../util/watchdog.js";

/**
 * The bounds of restic's long commands, against a stand-in restic that prints what restic copy prints without a
 * terminal (a progress line every few hundred ms, the elapsed time first): a copy whose count moves is let run past
 * its stall limit; one whose line only repeats is stopped after it; the overall limit stops either.
 */
const dir = mkdtempSync(join(tmpdir(), "dcctl-restic-bounds-"));
writeFileSync(join(dir, "pass"), "x\n");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * A restic that prints `[0:0N] … K / 9 packs copied` every 0.2 s for `lines` lines; K moves only when `moving`. Its
 * lock listing (before a prune) is empty.
 */
function fakeRestic(name: string, lines: number, moving: boolean): string {
  const bin = join(dir, name);
  writeFileSync(bin, `#!/bin/sh\n[ "$1" = list ] && exit 0\ni=0\nwhile [ $i -lt ${lines} ]; do i=$((i+1)); k=${moving ? "$i" : "1"}; echo "[0:0$((i % 10))] 11.11%  $k / 9 packs copied"; sleep 0.2; done\n`);
  chmodSync(bin, 0o755);
  return bin;
}

const from = { url: "/from", passwordFile: join(dir, "pass") };
const repo = (bin: string) => new Restic({ url: "/to", passwordFile: join(dir, "pass") }, { bin });

async function timed(p: Promise<unknown>): Promise<{ seconds: number; error?: unknown }> {
  const t0 = Date.now();
  try {
    await p;
    return { seconds: (Date.now() - t0) / 1000 };
  } catch (error) {
    return { seconds: (Date.now() - t0) / 1000, error };
  }
}

describe("limits of restic copy, prune and check", () => {
  it("reads a progress line without its elapsed time or ETA", () => {
    expect(progressKey("[0:35] 40.00%  2 / 5 packs copied")).toBe(progressKey("[1:02:05] 40.00%  2 / 5 packs copied"));
    expect(progressKey("[0:35] 40.00%  2 / 5 packs copied")).not.toBe(progressKey("[0:40] 60.00%  3 / 5 packs copied"));
    expect(progressKey("[0:10] 10.00%  1 / 10 packs ETA 1:30")).toBe("10.00%  1 / 10 packs");
  });

  it("lets a copy whose progress moves run past its stall limit", async () => {
    // 12 lines, 2.4 s in all, against a 1 s stall limit.
    const r = await timed(repo(fakeRestic("moving", 12, true)).copy(from, { bound: { stallMs: 1000, timeoutMs: 60_000 } }));
    expect(r.error).toBeUndefined();
    expect(r.seconds).toBeGreaterThan(2);
  });

  it("stops a copy whose progress line only repeats, naming the limit and where it stood", async () => {
    const r = await timed(repo(fakeRestic("stuck", 300, false)).copy(from, { bound: { stallMs: 1000, timeoutMs: 60_000, setting: "limits.stall in r.yaml" } }));
    expect(r.error).toBeInstanceOf(ResticStalledError);
    expect(String((r.error as Error).message)).toMatch(/^stalled: restic copy from \/from on \/to made no progress for \d+\.\d s after "11\.11% {2}1 \/ 9 packs copied" \(limits\.stall in r\.yaml\); restic copy stopped$/);
    // 1 s, checked every 250 ms; far below the 60 s the stand-in would run.
    expect(r.seconds).toBeLessThan(10);
  });

  it("stops a long command at its overall limit even while it progresses", async () => {
    const r = await timed(repo(fakeRestic("endless", 300, true)).prune({ bound: { stallMs: 5000, timeoutMs: 1500 } }));
    expect(r.error).toBeInstanceOf(ResticStalledError);
    expect(String((r.error as Error).message)).toMatch(/restic prune on \/to did not finish within \d+\.\d s/);
    expect(r.seconds).toBeLessThan(10);
  });
});

describe("a stall limit shared by the parts of a job", () => {
  it("fires at once for a part that starts after the job has already been idle for the limit", async () => {
    const clock = new ProgressClock();
    clock.last = Date.now() - 5000;
    const w = new Watchdog(2000, (idle) => `idle ${Math.round(idle / 1000)} s`, clock);
    const fired = await new Promise<string>((resolve) => w.onFire(resolve));
    expect(fired).toMatch(/^idle [5-9] s$/);
  });

  it("counts a part's progress for the whole job", async () => {
    const clock = new ProgressClock();
    clock.last = Date.now() - 5000;
    new Watchdog(2000, () => "", clock).touch();
    expect(clock.idleMs()).toBeLessThan(1000);
  });
});

describe("the limits: section of the repositories file", () => {
  const file = join(dir, "repos.yaml");
  const base = ["site: primary", "repositories:", "  primary: { url: /r, passwordFile: pw }"];

  it("fills in the defaults, and reads durations as people write them", () => {
    writeFileSync(file, base.join("\n") + "\n");
    expect(loadBackupConfig(file, {}).limits).toEqual(DEFAULT_LIMITS);
    writeFileSync(file, [...base, "limits:", "  stall: 90s", "  replicate: 2h", "  listing: 30"].join("\n") + "\n");
    expect(loadBackupConfig(file, {}).limits).toEqual({ ...DEFAULT_LIMITS, stallMs: 90_000, replicateMs: 7_200_000, listingMs: 30_000 });
  });

  it("refuses a value that is not a duration, and an unknown key, with file:line", () => {
    writeFileSync(file, [...base, "limits:", "  stall: soon"].join("\n") + "\n");
    expect(() => loadBackupConfig(file, {})).toThrow(InputError);
    expect(() => loadBackupConfig(file, {})).toThrow(/repos\.yaml:5: limits\.stall: "soon" is not a duration/);
    writeFileSync(file, [...base, "limits:", "  copy: 1h"].join("\n") + "\n");
    expect(() => loadBackupConfig(file, {})).toThrow(/repos\.yaml:4: limits: must NOT have additional properties "copy"/);
  });
});

describe("the notice of a failed replicate, prune or verify", () => {
  it("says what stalled, where, why, and what to run", () => {
    writeFileSync(join(dir, "r2.yaml"), "site: primary\nrepositories:\n  primary: { url: /r, passwordFile: pw }\n");
    const config = loadBackupConfig(join(dir, "r2.yaml"), {});
    const m = failedOperationMessage(
      config,
      { op: "replicate", repository: "secondary", from: "primary", outcome: "stalled", error: "stalled: restic copy … made no progress for 10.0 s", startedAt: "2026-12-05T02:00:00.000Z", finishedAt: "2026-12-05T02:00:12.500Z", recordPath: "/var/lib/dcctl/backup/replicate/secondary.json" },
      "qn-bk-01",
    );
    expect(m.subject).toBe("[dcctl] replicate STALLED at primary: primary -> secondary");
    expect(m.event).toBe("failure");
    expect(m.text).toContain("The replicate from repository primary to secondary was stopped by its time limit at the primary site (dcctl on qn-bk-01, 2026-12-05T02:00:00.000Z to 2026-12-05T02:00:12.500Z, 12.5 s).");
    expect(m.text).toContain("Why: stalled: restic copy … made no progress for 10.0 s");
    expect(m.text).toContain("dcctl backup replicate --to secondary");
    expect(m.link).toBe("/var/lib/dcctl/backup/replicate/secondary.json");
  });
});
