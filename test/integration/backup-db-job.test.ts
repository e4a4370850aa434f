import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { Restic } from "../../restic/index.js";
import { PG_BIN_DIR, startPostgres, type Postgres } from "../../lab/postgres.js";
import { startRestServer, type RestServer } from "../../lab/rest-server.js";
import { startSshd, type Sshd } from "../../lab/sshd.js";
import { repoRoot } from "../../util/tools.js";
import { dcctl as runDcctl, type CliRun } from "../helpers/cli.js";

/**
 * A database host's job through the CLI: the policy lists postgresql, mariadb and files; the host's inventory
 * `services` say it runs PostgreSQL only, so the job backs up each database, the globals and the files, and no MariaDB.
 */

const work = mkdtempSync(join(tmpdir(), "dcctl-backup-db-job-"));
let sshd: Sshd | undefined;
let rest: RestServer | undefined;
let pg: Postgres | undefined;
let env: Record<string, string> = {};
let restic: Restic;

const dcctl = (args: string[]): CliRun => runDcctl(args, { ...process.env, DCCTL_DEBUG: "", ...env });

beforeAll(async () => {
  // The PostgreSQL server account must reach its folder below this one.
  chmodSync(work, 0o755);
  sshd = await startSshd({ stateDir: join(work, "sshd") });
  rest = await startRestServer({ dataDir: join(work, "rest") });
  pg = await startPostgres({ dir: join(work, "pg") });
  await pg.psql("CREATE DATABASE portal;");
  await pg.psql("CREATE TABLE citizens (id int primary key, name text); INSERT INTO citizens VALUES (1, 'Nguyễn Văn A');", "portal");
  const pgpass = join(work, "pgpass");
  writeFileSync(pgpass, `127.0.0.1:${pg.port}:*:${pg.superuser}:${readFileSync(pg.superuserPasswordFile, "utf8").trim()}\n`, { mode: 0o600 });
  mkdirSync(join(work, "etc"));
  writeFileSync(join(work, "etc", "postgresql.conf"), "max_connections = 200\n");

  const sites = join(work, "sites");
  mkdirSync(sites);
  const fixture = join(repoRoot, "test", "fixtures", "inventory", "cross-site-ok");
  const p = parse(readFileSync(join(fixture, "primary.yaml"), "utf8")) as { hosts: Record<string, unknown>[] };
  const ssh = { host: "127.0.0.1", port: sshd.port, user: "root" };
  p.hosts = p.hosts.map((h) => (h.name === "qn-db-01" ? { ...h, services: ["postgresql"], backupPolicy: "db-test", ssh } : { ...h, backupPolicy: "db-test", ssh }));
  writeFileSync(join(sites, "primary.yaml"), stringify(p));
  const s = parse(readFileSync(join(fixture, "secondary.yaml"), "utf8")) as { hosts: Record<string, unknown>[] };
  s.hosts = s.hosts.map((h) => ({ ...h, backupPolicy: "db-test" }));
  writeFileSync(join(sites, "secondary.yaml"), stringify(s));
  writeFileSync(
    join(work, "policies.yaml"),
    stringify({
      policies: {
        "db-test": {
          sources: [{ kind: "postgresql" }, { kind: "mariadb" }, { kind: "files", paths: [join(work, "etc")] }],
          schedule: "5 * * * *",
          retention: { keepHourly: 24 },
          rpoMinutes: 90,
          repository: "primary",
        },
      },
    }),
  );
  writeFileSync(join(work, "pass"), "db job secret\n", { mode: 0o600 });
  writeFileSync(
    join(work, "repositories.yaml"),
    stringify({
      site: "primary",
      repositories: { primary: { url: rest.repo("primary"), passwordFile: "pass" } },
      ssh: { keyFile: sshd.clientKeyPath, knownHosts: sshd.knownHostsPath },
      databases: { postgresql: { port: pg.port, user: pg.superuser, passFile: pgpass, binDir: PG_BIN_DIR } },
    }),
  );
  env = { DCCTL_SITES_DIR: sites, DCCTL_POLICIES_FILE: join(work, "policies.yaml"), DCCTL_REPOS_FILE: join(work, "repositories.yaml"), DCCTL_STATE_DIR: join(work, "state") };
  restic = new Restic({ url: rest.repo("primary"), passwordFile: join(work, "pass") });
  await restic.init();
});

