import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { parseInstant } from "../../util/instant.js";
import { exitStatus } from "../../util/process.js";

/** What `--failed-at` accepts, and how a child's end is passed on (`dcctl lab exec`): real children, real signals. */

describe("parseInstant (--failed-at)", () => {
  const now = new Date("2026-12-05T08:00:00Z");
  it("takes ISO 8601 with an offset, to the minute, second or fraction", () => {
    expect(parseInstant("2026-11-22T05:40:00Z", now)).toEqual(new Date("2026-11-22T05:40:00Z"));
    expect(parseInstant("2026-11-22T12:40+07:00", now)).toEqual(new Date("2026-11-22T05:40:00Z"));
    expect(parseInstant("2026-11-22T12:40:05.250+0700", now)).toEqual(new Date("2026-11-22T05:40:05.250Z"));
  });
  it("refuses what is not one moment everywhere, with the reason", () => {
    for (const bad of ["banana", "", "2026-11-22", "2026-11-22T05:40:00", "2026-11-22 05:40:00Z", "1700000000"]) {
      expect(parseInstant(bad, now), bad).toEqual({ problem: expect.stringMatching(/^not a time \(use ISO 8601 with an offset/) });
    }
    for (const bad of ["2026-02-30T05:40:00Z", "2026-13-01T00:00:00Z", "2026-11-22T24:00:00Z", "2026-11-22T05:60:00Z", "2026-11-22T05:40:00+25:00"]) {
      expect(parseInstant(bad, now), bad).toEqual({ problem: expect.stringMatching(/^not a time: no such date or time of day/) });
    }
    expect(parseInstant("2026-12-05T08:05:00Z", now)).toEqual({ problem: "is in the future (now is 2026-12-05T08:00:00Z)" });
    // A clock a few seconds ahead of this one is not the future.
    expect(parseInstant("2026-12-05T08:00:30Z", now)).toEqual(new Date("2026-12-05T08:00:30Z"));
  });
});

describe("exitStatus: a child's end as a shell says it", () => {
  const end = (script: string) =>
    new Promise<number>((resolve) => {
      const child = spawn("sh", ["-c", script], { stdio: "ignore" });
      child.once("close", (code, signal) => resolve(exitStatus(code, signal)));
    });
  it("128 + the signal that killed it: 137 for SIGKILL (an OOM kill too), 143 for SIGTERM, 139 for SIGSEGV", async () => {
    expect(await end("kill -KILL $$")).toBe(137);
    expect(await end("kill -TERM $$")).toBe(143);
    expect(await end("kill -SEGV $$")).toBe(139);
  });
  it("its own exit code otherwise", async () => {
    expect(await end("exit 0")).toBe(0);
    expect(await end("exit 3")).toBe(3);
    expect(exitStatus(null, "SIGUSR1")).toBe(138);
    expect(exitStatus(null, null)).toBe(1);
  });
});
