import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseDocument, type YAMLMap, type YAMLSeq } from "yaml";
import { readPeerRecords, readPeerRunRecords } from "../../backup/peer-records.js";
import { runReportFile } from "../../backup/report.js";
import type { BackupConfig } from "../../backup/repositories.js";
import { runLedgerFile } from "../../backup/run-ledger.js";
import { backupStatePaths } from "../../backup/state-paths.js";
import { verifyRecordPath } from "../../backup/verify-record.js";
import { loadSites, type Sites } from "../../inventory/index.js";
import { keygen, startSshd, type Sshd } from "../../lab/sshd.js";
import { run } from "../../util/process.js";
import { repoRoot } from "../../util/tools.js";
import { dcctl } from "../helpers/cli.js";

/**
 * The primary's key on the secondary's management host, as `dcctl peer-records authorized-key` writes its line: a
 * real sshd, the primary's own key pair. It reads the secondary's records (what status, readiness and the trust check
 * need) and nothing else: no command of its choosing, no shell, no forwarding, no write.
 */

const work = mkdtempSync(join(tmpdir(), "dcctl-peer-access-"));
const peerState = join(work, "secondary-state");
const primaryKey = join(work, "primary_ed25519");
const RUN = "20261205T020000-4242";
let sshd: Sshd | undefined;
let sites: Sites;
let config: BackupConfig;

function write(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
}

/** Every file under a folder with its size and mtime: what a read-only visitor must leave as it found it. */
function tree(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .map((p) => {
      const s = statSync(join(dir, p));
      return `${p} ${s.size} ${s.mtimeMs}`;
    })
    .sort();
}

