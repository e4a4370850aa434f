import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { labPaths } from "../../lab/paths.js";
import type { PruneResult } from "../../backup/prune.js";
import type { StatusReport } from "../../backup/status.js";
import type { Snapshot } from "../../restic/index.js";
import { quoteArgv } from "../../hosts/index.js";
import { toolPath } from "../../util/tools.js";
import { mainJs } from "../helpers/cli.js";
import { sharedLab } from "../helpers/lab.js";
import { startLabMailSink, type LabMailSink } from "../helpers/lab-mail.js";
import { until } from "../helpers/until.js";

/**
 * Issue 24's attack, on the lab the tests share. From the primary's management host, with nothing but the credentials
 * the primary holds for the secondary's (append-only) repository, an intruder writes snapshots that carry a real
 * job's host, tags and paths: one dated a month ahead, four in the past (one minutes before the newest real dump, three
 * days to weeks back), a replay of a real dump's content under the present time (restic dump | restic backup, its run
 * tag copied), a real dump rewritten to the present time (restic rewrite --new-time: same tree, same `original`), one
 * naming a run nobody ran and one naming no run. Then the secondary's prune runs as its timer runs it. What must hold:
 * no real snapshot is removed (nor would be with prune's floor set to 0: the removal plan is the one it was before
 * the attack), every forged one is reported not trusted by `backup status --json` and by a mail, and the drill's
 * precheck and restore, and `dcctl restore`, take the newest real dump. The forged snapshots are then forgotten at
 * the secondary with its own credentials, as an operator would once the investigation is done.
 */
const t = sharedLab();
const restic = toolPath("restic");
const HOST = "lab-db-01";
const JOB = `${HOST}/db-hourly`;
const DUMP = "postgresql/portal.dump";

let sink: LabMailSink | undefined;
afterAll(async () => {
  await sink?.stop();
});

interface RepoAccess {
  url: string;
  passwordFile: string;
}

function repoOf(site: "primary" | "secondary"): RepoAccess {
  const file = parse(readFileSync(labPaths(t.dir).reposFile(site), "utf8")) as { repositories: Record<string, RepoAccess> };
  const r = file.repositories.secondary;
  if (!r) throw new Error(`the ${site}'s repositories file names no secondary repository`);
  return r;
}

