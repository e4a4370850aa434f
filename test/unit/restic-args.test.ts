import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Restic } from "../../restic/index.js";

// A stand-in restic that records its arguments and answers like `restic snapshots --json` on an empty repository.
const dir = mkdtempSync(join(tmpdir(), "dcctl-restic-args-"));
const argsFile = join(dir, "args");
const bin = join(dir, "restic");
writeFileSync(bin, `#!/bin/sh\nprintf '%s\\n' "$@" > ${argsFile}\necho '[]'\n`);
chmodSync(bin, 0o755);
writeFileSync(join(dir, "pass"), "x\n");

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("restic's global flags", () => {
  it("passes a policy's upload limit as --limit-upload, and none when there is no limit", async () => {
    await new Restic({ url: "/nowhere", passwordFile: join(dir, "pass") }, { bin, limitUploadKiB: 51200 }).snapshots();
    expect(readFileSync(argsFile, "utf8").split("\n")).toEqual(expect.arrayContaining(["--limit-upload", "51200"]));
    await new Restic({ url: "/nowhere", passwordFile: join(dir, "pass") }, { bin }).snapshots();
    expect(readFileSync(argsFile, "utf8")).not.toContain("--limit-upload");
  });
});
