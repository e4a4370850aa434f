import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { fingerprint, knownHostsLine } from "../hosts/known-hosts.js";
import { DcctlError } from "../util/errors.js";
import { freePort, runOk, startServer, type ServerProcess } from "../util/process.js";
import { checkListenAddress, placed, type Placement } from "./placement.js";

export interface SshdOptions {
  /** Where keys, config and pid file go; default a new temporary folder. */
  stateDir?: string;
  /** A loopback address (default 127.0.0.1). */
  host?: string;
  /** Run inside this lab namespace (the address is then the host's, not loopback). */
  placement?: Placement;
  port?: number;
  /** The login user (default: the current user; root logs in by key only). It must exist and not be locked. */
  user?: string;
  /** More users allowed to log in with the same client key. */
  extraUsers?: string[];
  sshdPath?: string;
  /** Authorize this client public key (`.pub`) instead of generating a client key pair: the lab's own key. */
  authorizedKeyPath?: string;
  /** More authorized_keys lines, options included (the lab's per-site keys, restricted where a site's may only read). */
  moreAuthorizedKeys?: string[];
  /** Keep a host key left in stateDir by an earlier start, so a pinned known_hosts stays valid across restarts. */
  keepHostKey?: boolean;
}

export interface Sshd {
  host: string;
  port: number;
  user: string;
  /** The generated client private key (ed25519, no passphrase) that authorized_keys accepts. */
  clientKeyPath: string;
  /** A known_hosts file that pins this server's host key (`[host]:port ssh-ed25519 …`). */
  knownHostsPath: string;
  /** The host key's fingerprint, `SHA256:…`. */
  hostKeyFingerprint: string;
  hostKeyPath: string;
  stateDir: string;
  process: ServerProcess;
  stop(): Promise<void>;
}

/**
 * Starts a real OpenSSH server on a loopback port with freshly generated host and client keys, the way the lab's
 * "hosts" are reached. sshd must run as root here (privilege separation); the caller stops it.
 */
export async function startSshd(opts: SshdOptions = {}): Promise<Sshd> {
  const host = opts.host ?? "127.0.0.1";
  checkListenAddress("test sshd", host, opts.placement);
  const port = opts.port ?? (await freePort(host));
  const user = opts.user ?? userInfo().username;
  const stateDir = opts.stateDir ?? (await mkdtemp(join(tmpdir(), "dcctl-sshd-")));
  mkdirSync(stateDir, { recursive: true });
  // A non-root login user reads authorized_keys itself (sshd drops privileges for it).
  chmodSync(stateDir, 0o755);
  mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });

  const hostKeyPath = join(stateDir, "ssh_host_ed25519_key");
  const clientKeyPath = join(stateDir, "client_ed25519");
  if (!(opts.keepHostKey && existsSync(hostKeyPath))) await keygen(hostKeyPath, `dcctl-lab-host-${port}`);
  if (!opts.authorizedKeyPath) await keygen(clientKeyPath, "dcctl-lab-client");
  const authorizedKeys = join(stateDir, "authorized_keys");
  const lines = [readFileSync(opts.authorizedKeyPath ?? `${clientKeyPath}.pub`, "utf8").trim(), ...(opts.moreAuthorizedKeys ?? [])];
  writeFileSync(authorizedKeys, lines.join("\n") + "\n", { mode: 0o644 });

  const hostKeyBlob = publicKeyBlob(`${hostKeyPath}.pub`);
  const knownHostsPath = join(stateDir, "known_hosts");
  writeFileSync(knownHostsPath, knownHostsLine(host, port, hostKeyBlob) + "\n", { mode: 0o644 });

  const configPath = join(stateDir, "sshd_config");
  writeFileSync(
    configPath,
    [
      `ListenAddress ${host}:${port}`,
      `HostKey ${hostKeyPath}`,
      `PidFile ${join(stateDir, "sshd.pid")}`,
      `AuthorizedKeysFile ${authorizedKeys}`,
      "PubkeyAuthentication yes",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "UsePAM no",
      "StrictModes no",
      "PermitRootLogin prohibit-password",
      `AllowUsers ${[user, ...(opts.extraUsers ?? [])].join(" ")}`,
      // Jobs run several commands at once over one connection.
      "MaxSessions 32",
      "LogLevel VERBOSE",
      "",
    ].join("\n"),
  );

  const sshd = opts.sshdPath ?? "/usr/sbin/sshd";
  // -t first: a bad config then fails with sshd's own reason instead of "did not listen".
  await runOk(sshd, ["-t", "-f", configPath]);
  const proc = await startServer(`sshd ${host}:${port}`, ...placed(opts.placement, sshd, ["-D", "-e", "-f", configPath]), { waitFor: { host, port, timeoutMs: 20_000 } });
  return {
    host,
    port,
    user,
    clientKeyPath: opts.authorizedKeyPath ? opts.authorizedKeyPath.replace(/\.pub$/, "") : clientKeyPath,
    knownHostsPath,
    hostKeyFingerprint: fingerprint(hostKeyBlob),
    hostKeyPath,
    stateDir,
    process: proc,
    stop: () => proc.stop(),
  };
}

/** Generates an ed25519 key pair without a passphrase at `path` and `path.pub`. */
export async function keygen(path: string, comment: string): Promise<void> {
  // ssh-keygen would ask before overwriting a key left by an earlier run in the same state folder.
  rmSync(path, { force: true });
  rmSync(`${path}.pub`, { force: true });
  await runOk("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path]);
}

/** The key blob of an OpenSSH `.pub` file (`type base64 comment`). */
export function publicKeyBlob(pubPath: string): Buffer {
  const b64 = readFileSync(pubPath, "utf8").trim().split(/\s+/)[1];
  if (!b64) throw new DcctlError(`${pubPath} is not an OpenSSH public key`);
  return Buffer.from(b64, "base64");
}
