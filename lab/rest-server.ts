import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, startServer, type ServerProcess } from "../util/process.js";
import { toolPath } from "../util/tools.js";
import { checkListenAddress, placed, type Placement } from "./placement.js";

export interface RestServerOptions {
  /** Where the repositories are stored; default a new temporary folder. */
  dataDir?: string;
  /** A loopback address to listen on (default 127.0.0.1). */
  host?: string;
  /** Run inside this lab namespace (the address is then the host's, not loopback). */
  placement?: Placement;
  port?: number;
  /** `--append-only`: clients can add data but never delete it (the secondary site's repository). */
  appendOnly?: boolean;
  /** An .htpasswd file (bcrypt or {SHA} entries); without it, and without `users`, the server runs with --no-auth. */
  htpasswdFile?: string;
  /** Users and passwords for HTTP basic auth; written to an .htpasswd in the data folder. */
  users?: Record<string, string>;
}

export interface RestServer {
  /** `http://127.0.0.1:PORT` */
  url: string;
  host: string;
  port: number;
  dataDir: string;
  appendOnly: boolean;
  /** The restic location of a repository on this server: `rest:http://127.0.0.1:PORT/<name>/`. */
  repo(name: string): string;
  process: ServerProcess;
  stop(): Promise<void>;
}

/** Starts rest-server on a loopback port. The caller stops it (tests: in afterAll). */
export async function startRestServer(opts: RestServerOptions = {}): Promise<RestServer> {
  const host = opts.host ?? "127.0.0.1";
  checkListenAddress("rest-server", host, opts.placement);
  const port = opts.port ?? (await freePort(host));
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), "dcctl-rest-")));
  mkdirSync(dataDir, { recursive: true });
  const args = ["--path", dataDir, "--listen", `${host}:${port}`];
  let htpasswd = opts.htpasswdFile;
  if (opts.users && Object.keys(opts.users).length) {
    htpasswd = join(dataDir, ".htpasswd");
    writeFileSync(htpasswd, htpasswdLines(opts.users), { mode: 0o600 });
  }
  args.push(...(htpasswd ? ["--htpasswd-file", htpasswd] : ["--no-auth"]));
  if (opts.appendOnly) args.push("--append-only");
  const proc = await startServer(`rest-server ${host}:${port}`, ...placed(opts.placement, toolPath("rest-server"), args), { waitFor: { host, port, timeoutMs: 20_000 } });
  const url = `http://${host}:${port}`;
  return {
    url,
    host,
    port,
    dataDir,
    appendOnly: opts.appendOnly ?? false,
    repo: (name) => `rest:${url}/${name.replace(/^\/+|\/+$/g, "")}/`,
    process: proc,
    stop: () => proc.stop(),
  };
}

/**
 * .htpasswd lines in the `{SHA}` form (unsalted SHA-1). Weak, but it is what rest-server accepts besides bcrypt, and
 * Node has no bcrypt; good enough for loopback lab servers, not for a real site (use `htpasswd -B` there).
 */
export function htpasswdLines(users: Record<string, string>): string {
  return Object.entries(users)
    .map(([user, password]) => {
      if (!/^[^:\s]+$/.test(user)) throw new Error(`not a usable rest-server user name: ${JSON.stringify(user)}`);
      return `${user}:{SHA}${createHash("sha1").update(password).digest("base64")}\n`;
    })
    .join("");
}