/** OpenSSH's client with the primary's key, as an intruder at the primary would use it. */
async function sshAsPrimary(args: string[], key = primaryKey): Promise<{ code: number; stdout: string; stderr: string }> {
  if (!sshd) throw new Error("sshd did not start");
  const opts = ["-F", "/dev/null", "-i", key, "-o", "IdentitiesOnly=yes", "-o", `UserKnownHostsFile=${sshd.knownHostsPath}`, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-p", String(sshd.port)];
  return run("ssh", [...opts, ...args.map((a) => (a === "HOST" ? `${sshd?.user ?? ""}@${sshd?.host ?? ""}` : a))], { timeoutMs: 20_000 });
}

beforeAll(async () => {
  // The secondary's records: its last runs, a verify, one run's report and ledger.
  const stateFile = backupStatePaths({ stateDir: peerState, metricsFile: "" }).stateFile;
  write(stateFile, JSON.stringify({ "lab-dr-db-01/db-daily": { last: { finishedAt: "2026-12-05T02:01:00.000Z", ok: true } } }));
  write(verifyRecordPath({ stateDir: peerState }, "secondary"), JSON.stringify({ repository: "secondary", at: "2026-12-05T05:10:00.000Z", ok: true }));
  write(runReportFile(backupStatePaths({ stateDir: peerState, metricsFile: "" }).reportsDir, RUN), `${JSON.stringify({ type: "run", id: RUN })}\n${JSON.stringify({ type: "job", snapshots: ["abc123"] })}\n`);
  write(runLedgerFile({ stateDir: peerState }, RUN), `${JSON.stringify({ type: "start" })}\n`);

  await keygen(primaryKey, "dcctl-primary");
  const line = dcctl(["peer-records", "authorized-key", "--key", `${primaryKey}.pub`, "--state-dir", peerState]);
  expect(line.code, line.stderr).toBe(0);
  sshd = await startSshd({ stateDir: join(work, "sshd"), moreAuthorizedKeys: [line.stdout.trim()] });

  // The lab's inventory, the secondary's management host reached at the test sshd.
  const sitesDir = join(work, "sites");
  mkdirSync(sitesDir);
  for (const file of ["primary.yaml", "secondary.yaml"]) {
    const doc = parseDocument(readFileSync(join(repoRoot, "lab", "sites", file), "utf8"));
    for (const host of (doc.get("hosts") as YAMLSeq<YAMLMap>).items) host.set("ssh", doc.createNode({ host: sshd.host, port: sshd.port, user: sshd.user }));
    writeFileSync(join(sitesDir, file), doc.toString());
  }
  sites = loadSites(sitesDir);
  config = {
    file: join(work, "repositories.yaml"),
    site: "primary",
    repositories: {},
    localHosts: ["lab-bk-01"],
    stateDir: join(work, "primary-state"),
    ssh: { keyFile: primaryKey, knownHosts: sshd.knownHostsPath },
  } as unknown as BackupConfig;
}, 60_000);

afterAll(async () => {
  await sshd?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe("the primary's key on the secondary's management host", () => {
  it("is written as a forced, restricted command by `dcctl peer-records authorized-key`", () => {
    const line = readFileSync(join(work, "sshd", "authorized_keys"), "utf8").trim().split("\n").pop() ?? "";
    expect(line).toMatch(new RegExp(`^restrict,command="\\S+ \\S+/dist/cli/main\\.js peer-records serve --state-dir ${peerState}" ssh-ed25519 \\S+ dcctl-primary$`));
    const bad = dcctl(["peer-records", "authorized-key", "--key", join(work, "sshd", "known_hosts"), "--state-dir", peerState]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/known_hosts: not one OpenSSH public key line/);
  });

  it("reads the secondary's last runs, verifies and run records", async () => {
    const before = tree(peerState);
    const records = await readPeerRecords(config, sites, "secondary", 15_000);
    expect(records.jobs["lab-dr-db-01/db-daily"]?.last.finishedAt).toBe("2026-12-05T02:01:00.000Z");
    expect(records.verify.secondary?.at).toBe("2026-12-05T05:10:00.000Z");
    const runs = await readPeerRunRecords(config, sites, "secondary", [RUN, "20261205T030000-1"], 15_000);
    expect(runs.get(RUN)).toContain(`"snapshots":["abc123"]`);
    expect(runs.get(RUN)).toContain(`"type":"start"`);
    expect(runs.get("20261205T030000-1")).toBe("");
    // Read only: not a file added or touched, not even the state folder's format mark.
    expect(tree(peerState)).toEqual(before);
  });

  it("runs no command of its own, opens no shell, forwards nothing", async () => {
    const before = tree(peerState);
    const rm = await sshAsPrimary(["HOST", `rm -rf ${peerState}`]);
    expect(rm.code).toBe(1);
    expect(rm.stderr).toMatch(/^dcctl: peer-records: refused "rm -rf .*": this key only reads the site's records/m);
    // A chained command, a path for a run id: the same refusal (test/unit/peer-access.test.ts tries many more).
    const chained = await sshAsPrimary(["HOST", `dcctl peer-records runs ../../../etc/shadow; touch ${join(peerState, "pwned")}`]);
    expect(chained.code).toBe(1);
    expect(chained.stdout).toBe("");
    const shell = await sshAsPrimary(["-T", "HOST"]);
    expect(shell.code).toBe(1);
    expect(shell.stderr).toMatch(/refused a login without a command \(no shell\)/);
    // -W: a TCP forward to the host's own sshd, which `restrict` refuses.
    const forward = await sshAsPrimary(["-W", `${sshd?.host ?? ""}:${sshd?.port ?? 0}`, "HOST"]);
    expect(forward.code).toBe(255);
    expect(forward.stderr).toMatch(/administratively prohibited|open failed/);
    const sftp = await run("sftp", ["-F", "/dev/null", "-i", primaryKey, "-o", "IdentitiesOnly=yes", "-o", `UserKnownHostsFile=${sshd?.knownHostsPath ?? ""}`, "-o", "BatchMode=yes", "-b", "-", "-P", String(sshd?.port ?? 0), `${sshd?.user ?? ""}@${sshd?.host ?? ""}`], { input: `rm ${join(peerState, "backup", "job-state.json")}\n`, timeoutMs: 20_000 });
    expect(sftp.code).not.toBe(0);
    expect(tree(peerState)).toEqual(before);
    // What the forced command answers, the same request by hand: the line, not the key, is what restricts.
    const asked = await sshAsPrimary(["HOST", "dcctl peer-records records"]);
    expect(asked.code, asked.stderr).toBe(0);
    expect(JSON.parse(asked.stdout)).toHaveProperty("jobState");
    const unrestricted = await sshAsPrimary(["HOST", "true"], sshd?.clientKeyPath);
    expect(unrestricted.code).toBe(0);
  });
});