afterAll(async () => {
  for (const stop of [() => pg?.stop(), () => rest?.stop(), () => sshd?.stop()]) await Promise.resolve(stop()).catch((e: unknown) => console.error(e));
  rmSync(work, { recursive: true, force: true });
});

describe("a database host's backup job through dcctl", () => {
  it("backs up every database, the globals and the files, chosen by the host's services", () => {
    const run = dcctl(["backup", "run", "--job", "qn-db-01/db-test", "--json"]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const outcome = JSON.parse(run.stdout) as { results: { status: string; snapshots: string[] }[] };
    // portal, postgres, _globals, and the files.
    expect(outcome.results[0]?.snapshots).toHaveLength(4);
  });

  it("tags each snapshot with the job and its source, so restore and status find them", async () => {
    const snaps = await restic.snapshots({ tags: ["job:qn-db-01/db-test"] });
    const sources = snaps.map((s) => (s.tags ?? []).filter((t) => t.startsWith("source:") || t.startsWith("db:") || t.startsWith("pg:")).join(" ")).sort();
    expect(sources).toEqual(["source:files", "source:postgresql db:portal", "source:postgresql db:postgres", "source:postgresql pg:globals"]);
    const status = dcctl(["backup", "status", "--json"]);
    const rows = (JSON.parse(status.stdout) as { rows: { job: string; state: string }[] }).rows;
    expect(rows.find((r) => r.job === "qn-db-01/db-test")?.state).toBe("ok");
  });

  it("restores a database through dcctl restore --db, and refuses to replace an existing one without --yes (exit 5)", async () => {
    const copy = dcctl(["restore", "--host", "qn-db-01", "--db", "portal", "--target-db", "portal_copy"]);
    expect(copy.stderr).toBe("");
    expect(copy.code).toBe(0);
    expect(copy.stdout).toMatch(/^restored database portal of qn-db-01 \(snapshot \w{8}\) as portal_copy on qn-db-01\n$/);
    expect((await pg?.psql("SELECT name FROM citizens;", "portal_copy"))?.trim()).toBe("Nguyễn Văn A");
    const refused = dcctl(["restore", "--host", "qn-db-01", "--db", "portal"]);
    expect(refused.code).toBe(5);
    expect(refused.stderr.trim()).toMatch(/^dcctl: refusing to replace the existing database portal on qn-db-01 without --yes/);
    const replaced = dcctl(["restore", "--host", "qn-db-01", "--db", "portal", "--yes", "--json"]);
    expect(replaced.code).toBe(0);
    expect(JSON.parse(replaced.stdout)).toMatchObject({ targetDb: "portal", replaced: true });
    // pg_restore --jobs as asked; a count that is not one, or --jobs for a path, is refused before anything is done.
    const parallel = dcctl(["restore", "--host", "qn-db-01", "--db", "portal", "--target-db", "portal_jobs", "--jobs", "3"]);
    expect(parallel.code, parallel.stderr).toBe(0);
    expect((await pg?.psql("SELECT name FROM citizens;", "portal_jobs"))?.trim()).toBe("Nguyễn Văn A");
    for (const bad of [["--db", "portal", "--jobs", "0"], ["--db", "portal", "--jobs", "2.5"], ["--path", "/etc", "--jobs", "2"]]) {
      const refusedJobs = dcctl(["restore", "--host", "qn-db-01", ...bad]);
      expect(refusedJobs.code).toBe(2);
      expect(refusedJobs.stderr).toMatch(/^dcctl restore: --jobs must be a whole number from 1 to 64, with --db \(not [\d.]+\)\n$/);
    }
  });

  it("fails the job, keeping the good snapshots of its other sources, when a database cannot be dumped", async () => {
    // No password for the backup role any more: pg_dump cannot log in.
    writeFileSync(join(work, "pgpass"), "", { mode: 0o600 });
    const before = (await restic.snapshots()).length;
    const run = dcctl(["backup", "run", "--job", "qn-db-01", "--json"]);
    expect(run.code).toBe(1);
    const result = (JSON.parse(run.stdout) as { results: { status: string; error: string; snapshots: string[] }[] }).results[0];
    expect(result?.status).toBe("failed");
    expect(result?.error).toMatch(/^postgresql: /);
    // The files source still ran and its snapshot is good; nothing of PostgreSQL was kept.
    expect(result?.snapshots).toHaveLength(1);
    expect((await restic.snapshots()).length).toBe(before + 1);
  });
});
