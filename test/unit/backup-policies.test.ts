import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadSites, siteFilePath } from "../../inventory/index.js";
import { expandJobs, selectJobs } from "../../backup/jobs.js";
import { loadPolicies, parsePolicies } from "../../backup/policies.js";
import { loadBackupConfig } from "../../backup/repositories.js";
import { InputError } from "../../util/errors.js";
import { repoRoot } from "../../util/tools.js";

const work = mkdtempSync(join(tmpdir(), "dcctl-policies-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof InputError) return e.problems;
    throw e;
  }
  throw new Error("expected an InputError");
}

describe("backup/policies.yaml", () => {
  it("defines every policy the default inventory names, and the jobs follow the hosts", () => {
    const jobs = expandJobs(loadSites(), loadPolicies());
    // 33 primary hosts, and the secondary's hosts that are not active-only.
    const sites = loadSites();
    const expected = sites.primary.hosts.length + sites.secondary.hosts.filter((h) => !h.activeOnly).length;
    expect(jobs).toHaveLength(expected);
    const db01 = jobs.find((j) => j.id === "qn-db-01/db-hourly");
    expect(db01?.sources.map((s) => s.kind)).toEqual(["postgresql", "files"]);
    expect(db01?.ssh).toEqual({ host: "10.10.20.11", port: 22, user: "dcctl" });
    expect(jobs.find((j) => j.host === "qn-db-04")?.sources.map((s) => s.kind)).toEqual(["mariadb", "files"]);
    expect(jobs.find((j) => j.host === "qn-bk-04")?.ssh.port).toBe(2222);
    expect(new Set(jobs.map((j) => j.id)).size).toBe(jobs.length);
  });

  it("selects jobs by id, by host name and by site", () => {
    const jobs = expandJobs(loadSites(), loadPolicies());
    expect(selectJobs(jobs, { job: "qn-db-01" }).map((j) => j.id)).toEqual(["qn-db-01/db-hourly"]);
    expect(selectJobs(jobs, { all: true, site: "secondary" }).every((j) => j.site === "secondary")).toBe(true);
    expect(problemsOf(() => selectJobs(jobs, { job: "qn-nope" }))[0]).toMatch(/no job "qn-nope"/);
  });

  it("reports a policy the inventory names but policies.yaml lacks at the host's file:line", () => {
    const text = readFileSync(join(repoRoot, "backup", "policies.yaml"), "utf8").replace(/^ {2}db-hourly:/m, "  db-hourly-renamed:");
    const file = join(work, "missing.yaml");
    writeFileSync(file, text);
    const problems = problemsOf(() => expandJobs(loadSites(), loadPolicies(file)));
    expect(problems).toHaveLength(3);
    const primary = readFileSync(siteFilePath("primary"), "utf8").split("\n");
    const line = primary.findIndex((l) => l.includes("backupPolicy: db-hourly")) + 1;
    expect(problems[0]).toBe(`stacks/sites/primary.yaml:${line}: host "qn-db-01": backup policy "db-hourly" is not defined in ${file} (defined: db-hourly-renamed, db-daily, app-daily, files-daily, mgmt-weekly)`);
  });

  it("checks cron expressions, retention and fields, each as file:line", () => {
    const text = [
      "policies:", // 1
      "  p1:", // 2
      "    sources: [{ kind: files, paths: [/etc] }]", // 3
      '    schedule: "61 * * * *"', // 4
      "    retention: { keepDaily: 0 }", // 5
      "    rpoMinutes: 60", // 6
      "    repository: tertiary", // 7
      "  p2:", // 8
      "    sources: [{ kind: files, paths: [etc] }, { kind: oracle }]", // 9
      '    schedule: "0 2 * *"', // 10
      "    retention: { keepDaily: 7 }", // 11
      "    rpoMinutes: 60", // 12
      "    repository: primary", // 13
      "    bandwidth: 10", // 14
      "",
    ].join("\n");
    const problems = problemsOf(() => parsePolicies(join(work, "bad.yaml"), text));
    const at = (line: number) => problems.filter((p) => p.startsWith(`${join(work, "bad.yaml")}:${line}: `));
    expect(at(5)[0]).toMatch(/policy p1: retention.keepDaily must be >= 1/);
    expect(at(7)[0]).toMatch(/policy p1: repository must be one of: primary, secondary/);
    expect(at(9).join("\n")).toMatch(/sources\[0\].paths\[0\] must match pattern/);
    expect(at(9).join("\n")).toMatch(/sources\[1\].kind must be one of: files, postgresql, mariadb/);
    expect(at(14)[0]).toMatch(/policy p2: unknown field "bandwidth"/);

    const cron = problemsOf(() => parsePolicies("c.yaml", text.replace("    retention: { keepDaily: 0 }", "    retention: { keepDaily: 1 }").replace("tertiary", "primary").replace("paths: [etc] }, { kind: oracle }", "paths: [/etc] }").replace("    bandwidth: 10\n", "")));
    expect(cron).toEqual([`c.yaml:4: policy p1: schedule: minute 61 is out of range 0-59`, `c.yaml:10: policy p2: schedule: cron expression "0 2 * *" has 4 fields (expected 5: minute hour day-of-month month day-of-week)`]);
  });

  it("reads prune's minAge and a copy's arrivalLag as spans, with the defaults of issue 24, at file:line when wrong", () => {
    const base = ["policies:", "  p1:", "    sources: [{ kind: files, paths: [/etc] }]", '    schedule: "0 2 * * *"', "    retention: { keepDaily: 7 }", "    rpoMinutes: 60", "    repository: primary"];
    const plain = parsePolicies("p.yaml", base.join("\n") + "\n");
    // A week by default; replicate hourly (the default cycle): a copy may be up to 25 h late.
    expect(plain.policies.get("p1")).toMatchObject({ minAgeMs: 7 * 86_400_000 });
    expect(plain.policies.get("p1")?.minAgeAt()).toBe("p.yaml");
    expect(plain.defaultArrivalLagMs).toBe(25 * 3_600_000);
    const withReplicate = parsePolicies("p.yaml", ['cycle: { replicate: { schedule: "20 */6 * * *" } }', ...base].join("\n") + "\n");
    expect(withReplicate.defaultArrivalLagMs).toBe(30 * 3_600_000);
    const set = parsePolicies("p.yaml", [...base, "    minAge: 0", "    arrivalLag: 3d"].join("\n") + "\n");
    expect(set.policies.get("p1")).toMatchObject({ minAgeMs: 0, arrivalLagMs: 3 * 86_400_000 });
    expect(set.policies.get("p1")?.minAgeAt()).toBe("p.yaml:8");
    expect(problemsOf(() => parsePolicies("p.yaml", [...base, "    minAge: a week", "    arrivalLag: 0"].join("\n") + "\n"))).toEqual([
      "p.yaml:8: policy p1: minAge: not a span of time (e.g. 7d, 36h, 0)",
      "p.yaml:9: policy p1: arrivalLag: not a span of time above 0 (e.g. 1d, 36h)",
    ]);
  });

  it("reads the repositories config with paths relative to it", () => {
    const file = join(work, "repos.yaml");
    writeFileSync(file, ["site: secondary", "repositories:", "  primary: { url: 'rest:http://127.0.0.1:1/p/', passwordFile: pw }", "  secondary: { url: repo2, passwordFile: /etc/pw2 }", "localHosts: [qn-bk-03]", ""].join("\n"));
    const config = loadBackupConfig(file, { DCCTL_STATE_DIR: join(work, "state") });
    expect(config.site).toBe("secondary");
    expect(config.repositories.primary?.repo).toEqual({ url: "rest:http://127.0.0.1:1/p/", passwordFile: join(work, "pw") });
    expect(config.repositories.secondary?.repo.url).toBe(join(work, "repo2"));
    expect(config.metricsFile).toBe(join(work, "state", "backup", "dcctl_backup.prom"));
    expect(config.databases.postgresql.port).toBe(5432);
    writeFileSync(file, "site: primary\nrepositories:\n  primary: { url: x }\n");
    expect(problemsOf(() => loadBackupConfig(file))[0]).toMatch(/repos\.yaml:3: repositories.primary: must have required property 'passwordFile'/);
  });
});
