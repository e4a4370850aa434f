import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalExecutor } from "../../hosts/index.js";
import { Restic } from "../../restic/index.js";
import { restorePath, RestoreTargetNotEmptyError } from "../../backup/restore-path.js";
import { FILES_TAG, FilesSource, tarCreateArgv } from "../../backup/sources/files.js";

/** The files source on the backup server itself (restic reads the paths) and restores of such snapshots, with a local repository. */

const work = mkdtempSync(join(tmpdir(), "dcctl-local-files-"));
const src = join(work, "srv", "app");
let restic: Restic;
const exec = new LocalExecutor();

beforeAll(async () => {
  mkdirSync(join(src, "cache"), { recursive: true });
  writeFileSync(join(src, "app.conf"), "workers 4\n");
  writeFileSync(join(src, "cache", "page.html"), "cached\n");
  writeFileSync(join(src, "debug.log"), "noise\n");
  writeFileSync(join(work, "pass"), "local\n", { mode: 0o600 });
  restic = new Restic({ url: join(work, "repo"), passwordFile: join(work, "pass") }, { cacheDir: join(work, "cache") });
  await restic.init();
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("files source on the local executor", () => {
  it("builds tar command lines with anchored and floating excludes", () => {
    expect(tarCreateArgv(["/etc", "/srv"], ["/srv/*/cache", "*.log"])).toEqual(["tar", "-C", "/", "-cf", "-", "--anchored", "--exclude=srv/*/cache", "--no-anchored", "--exclude=*.log", "--", "etc", "srv"]);
  });

  it("backs up real paths with restic itself, excludes applied, tagged for the job", async () => {
    const source = new FilesSource({ paths: [src], excludes: [join(src, "cache"), "*.log"] });
    const [item] = await source.items(exec);
    if (!item) throw new Error("no item");
    const summary = await source.backup(exec, restic, item, { host: "qn-bk-03", tags: ["dcctl", "job:qn-bk-03/mgmt-weekly"] });
    expect(summary.files_new).toBe(1);
    const [snap] = await restic.snapshots({ host: "qn-bk-03" });
    expect(snap?.paths).toEqual([src]);
    expect(snap?.tags).toEqual(["dcctl", "job:qn-bk-03/mgmt-weekly", FILES_TAG]);
  });

  it("restores a path of it under another folder with restic restore, and refuses a non-empty one", async () => {
    const dest = join(work, "restore");
    const result = await restorePath({ restic, host: "qn-bk-03", path: src, snapshot: "latest", targetExec: exec, destination: dest });
    expect(result.restoredTo).toBe(join(dest, src));
    expect(readFileSync(join(dest, src, "app.conf"), "utf8")).toBe("workers 4\n");
    expect(existsSync(join(dest, src, "debug.log"))).toBe(false);
    await expect(restorePath({ restic, host: "qn-bk-03", path: src, snapshot: "latest", targetExec: exec, destination: dest })).rejects.toBeInstanceOf(RestoreTargetNotEmptyError);
    let asked = "";
    await restorePath({ restic, host: "qn-bk-03", path: src, snapshot: "latest", targetExec: exec, destination: dest, confirm: async (a) => void (asked = a) });
    expect(asked).toMatch(/^overwrite the existing .*srv\/app on local with .*srv\/app from snapshot \w{8} of qn-bk-03$/);
    await expect(restorePath({ restic, host: "qn-bk-03", path: "/elsewhere", snapshot: "latest", targetExec: exec, destination: join(work, "r2") })).rejects.toThrow(/not inside the paths of snapshot/);
    await expect(restorePath({ restic, host: "qn-nope", path: src, snapshot: "latest", targetExec: exec, destination: join(work, "r3") })).rejects.toThrow(/no files snapshot of host qn-nope/);
  });
});
