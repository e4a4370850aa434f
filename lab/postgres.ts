import { randomBytes } from "node:crypto";
import { appendFileSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { userInfo } from "node:os";
import { join } from "node:path";
import { DcctlError, errorMessage } from "../util/errors.js";
import { freePort, run, startServer, type ServerProcess } from "../util/process.js";
import { checkListenAddress, placed, type Account, type Placement } from "./placement.js";

/** Where Debian keeps the PostgreSQL 15 server programs (they are not on PATH). */
export const PG_BIN_DIR = "/usr/lib/postgresql/15/bin";

export interface PostgresOptions {
  /** The state folder of this cluster: `data/` (the cluster), `run/` (its socket) and the superuser's password file. */
  dir: string;
  /** A loopback address (default 127.0.0.1). */
  host?: string;
  /** Run inside this lab namespace (the address is then the host's, not loopback). */
  placement?: Placement;
  /** Default: a free port, chosen anew on every start. */
  port?: number;
  /** The superuser role (default "postgres"). */
  superuser?: string;
  /** The unprivileged OS account the server runs as when we are root (PostgreSQL refuses root). Default "dcctl-lab". */
  osUser?: string;
  binDir?: string;
  /**
   * The superuser's password on initialisation (default random). Servers that replicate must share it: a standby
   * is a copy of its primary, roles included.
   */
  superuserPassword?: string;
}

export interface Postgres {
  host: string;
  port: number;
  superuser: string;
  /** The Unix socket folder; the superuser logs in there without a password (trust), which psql() uses. */
  socketDir: string;
  dataDir: string;
  /** A file holding the superuser's password, for logins over TCP (which need scram-sha-256). */
  superuserPasswordFile: string;
  /** The OS account the server runs as. */
  osUser: string;
  /** Runs SQL (several statements allowed) as the superuser over the socket; returns psql's unaligned, tuples-only output. */
  psql(sql: string, db?: string): Promise<string>;
  process: ServerProcess;
  stop(): Promise<void>;
}

/**
 * Starts a throwaway (or the lab's lasting) PostgreSQL cluster on a loopback port. The cluster is initialised on the
 * first start only, so a later start on the same `dir` keeps its databases. TCP logins need a password (scram-sha-256),
 * so the backup path is exercised the way a real server is reached; the socket trusts local users, for set-up.
 */
export async function startPostgres(opts: PostgresOptions): Promise<Postgres> {
  const host = opts.host ?? "127.0.0.1";
  checkListenAddress("the lab's PostgreSQL", host, opts.placement);
  const port = opts.port ?? (await freePort(host));
  const superuser = opts.superuser ?? "postgres";
  const binDir = opts.binDir ?? PG_BIN_DIR;
  const account = await serverAccount(opts.osUser ?? "dcctl-lab");
  const dataDir = join(opts.dir, "data");
  const socketDir = join(opts.dir, "run");
  const superuserPasswordFile = join(opts.dir, "superuser.password");

  mkdirSync(opts.dir, { recursive: true, mode: 0o755 });
  mkdirSync(socketDir, { recursive: true, mode: 0o755 });
  chownSync(socketDir, account.uid, account.gid);
  if (!existsSync(join(dataDir, "PG_VERSION"))) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    chownSync(dataDir, account.uid, account.gid);
    writeFileSync(superuserPasswordFile, (opts.superuserPassword ?? randomBytes(18).toString("base64url")) + "\n", { mode: 0o600 });
    // initdb reads the password from a file, so it is never on a command line; the server account must read it once.
    chownSync(superuserPasswordFile, account.uid, account.gid);
    const res = await run(...asAccount(account, join(binDir, "initdb"), [
      "-D", dataDir, "-U", superuser, "--pwfile", superuserPasswordFile,
      "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8", "--no-locale", "--no-sync",
    ]));
    if (res.code !== 0) throw new DcctlError(`initdb ${dataDir} failed: ${lastLines(res.stderr || res.stdout)}`);
    chownSync(superuserPasswordFile, process.getuid?.() ?? 0, process.getgid?.() ?? 0);
  }

  const args = ["-D", dataDir, ...serverOptions(host, port, socketDir)];
  allowNetworkLogins(dataDir);
  // In a namespace the account switch comes after entering it (setpriv); on loopback spawn switches.
  const proc = await startServer(`postgres ${host}:${port}`, ...placed(opts.placement, join(binDir, "postgres"), args, account), {
    ...(opts.placement ? {} : { uid: account.uid, gid: account.gid }),
    waitFor: { host, port, timeoutMs: 60_000 },
  });

  const psql = async (sql: string, db = "postgres"): Promise<string> => {
    // psql as a client may run as root; only the server refuses it.
    const res = await run(join(binDir, "psql"), ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", socketDir, "-p", String(port), "-U", superuser, "-d", db], { input: sql });
    if (res.code !== 0) throw new DcctlError(`psql on ${db} failed: ${lastLines(res.stderr)}`);
    return res.stdout;
  };

  await acceptingQueries(psql, proc, 60_000);

  return {
    host,
    port,
    superuser,
    socketDir,
    dataDir,
    superuserPasswordFile,
    osUser: account.name,
    psql,
    process: proc,
    stop: () => stopGently(proc, "SIGINT"),
  };
}

/**
 * A listening PostgreSQL may still refuse sessions: after an unclean stop it replays its WAL first, and a loaded
 * machine makes that seconds ("the database system is starting up"). Callers seed and query at once, so wait for a
 * query to pass; any other refusal is an error at once.
 */
async function acceptingQueries(psql: (sql: string) => Promise<string>, proc: ServerProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await psql("SELECT 1");
      return;
    } catch (e) {
      const starting = /starting up|not yet accepting connections/.test(errorMessage(e));
      if (!starting || Date.now() > deadline || proc.child.exitCode !== null) throw e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * The server's command-line settings besides its data directory: what the supervisor starts it with, and what a
 * restart after replication seeding must give again (they are not in postgresql.conf, which a base backup copies
 * from the primary).
 */
export function serverOptions(host: string, port: number, socketDir: string): string[] {
  return [
    "-p", String(port), "-k", socketDir,
    "-c", `listen_addresses=${host}`,
    // A lab cluster: durability across power loss is not worth the fsync time. synchronous_commit stays on, so a
    // commit the portal saw is in the WAL a standby is sent: what a failover loses is then what replication lagged.
    // Full page writes, hint bits in the WAL, and the WAL back to the last checkpoint before a promotion are what
    // pg_rewind needs to wind a former primary back onto the standby that took over (reprotect after a failover).
    "-c", "fsync=off", "-c", "wal_log_hints=on", "-c", "wal_keep_size=256MB",
  ];
}

/**
 * initdb lets password logins in from loopback only; the lab's servers are reached from other lab hosts (the backup
 * and DR runners), over the lab's networks, which only exist inside its namespaces.
 */
function allowNetworkLogins(dataDir: string): void {
  const hba = join(dataDir, "pg_hba.conf");
  // "all" does not cover replication connections: standbys (dcctl replication setup) need their own line.
  const lines = ["host all all 0.0.0.0/0 scram-sha-256", "host replication all 0.0.0.0/0 scram-sha-256"];
  const have = readFileSync(hba, "utf8");
  const missing = lines.filter((l) => !have.includes(l));
  if (missing.length) appendFileSync(hba, `# dcctl lab: logins from the lab's networks\n${missing.join("\n")}\n`);
}

/**
 * The account a database server runs as: when we are root, the named unprivileged system account (created if missing);
 * otherwise ourselves, since only root can switch users.
 */
export async function serverAccount(name: string): Promise<Account> {
  const me = userInfo();
  if (me.uid !== 0) return { name: me.username, uid: me.uid, gid: me.gid };
  if ((await run("id", ["-u", name])).code !== 0) {
    const res = await run("useradd", ["--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", name]);
    // Another test file may have created it at the same moment.
    if (res.code !== 0 && (await run("id", ["-u", name])).code !== 0) throw new DcctlError(`useradd ${name} failed: ${lastLines(res.stderr)}`);
  }
  const uid = Number((await run("id", ["-u", name])).stdout.trim());
  const gid = Number((await run("id", ["-g", name])).stdout.trim());
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) throw new DcctlError(`cannot find the ids of account ${name}`);
  return { name, uid, gid };
}

/** The command line that runs `cmd` as the account (runuser when we are root and it is someone else). */
export function asAccount(account: Account, cmd: string, args: string[]): [string, string[]] {
  if (userInfo().uid === 0 && account.uid !== 0) return ["runuser", ["-u", account.name, "--", cmd, ...args]];
  return [cmd, args];
}

/**
 * Asks the server's main process to shut down with `signal` (PostgreSQL: SIGINT is the fast shutdown that disconnects
 * clients; SIGTERM would wait for them), then falls back to stopping the whole process group.
 */
export async function stopGently(proc: ServerProcess, signal: NodeJS.Signals, graceMs = 15_000): Promise<void> {
  const child = proc.child;
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<boolean>((resolve) => child.once("exit", () => resolve(true)));
  try {
    process.kill(child.pid, signal);
  } catch {
    return;
  }
  const timer = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), graceMs).unref());
  if (!(await Promise.race([exited, timer]))) await proc.stop();
  // Backends or helpers left in the group (after a crash) go with the group.
  await proc.stop();
}

export function lastLines(text: string): string {
  return text.split("\n").map((l) => l.trim()).filter(Boolean).slice(-3).join("; ");
}