/** restic's --time: local time, to the second. */
function resticTime(d: Date): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** dcctl at a site with another repositories or policies file than its own (lab exec sets the site's). */
const dcctlWith = (site: "primary" | "secondary", vars: Record<string, string>, args: string[]) => t.at(site, ["env", ...Object.entries(vars).map(([k, v]) => `${k}=${v}`), process.execPath, mainJs, ...args]);

describe("snapshots forged from the primary into the secondary's repository", () => {
  it("cost no real snapshot, are reported not trusted, and are never what status, the drill or restore take", () =>
    t.changing(async () => {
      t.ensureUp();
      const started = Date.now();
      const phases: string[] = [];
      let last = started;
      const phase = (name: string) => {
        phases.push(`${name} ${((Date.now() - last) / 1000).toFixed(1)} s`);
        last = Date.now();
      };
      const paths = labPaths(t.dir);
      // The intruder: restic on the primary's management host, with the primary's URL and password for the secondary.
      const stolen = repoOf("primary");
      const intruder = (args: string[]) => t.at("primary", [restic, "--no-cache", ...args], { RESTIC_REPOSITORY: stolen.url, RESTIC_PASSWORD_FILE: stolen.passwordFile });
      // The secondary's own access, past the rest-server's --append-only: for looking, and for the clean-up.
      const own = repoOf("secondary");
      const atSecondary = (args: string[]) => t.at("secondary", [restic, "--no-cache", ...args], { RESTIC_REPOSITORY: own.url, RESTIC_PASSWORD_FILE: own.passwordFile });
      const listed = (): Snapshot[] => {
        const res = atSecondary(["snapshots", "--json"]);
        if (res.code !== 0) throw new Error(`listing the secondary's repository failed: ${res.stderr}`);
        return JSON.parse(res.stdout) as Snapshot[];
      };
      const status = (): { code: number; report: StatusReport } => {
        const res = t.at("secondary", ["dcctl", "backup", "status", "--json"]);
        return { code: res.code, report: JSON.parse(res.stdout) as StatusReport };
      };

      // The secondary has looked at its repository before (its ledger records when each snapshot arrived); then a real
      // backup of the portal's server is made and copied to it, and it looks again: real copies are trusted.
      expect(t.at("secondary", ["dcctl", "backup", "snapshots", "--repository", "secondary", "--json"]).code).toBe(0);
      const backup = t.at("primary", ["dcctl", "backup", "run", "--job", JOB]);
      expect(backup.code, backup.stderr).toBe(0);
      expect(t.at("primary", ["dcctl", "backup", "replicate", "--to", "secondary"]).code).toBe(0);
      phase("backup and replicate");
      const real = listed();
      const isPortalDump = (s: Snapshot) => s.hostname === HOST && s.paths.includes(`/${DUMP}`);
      const newestReal = real.filter(isPortalDump).sort((a, b) => Date.parse(b.time) - Date.parse(a.time))[0];
      if (!newestReal) throw new Error("no real portal dump at the secondary");

      // With prune's floor at 0, what retention by arrival would remove before the attack (a dry run).
      const policies = join(t.dir, "policies-min-age-0.yaml");
      const p = parse(readFileSync(paths.policiesFile, "utf8")) as { policies: Record<string, Record<string, unknown>> };
      for (const policy of Object.values(p.policies)) policy.minAge = 0;
      writeFileSync(policies, stringify(p));
      const dryRun = (): PruneResult => JSON.parse(dcctlWith("secondary", { DCCTL_POLICIES_FILE: policies }, ["backup", "prune", "--dry-run", "--json"]).stdout) as PruneResult;
      const removable = (p: PruneResult) => p.jobs.flatMap((j) => j.removedIds).sort();
      // The first look at the secondary after the copy: the real newcomers are judged, their runs read from the
      // primary's records, and trusted.
      const first = dryRun();
      expect(first.distrusted).toEqual([]);
      const removableBefore = removable(first);
      phase("a dry run at the secondary");

      // A mail server for the secondary's failure channel, given to its prune below.
      sink = await startLabMailSink(t.dir, "secondary", "forged-smtp");
      const port = sink.port;
      const notifying = join(t.dir, "repositories-secondary-notify.yaml");
      const repos = parse(readFileSync(paths.reposFile("secondary"), "utf8")) as Record<string, unknown>;
      writeFileSync(notifying, stringify({ ...repos, notify: { smtp: { host: "127.0.0.1", port, secure: false, from: "dcctl <dcctl@lab.invalid>", to: ["soc@lab.invalid"] }, on: ["failure"] } }));

      let forged: string[] = [];
      try {
        // The attack, from the primary's management host.
        const realOfIntruder = (JSON.parse(intruder(["snapshots", "--json", "--host", HOST, "--path", `/${DUMP}`]).stdout) as Snapshot[]).find((s) => s.id === newestReal.id);
        const tags = realOfIntruder?.tags ?? [];
        expect(tags).toEqual(expect.arrayContaining(["dcctl", `job:${JOB}`, "source:postgresql", "db:portal"]));
        // One script, as an intruder would run it: each command restic with the stolen URL and password.
        const now = new Date();
        const r = [restic, "--no-cache"];
        const backupAs = (time: Date | undefined, withTags: string[], source: string[]): string[] => [...r, "backup", "--json", "--host", HOST, ...withTags.flatMap((x) => ["--tag", x]), ...(time ? ["--time", resticTime(time)] : []), "--stdin-filename", DUMP, "--stdin-from-command", "--", ...source];
        const fake = ["printf", "%s", "-- not the portal\n"];
        const H = 3_600_000;
        const unrun = tags.filter((x) => !x.startsWith("run:"));
        const script = [
          backupAs(new Date(now.getTime() + 30 * 24 * H), tags, fake),
          backupAs(new Date(Date.parse(newestReal.time) - 10 * 60_000), tags, fake),
          ...[3, 10, 20].map((days) => backupAs(new Date(now.getTime() - days * 24 * H), tags, fake)),
          // The replay of a real dump's content under the present time, its run tag copied.
          backupAs(undefined, tags, [...r, "dump", newestReal.id, `/${DUMP}`]),
          // The real dump itself, rewritten to the present time: the same tree, the same `original`.
          [...r, "rewrite", "--new-time", resticTime(new Date(now.getTime() + 1000)), newestReal.id],
          backupAs(undefined, [...unrun, "run:20261205T000000-4242"], fake),
          backupAs(undefined, unrun, fake),
        ];
        const attack = t.at("primary", ["sh", "-c", ["set -e", ...script.map((c) => quoteArgv(c))].join("\n")], { RESTIC_REPOSITORY: stolen.url, RESTIC_PASSWORD_FILE: stolen.passwordFile });
        expect(attack.code, attack.stderr).toBe(0);
        const known = new Set(real.map((s) => s.id));
        forged = listed().filter((s) => !known.has(s.id)).map((s) => s.id).sort();
        expect(forged).toHaveLength(9);
        phase("forging 9 snapshots");

        // The secondary's prune, as its timer runs it, told to mail its failures.
        const prune = dcctlWith("secondary", { DCCTL_REPOS_FILE: notifying }, ["backup", "prune", "--wait", "600", "--json"]);
        expect(prune.code, prune.stderr).toBe(9);
        const pruned = JSON.parse(prune.stdout) as PruneResult;
        const removed = pruned.jobs.flatMap((j) => j.removedIds);
        const after = new Set(listed().map((s) => s.id));
        const lost = real.filter((s) => !after.has(s.id));
        console.log(`forged ${forged.length}; prune removed ${removed.length} (real lost: ${lost.length}); not trusted: ${pruned.distrusted.length}`);
        expect(lost).toEqual([]);
        expect(pruned.distrusted.map((d) => d.id).sort()).toEqual(forged);
        expect(pruned.jobs.find((j) => j.job === JOB)?.quarantined).toBe(9);
        // Even without the floor, the forged snapshots change nothing in what retention removes.
        expect(removable(dryRun())).toEqual(removableBefore);
        phase("prune and a dry run");

        // Reported: status at the secondary (exit 9), each forged one not trusted, with its rules; and by mail.
        const judged = status();
        expect(judged.code).toBe(9);
        const rules = Object.fromEntries(judged.report.distrusted.map((d) => [d.id, d.distrust.map((x) => `${x.kind}:${x.rule}`).sort()]));
        expect(Object.keys(rules).sort()).toEqual(forged);
        expect(Object.values(rules).every((r) => r.every((x) => x.startsWith("implausible:")))).toBe(true);
        const all = Object.values(rules).flat();
        for (const rule of ["future", "too-late", "older-than-series", "second-copy", "no-run"]) expect(all).toContain(`implausible:${rule}`);
        const row = judged.report.rows.find((r) => r.job === JOB);
        expect(row?.items.find((i) => i.item === "postgresql/portal")?.newest?.id).toBe(newestReal.short_id);
        const mails = await until("the mail of the snapshots not trusted", () => sink?.mails(), 10_000);
        expect(mails).toHaveLength(1);
        // (A long header is folded onto the next line.)
        expect(mails[0]?.raw.replace(/\r?\n[ \t]+/g, " ")).toMatch(/^Subject: \[dcctl\] IMPLAUSIBLE snapshots at secondary: 9 in repository secondary\r?$/m);
        phase("status");

        // The drill's precheck and restore take the newest real dump, and say what they passed over.
        const runbook = join(t.dir, "runbooks", "forged-drill.yaml");
        writeFileSync(runbook, FORGED_DRILL);
        try {
          const drill = t.at("secondary", ["dcctl", "dr", "drill", "--runbook", runbook]);
          expect(drill.code, drill.stdout + drill.stderr).toBe(0);
          const runs = JSON.parse(t.at("secondary", ["dcctl", "dr", "history", "--json"]).stdout) as { dir: string; runbook: string }[];
          const md = readFileSync(join((runs.find((r) => r.runbook === "lab-forged-drill") ?? runs[0])?.dir ?? "", "report.md"), "utf8");
          // The precheck's newest snapshot of the host (its dump, its globals or its files) is a real one; it names
          // what it passed over.
          const prechecked = /lab-db-01: newest snapshot (\w+) is/.exec(md)?.[1];
          expect(real.map((s) => s.short_id)).toContain(prechecked);
          const passedOver = [...md.matchAll(/lab-db-01: passed over, not trusted: snapshot (\w+) of lab-db-01/g)].map((m) => m[1]);
          expect(passedOver.length).toBeGreaterThan(0);
          expect(passedOver.every((id) => forged.some((f) => f.startsWith(id ?? "?")))).toBe(true);
          expect(md).toMatch(new RegExp(`lab-dr-bk-01: portal of lab-db-01 restored from snapshot ${newestReal.short_id} `));
        } finally {
          rmSync(runbook, { force: true });
        }
        phase("drill");

        // dcctl restore at the secondary, into a scratch database of its restore-test server.
        const restore = t.at("secondary", ["dcctl", "restore", "--host", HOST, "--db", "portal", "--repository", "secondary", "--target", "lab-dr-bk-01", "--engine", "postgresql", "--target-db", "forged_check", "--json"]);
        expect(restore.code, restore.stderr).toBe(0);
        expect((JSON.parse(restore.stdout) as { snapshotId: string }).snapshotId).toBe(newestReal.id);
        expect(restore.stderr).toMatch(/^note: passed over, not trusted: snapshot \w+ of lab-db-01 \(lab-db-01\/db-hourly, postgresql\/portal\), claiming .*: implausible: /m);
        phase("restore");
      } finally {
        dropScratch("forged_check");
        // Put back: the forged snapshots forgotten with the secondary's own credentials; its ledger drops them at its
        // next look, and what it then holds is all trusted.
        if (forged.length) expect(atSecondary(["forget", ...forged]).code).toBe(0);
        const left = t.at("secondary", ["dcctl", "backup", "snapshots", "--repository", "secondary", "--json"]);
        expect((JSON.parse(left.stdout) as { trust: string }[]).filter((r) => r.trust !== "trusted" && r.trust !== "pending")).toEqual([]);
        for (const f of [policies, notifying]) rmSync(f, { force: true });
        phase("clean-up");
        console.log(`lab-forged-snapshots: ${((Date.now() - started) / 1000).toFixed(1)} s (${phases.join(", ")})`);
      }
    }), 600_000);
});

/** Drops a scratch database on the secondary's restore-test server (its backup host's PostgreSQL). */
function dropScratch(db: string): void {
  const server = t.state().services.find((s) => s.kind === "postgresql" && s.host === "lab-dr-bk-01");
  if (!server) throw new Error("the lab has no restore-test PostgreSQL on lab-dr-bk-01");
  const res = t.at("secondary", ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-h", server.address, "-p", String(server.port), "-U", "postgres", "-d", "postgres", "-c", `DROP DATABASE IF EXISTS ${db}`], { PGPASSFILE: join(t.dir, "secrets", "postgres.pgpass") });
  if (res.code !== 0) throw new Error(`dropping ${db} failed: ${res.stderr}`);
}

/** The lab drill's precheck and portal restore alone (lab/runbooks/drill.yaml's first steps), against the forgery. */
const FORGED_DRILL = `name: lab-forged-drill
kind: drill
to: secondary
description: The drill's precheck and portal restore, with forged snapshots in the secondary's repository
groups:
  - name: prepare
    steps:
      - id: precheck
        type: precheck
        targets: { hosts: [lab-db-01] }
        timeout: 2m
        with: { repository: secondary, allowStale: true }
  - name: restore
    steps:
      - id: restore-portal
        type: restore-db
        service: portal
        targets: { hosts: [lab-dr-bk-01], services: [postgresql] }
        dependsOn: [precheck]
        timeout: 5m
        with: { repository: secondary, from: lab-db-01, databases: [portal] }
  - name: close
    steps:
      - { id: report, type: report, timeout: 1m }
`;
