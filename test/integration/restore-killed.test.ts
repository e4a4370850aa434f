import { randomBytes } from "node:crypto";
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalExecutor } from "../../hosts/index.js";
import type { StagingEntry } from "../../databases/staging.js";
import { Restic } from "../../restic/index.js";
import { postgresSource } from "../../databases/postgresql/dump.js";
import { PG_BIN_DIR, startPostgres, type Postgres } from "../../lab/postgres.js";
import { startRestServer, type RestServer } from "../../lab/rest-server.js";
import { startDcctl } from "../helpers/cli.js";
import { PG_SEED, pgSums } from "../helpers/db-fixtures.js";
import { until } from "../helpers/until.js";

/**
 * A `dcctl restore` SIGKILLed while it fills its temporary database (a real PostgreSQL, the dump coming from a real
 * rest-server behind a gate that holds the first read of a pack, so that the kill lands mid-restore, after the
 * snapshot was resolved): the temporary database was named in the restore ledger before it was created, and the next
 * restore onto the host drops it, then restores whole.
 */

/** Passes requests to `target` until told to hold; then answers no read of a pack (`/data/`) until released. */
interface PackGate {
  url: string;
  holding: () => boolean;
  hold(): void;
  release(): void;
  close(): Promise<void>;
}

async function packGate(target: string): Promise<PackGate> {
  const upstream = new URL(target);
  let hold = false;
  const held: (() => void)[] = [];
  const pass = (req: IncomingMessage, res: ServerResponse) => {
    const out = request({ host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    out.on("error", () => res.destroy());
    req.pipe(out);
  };
  const server: Server = createServer((req, res) => {
    if (hold && req.method === "GET" && /\/data\//.test(req.url ?? "")) held.push(() => pass(req, res));
    else pass(req, res);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    holding: () => held.length > 0,
    hold: () => (hold = true),
    release() {
      hold = false;
      for (const go of held.splice(0)) go();
    },
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

describe("a killed restore's temporary database", () => {
  let work: string;
  let pg: Postgres | undefined;
  let rest: RestServer | undefined;
  let gate: PackGate | undefined;
  let env: NodeJS.ProcessEnv;
  let snapshot = "";

  const need = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error("set-up did not finish");
    return v;
  };
  const temporary = async () => (await need(pg).psql("SELECT datname FROM pg_database WHERE datname LIKE 'dcctl_restore_%' ORDER BY 1")).split("\n").filter(Boolean);
  const ledger = () => join(work, "state", "restore", "staging");
  const entries = (): StagingEntry[] =>
    existsSync(ledger()) ? readdirSync(ledger()).filter((n) => n.endsWith(".json")).map((n) => JSON.parse(readFileSync(join(ledger(), n), "utf8")) as StagingEntry) : [];

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "dcctl-restore-killed-"));
    chmodSync(work, 0o755);
    [pg, rest] = await Promise.all([startPostgres({ dir: join(work, "pg") }), startRestServer({ dataDir: join(work, "rest") })]);
    await pg.psql("CREATE DATABASE portal");
    await pg.psql(PG_SEED, "portal");
    const pgpass = join(work, "pgpass");
    writeFileSync(pgpass, `127.0.0.1:${pg.port}:*:postgres:${readFileSync(pg.superuserPasswordFile, "utf8").trim()}\n`, { mode: 0o600 });
    const resticPw = join(work, "restic.pass");
    writeFileSync(resticPw, randomBytes(24).toString("base64url") + "\n", { mode: 0o600 });
    const url = rest.repo("secondary");
    const restic = new Restic({ url, passwordFile: resticPw }, { cacheDir: join(work, "restic-cache") });
    await restic.init();
    gate = await packGate(rest.url);
    const gated = `rest:${gate.url}/secondary/`;
    writeFileSync(
      join(work, "repositories.yaml"),
      [
        "site: secondary",
        "repositories:",
        `  secondary: { url: "${gated}", passwordFile: ${resticPw} }`,
        "localHosts: [qn-db-01]",
        `cacheDir: ${join(work, "restic-cache")}`,
        "databases:",
        `  postgresql: { user: postgres, passFile: ${pgpass}, binDir: ${PG_BIN_DIR}, port: ${pg.port} }`,
        "",
      ].join("\n"),
    );
    const source = postgresSource({ user: "postgres", passFile: pgpass, binDir: PG_BIN_DIR, port: pg.port, databases: ["portal"], globals: false });
    const exec = new LocalExecutor();
    const [portal] = (await source.items(exec)).filter((i) => i.name === "postgresql/portal");
    snapshot = (await source.backup(exec, restic, need(portal), { host: "qn-db-01", tags: ["dcctl", "job:qn-db-01-db-daily"] })).snapshot_id ?? "";
    env = { ...process.env, DCCTL_SITES_DIR: "", DCCTL_DEBUG: "", DCCTL_STATE_DIR: join(work, "state"), DCCTL_REPOS_FILE: join(work, "repositories.yaml") };
  });

  afterAll(async () => {
    gate?.release();
    for (const stop of [() => gate?.close(), () => pg?.stop(), () => rest?.stop()]) await Promise.resolve(stop()).catch((e: unknown) => console.error(e));
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("is named in the ledger before it exists, and the next restore drops it, then restores whole", async () => {
    const db = need(pg);
    const args = ["restore", "--host", "qn-db-01", "--db", "portal", "--target-db", "portal_copy", "--repository", "secondary", "--snapshot", snapshot, "--yes"];
    // The repository holds its packs: the restore resolves the snapshot, creates its temporary database, then waits
    // for the dump's first pack.
    need(gate).hold();
    let killedPid: number;
    let started: string;
    try {
      const run = startDcctl(args, env);
      killedPid = run.child.pid ?? 0;
      // Named first (the ledger), then created: wait for both, polling, for at most a minute.
      let named: string[] = [];
      for (const deadline = Date.now() + 60_000; named.length !== 1; ) {
        await until("the temporary database's ledger entry", () => entries().length === 1, Math.max(0, deadline - Date.now()));
        await until("the dump's first read of a pack", () => need(gate).holding(), Math.max(0, deadline - Date.now()));
        named = await temporary();
        if (named.length !== 1) await new Promise((r) => setTimeout(r, 50));
        if (Date.now() > deadline) throw new Error("timed out waiting for the temporary database");
      }
      run.child.kill("SIGKILL");
      const res = await run.done;
      expect(res.code).not.toBe(0);
      // The ledger names the very database the killed restore left, where and by whom.
      expect(entries()).toEqual([expect.objectContaining({ database: named[0], engine: "postgresql", host: "qn-db-01", restoring: "portal", into: "portal_copy", pid: killedPid })]);
      started = entries()[0]?.at ?? "";
    } finally {
      need(gate).release();
    }
    const left = await temporary();
    expect(left).toHaveLength(1);

    // Not spawnSync: the gate answering it runs in this process.
    const next = await startDcctl(args, env).done;
    expect(next.code, next.stderr).toBe(0);
    expect(next.stderr).toBe(`note: dropped postgresql database ${left[0] ?? ""} on qn-db-01, left by a restore of portal (pid ${killedPid}, started ${started}) that did not finish\n`);
    expect(await temporary()).toEqual([]);
    expect(entries()).toEqual([]);
    expect(await pgSums(db, "portal_copy")).toEqual(await pgSums(db, "portal"));
  });
});
