import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { labPaths } from "../../lab/paths.js";
import { startDcctl } from "../helpers/cli.js";
import { sharedLab } from "../helpers/lab.js";
import { startLabMailSink, type LabMailSink } from "../helpers/lab-mail.js";
import { until } from "../helpers/until.js";

/**
 * A replicate cut by a lost site, on the lab the tests share: over a WAN slowed to 8 Mbit/s (`lab wan`),
 * `backup replicate --to secondary` runs at the primary while `lab fail secondary` freezes the secondary's
 * rest-server and cuts the WAN in the middle of the copy. With a stall limit of 30 s in the primary's repositories
 * file it fails within that limit (not for the whole outage), records the run as stalled, and its notice reaches a
 * real SMTP server (smtp-server) that listens on the loopback of the primary's management host, where dcctl runs;
 * after `lab heal`, with the WAN at its usual rate again, the next replicate copies what was missing.
 */
const t = sharedLab();
/**
 * restic's "packs copied" counts packs read from the source; the packs being written to the secondary (restic keeps
 * several uploads of up to 16 MiB in flight: most of a minute at 8 Mbit/s) go out after the count reached 100%, with
 * no progress to show. The cut lands within that window, so the limit runs from before the cut; the replicate after
 * the heal runs at the WAN's usual rate, where that window is seconds.
 */
const STALL_S = 30;
let sink: LabMailSink | undefined;

afterAll(async () => {
  await sink?.stop();
});

/** The files of a repository's data folder (packs), counted. */
function packs(repo: string): number {
  const data = join(repo, "data");
  if (!existsSync(data)) return 0;
  return readdirSync(data).reduce((n, sub) => n + (statSync(join(data, sub)).isDirectory() ? readdirSync(join(data, sub)).length : 0), 0);
}

describe("a replicate cut by a lost site", () => {
  it("fails within its stall limit, is recorded as stalled, notifies by mail, and the next replicate after the heal completes", () => t.changing(async () => {
    t.ensureUp();
    // Everything the primary holds now is at the secondary: the replicate below copies the new scan alone.
    expect(t.at("primary", ["dcctl", "backup", "replicate", "--to", "secondary"]).code).toBe(0);
    // A slow WAN (8 Mbit/s) and 40 MiB to copy: the copy takes most of a minute, long enough to be cut in the middle.
    const usualMbit = (JSON.parse(t.lab(["status", "--json"]).stdout) as { wanMbit: number }).wanMbit;
    const scan = join(t.dir, "hosts", "srv", "scan-0001.bin");
    writeFileSync(scan, randomBytes(40 * 1024 * 1024));
    const reposFile = labPaths(t.dir).reposFile("primary");
    const reposText = readFileSync(reposFile);
    try {
      await cutAndHeal(scan, reposFile, usualMbit);
    } finally {
      expect(t.lab(["heal"]).code).toBe(0);
      rmSync(scan, { force: true });
      writeFileSync(reposFile, reposText);
      expect(t.lab(["wan", "--mbit", String(usualMbit)]).code).toBe(0);
    }
  }), 900_000);
});

async function cutAndHeal(scan: string, reposFile: string, usualMbit: number): Promise<void> {
  const backup = t.at("primary", ["dcctl", "backup", "run", "--all", "--site", "primary"]);
  expect(backup.code, backup.stderr).toBe(0);
  expect(readFileSync(scan).length).toBe(40 * 1024 * 1024);
  expect(t.lab(["wan", "--mbit", "8"]).code).toBe(0);

  sink = await startLabMailSink(t.dir, "primary", "smtp");
  const port = sink.port;
  const repos = parse(readFileSync(reposFile, "utf8")) as Record<string, unknown>;
  repos.notify = { smtp: { host: "127.0.0.1", port, secure: false, from: "dcctl <dcctl@lab.invalid>", to: ["trucban@lab.invalid"] }, on: ["failure"] };
  repos.limits = { stall: `${STALL_S}s`, replicate: "30m" };
  writeFileSync(reposFile, stringify(repos));

  const secondaryRepo = join(t.dir, "repos", "secondary", "secondary");
  const packsBefore = packs(secondaryRepo);
  const run = startDcctl(["lab", "exec", "primary", "--", "dcctl", "backup", "replicate", "--to", "secondary"], t.env);
  await until("the copy to reach the secondary's repository", () => {
    if (run.child.exitCode !== null) throw new Error(`replicate ended (exit ${run.child.exitCode}) before the cut`);
    return packs(secondaryRepo) > packsBefore;
  }, 120_000);
  const fail = t.lab(["fail", "secondary"]);
  expect(fail.code, fail.stderr).toBe(0);
  const cutAt = Date.now();
  const res = await run.done;
  const seconds = (Date.now() - cutAt) / 1000;
  console.log(`replicate cut by lab fail secondary: failed ${seconds.toFixed(1)} s after the cut (stall limit ${STALL_S} s)`);
  expect(res.code, res.stderr).toBe(1);
  // Within its limit (and the notice's delivery), not for the whole outage.
  expect(seconds).toBeLessThan(STALL_S + 50);
  const lines = res.stderr.trim().split("\n");
  expect(lines).toContain("note: notified: e-mail to trucban@lab.invalid ok");
  expect(lines.at(-1)).toMatch(new RegExp(`^dcctl: stalled: restic copy from rest:http://\\S+/primary/ on rest:http://\\S+/secondary/ made no progress for .+\\(limits\\.stall / limits\\.replicate in .*repositories\\.yaml\\); restic copy stopped$`));

  const record = JSON.parse(readFileSync(join(labPaths(t.dir).stateDir("primary"), "backup", "replicate", "secondary.json"), "utf8")) as { ok: boolean; outcome: string; message: string };
  expect(record).toMatchObject({ ok: false, outcome: "stalled" });
  expect(record.message).toMatch(/made no progress/);

  const mails = await until("the notice in the SMTP server", () => sink?.mails(), 10_000);
  expect(mails).toHaveLength(1);
  expect(mails[0]?.to).toEqual(["trucban@lab.invalid"]);
  expect(mails[0]?.raw).toMatch(/^Subject: \[dcctl\] replicate STALLED at primary: primary -> secondary\r?$/m);
  expect(mails[0]?.raw).toMatch(/^X-Dcctl-Event: failure\r?$/m);

  // The outage ends: the next replicate copies what the cut one did not, and is recorded as good.
  const heal = t.lab(["heal"]);
  expect(heal.code, heal.stderr).toBe(0);
  expect(t.lab(["wan", "--mbit", String(usualMbit)]).code).toBe(0);
  const again = t.at("primary", ["dcctl", "backup", "replicate", "--to", "secondary", "--json"]);
  expect(again.code, again.stderr).toBe(0);
  expect((JSON.parse(again.stdout) as { copied: string[] }).copied.length).toBeGreaterThan(0);
  const after = JSON.parse(readFileSync(join(labPaths(t.dir).stateDir("primary"), "backup", "replicate", "secondary.json"), "utf8")) as { ok: boolean; outcome: string };
  expect(after).toMatchObject({ ok: true, outcome: "ok" });
  const nothingLeft = t.at("primary", ["dcctl", "backup", "replicate", "--to", "secondary", "--json"]);
  expect(JSON.parse(nothingLeft.stdout)).toMatchObject({ copied: [] });
}
