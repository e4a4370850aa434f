import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startPostgres, type Postgres } from "./postgres.js";
import { startRestServer, type RestServer } from "./rest-server.js";
import { startSshd, type Sshd } from "./sshd.js";

/**
 * One host's real servers, for a test that runs dcctl inside a network namespace of its own with nothing else in it
 * (the release test): `node dist/lab/host-servers.js DIR`, started in that namespace, brings up sshd, rest-server and
 * PostgreSQL (a `portal` database with a row in it) on the namespace's loopback, writes DIR/servers.json once all
 * answer, and stops them all when told (SIGTERM, SIGINT) or when the process that started it is gone. The servers
 * must start from inside the namespace, since their readiness is probed on its loopback, which no other namespace
 * reaches.
 */

export interface HostServers {
  sshd: { port: number; user: string; clientKeyPath: string; knownHostsPath: string };
  rest: { url: string; repo: string };
  postgres: { port: number; superuser: string; passFile: string; socketDir: string };
}

async function main(dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  // PostgreSQL's account must reach its folder below this one.
  chmodSync(dir, 0o755);
  const running: { stop(): Promise<void> }[] = [];
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    for (const s of running.reverse()) await s.stop().catch(() => undefined);
    process.exit(code);
  };
  for (const sig of ["SIGTERM", "SIGINT"] as const) process.on(sig, () => void stop(0));
  const parent = process.ppid;
  setInterval(() => process.ppid !== parent && void stop(0), 1000).unref();
  try {
    const sshd: Sshd = await startSshd({ stateDir: join(dir, "sshd") });
    running.push(sshd);
    const rest: RestServer = await startRestServer({ dataDir: join(dir, "rest") });
    running.push(rest);
    const pg: Postgres = await startPostgres({ dir: join(dir, "pg") });
    running.push(pg);
    await pg.psql("CREATE DATABASE portal;");
    await pg.psql("CREATE TABLE citizens (id int primary key, name text); INSERT INTO citizens VALUES (1, 'Nguyễn Văn A');", "portal");
    const passFile = join(dir, "pgpass");
    writeFileSync(passFile, `127.0.0.1:${pg.port}:*:${pg.superuser}:${readFileSync(pg.superuserPasswordFile, "utf8").trim()}\n`, { mode: 0o600 });
    const servers: HostServers = {
      sshd: { port: sshd.port, user: sshd.user, clientKeyPath: sshd.clientKeyPath, knownHostsPath: sshd.knownHostsPath },
      rest: { url: rest.url, repo: rest.repo("primary") },
      postgres: { port: pg.port, superuser: pg.superuser, passFile, socketDir: pg.socketDir },
    };
    writeFileSync(join(dir, "servers.json.partial"), JSON.stringify(servers, null, 2));
    renameSync(join(dir, "servers.json.partial"), join(dir, "servers.json"));
  } catch (e) {
    process.stderr.write(`host-servers: ${e instanceof Error ? e.message : String(e)}\n`);
    await stop(1);
  }
}

const dir = process.argv[2];
if (!dir) {
  process.stderr.write("usage: node dist/lab/host-servers.js DIR\n");
  process.exit(2);
}
await main(dir);
