import { createHash } from "node:crypto";
import { chownSync, existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { DcctlError } from "../util/errors.js";
import { freePort, run, startServer, type ServerProcess } from "../util/process.js";
import { lastLines, serverAccount, stopGently } from "./postgres.js";
import { checkListenAddress, placed, type Placement } from "./placement.js";

export interface MariadbOptions {
  /** The state folder of this server: `data/` (the datadir) and `run/` (socket, pid file). */
  dir: string;
  /** A loopback address (default 127.0.0.1). */
  host?: string;
  /** Run inside this lab namespace (the address is then the host's, not loopback). */
  placement?: Placement;
  /** Default: a free port, chosen anew on every start. */
  port?: number;
  /** The unprivileged OS account mariadbd switches to when we are root. Default "dcctl-lab". */
  osUser?: string;
  /** The server program (default mariadbd on PATH, /usr/sbin on Debian). */
  mariadbd?: string;
  /**
   * The replication server_id, 1..4294967295; default: one derived from the address and port (see labServerId), so
   * two lab servers differ. Tests that start two servers on one address may set it to be sure.
   */
  serverId?: number;
}

export interface Mariadb {
  host: string;
  port: number;
  /** @@server_id: each server of a replication pair needs its own. */
  serverId: number;
  /** The Unix socket; the OS user root logs in there as the MariaDB root (unix_socket authentication), which sql() uses. */
  socket: string;
  dataDir: string;
  osUser: string;
  /** Runs SQL (several statements allowed) as root over the socket; returns the client's batch output without column names. */
  sql(sql: string, db?: string): Promise<string>;
  process: ServerProcess;
  stop(): Promise<void>;
}

/**
 * A server_id for the server at host:port: the first four bytes of a hash of both, 1..4294967295. Not the address's last
 * octets alone: the lab's sites share them (10.10.20.11 and 10.20.20.11), and loopback servers share the address.
 */
function labServerId(host: string, port: number): number {
  return (createHash("sha256").update(`${host}:${port}`).digest().readUInt32BE(0) % 4294967295) + 1;
}

/**
 * Starts a MariaDB server on a loopback port with its own datadir and socket. The datadir is initialised on the first
 * start only (mariadb-install-db), so a later start on the same `dir` keeps its databases. No option files are read
 * (--no-defaults): the machine's own MariaDB configuration must not leak into the lab.
 */
export async function startMariadb(opts: MariadbOptions): Promise<Mariadb> {
  const host = opts.host ?? "127.0.0.1";
  checkListenAddress("the lab's MariaDB", host, opts.placement);
  const port = opts.port ?? (await freePort(host));
  const serverId = opts.serverId ?? labServerId(host, port);
  if (!Number.isInteger(serverId) || serverId < 1 || serverId > 4294967295) throw new DcctlError(`the lab's MariaDB: serverId must be 1..4294967295, not ${serverId}`);
  const account = await serverAccount(opts.osUser ?? "dcctl-lab");
  const dataDir = join(opts.dir, "data");
  const runDir = join(opts.dir, "run");
  const socket = join(runDir, "mariadb.sock");

  mkdirSync(opts.dir, { recursive: true, mode: 0o755 });
  mkdirSync(runDir, { recursive: true, mode: 0o755 });
  chownSync(runDir, account.uid, account.gid);
  if (!existsSync(join(dataDir, "mysql"))) {
    mkdirSync(dataDir, { recursive: true, mode: 0o750 });
    chownSync(dataDir, account.uid, account.gid);
    const res = await run("mariadb-install-db", [
      "--no-defaults", `--datadir=${dataDir}`, `--user=${account.name}`,
      "--auth-root-authentication-method=socket", "--skip-test-db", "--skip-name-resolve",
    ]);
    if (res.code !== 0) throw new DcctlError(`mariadb-install-db ${dataDir} failed: ${lastLines(res.stderr || res.stdout)}`);
  }

  const args = [
    "--no-defaults",
    `--datadir=${dataDir}`,
    `--socket=${socket}`,
    `--pid-file=${join(runDir, "mariadb.pid")}`,
    `--port=${port}`,
    `--bind-address=${host}`,
    // Accounts are matched by address (user@'127.0.0.1'), never by a reverse lookup that may or may not say "localhost".
    "--skip-name-resolve",
    // A binary log with GTIDs, so that the server can be a replication primary, and a replica that is promoted has
    // the history it applied (log-slave-updates). Kept for two days, in small files that expiry can remove.
    `--log-bin=${join(dataDir, "mariadb-bin")}`,
    `--server-id=${serverId}`,
    "--log-slave-updates",
    "--binlog-format=ROW",
    "--gtid-strict-mode=ON",
    "--expire-logs-days=2",
    "--max-binlog-size=64M",
    "--character-set-server=utf8mb4",
    "--collation-server=utf8mb4_unicode_ci",
    // A lab server: small, and durability across power loss is not worth the fsync time.
    "--innodb-buffer-pool-size=64M",
    "--innodb-flush-log-at-trx-commit=0",
    "--innodb-doublewrite=0",
  ];
  // mariadbd refuses to run as root unless told which account to switch to.
  if (process.getuid?.() === 0) args.push(`--user=${account.name}`);
  const proc = await startServer(`mariadbd ${host}:${port}`, ...placed(opts.placement, opts.mariadbd ?? "mariadbd", args), { waitFor: { host, port, timeoutMs: 60_000 } });

  const sql = async (text: string, db?: string): Promise<string> => {
    const res = await run("mariadb", ["--no-defaults", "-u", "root", `--socket=${socket}`, "--batch", "--skip-column-names", "--default-character-set=utf8mb4", ...(db ? [db] : [])], { input: text });
    if (res.code !== 0) throw new DcctlError(`mariadb${db ? ` on ${db}` : ""} failed: ${lastLines(res.stderr)}`);
    return res.stdout;
  };

  return {
    host,
    port,
    serverId,
    socket,
    dataDir,
    osUser: account.name,
    sql,
    process: proc,
    // SIGTERM is mariadbd's clean shutdown.
    stop: () => stopGently(proc, "SIGTERM", 30_000),
  };
}
