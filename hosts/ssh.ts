import { readFileSync } from "node:fs";
import { PassThrough } from "node:stream";
import type { Client, ClientChannel, ConnectConfig, ServerHostKeyAlgorithm } from "ssh2";
import { DcctlError } from "../util/errors.js";
import { appendTail, ExecTimeoutError, signalCode, type ExecCompletion, type ExecOptions, type ExecResult, type ExecStream, type Executor } from "./executor.js";
import { knownHostsName, pinnedKeys, readKnownHosts, verifyHostKey } from "./known-hosts.js";
import { quoteArgv, withEnv } from "./quote.js";

export interface SshTarget {
  host: string;
  /** Default 22. */
  port?: number;
  user: string;
  /** A private key file. Without it the SSH agent at SSH_AUTH_SOCK is used. */
  privateKeyPath?: string;
  /** Use the SSH agent (SSH_AUTH_SOCK) as well as, or instead of, the key file. Default: when no key file is given. */
  useAgent?: boolean;
  /** The agent's socket; default SSH_AUTH_SOCK. */
  agentSocket?: string;
  /** The pinned known_hosts file. Required: there is no "accept whatever key the host presents". */
  knownHostsPath: string;
  /** How long the TCP connect, key exchange and login may take. Default 20 s. */
  connectTimeoutMs?: number;
  /** Keepalive probe interval (default 15 s); after 3 unanswered probes the connection counts as lost. */
  keepaliveIntervalMs?: number;
}

const KILL_GRACE_MS = 2_000;

/** The key types ssh2 should ask for, given the types pinned for the host: otherwise the server might offer an unpinned one. */
const ALGORITHMS: Record<string, ServerHostKeyAlgorithm[]> = {
  "ssh-ed25519": ["ssh-ed25519"],
  "ecdsa-sha2-nistp256": ["ecdsa-sha2-nistp256"],
  "ecdsa-sha2-nistp384": ["ecdsa-sha2-nistp384"],
  "ecdsa-sha2-nistp521": ["ecdsa-sha2-nistp521"],
  "ssh-rsa": ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
};

/**
 * Runs commands on a host over SSH (ssh2), with the host key pinned in a known_hosts file and every command built by
 * quoteArgv. One connection is opened on first use and shared by all the commands of a job until close().
 * The remote login shell must be a POSIX shell: the command line is `exec <quoted argv>`.
 * A timeout or kill() sends a KILL signal request; OpenSSH refuses those for root logins (no privilege separation
 * after login), so there a timed-out command is only cut off from us and runs on until it ends. Log in as a non-root user.
 */
export class SshExecutor implements Executor {
  readonly target: string;
  /** How many connections this executor has opened (a job should need one). */
  connectCount = 0;
  private conn: Promise<Client> | undefined;
  /** A login under way (connected or not yet), until it is ready or has failed. */
  private connecting: Client | undefined;
  /** The login open() started last, from before ssh2 is loaded; close() forgets it, which stops it once loaded. */
  private opening: object | undefined;

  constructor(private readonly t: SshTarget) {
    this.target = `${t.user}@${knownHostsName(t.host, t.port ?? 22)}`;
  }

  async run(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const s = this.stream(argv, opts);
    const out: Buffer[] = [];
    s.stdout.on("data", (b: Buffer) => out.push(b));
    // The channel may close while the last chunks still sit in our PassThrough; wait for its end as well.
    const ended = new Promise<void>((resolve) => {
      s.stdout.once("end", resolve);
      s.stdout.once("close", resolve);
    });
    const [done] = await Promise.all([s.done, ended]);
    return { ...done, stdout: Buffer.concat(out).toString("utf8") };
  }

  stream(argv: string[], opts: ExecOptions = {}): ExecStream {
    // `exec` replaces the remote shell by the program, so a timeout's KILL reaches the program itself.
    const command = "exec " + quoteArgv(withEnv(argv, opts.env));
    const what = argv[0] ?? "command";
    // The caller gets a stream at once; the channel is piped into it when the connection is up.
    const stdout = new PassThrough();
    let channel: ClientChannel | undefined;
    let killed = false;
    let finished = false;
    let afterKill: (() => void) | undefined;
    const kill = () => {
      if (killed || finished) return;
      killed = true;
      if (channel) stopChannel(channel);
      afterKill?.();
    };

    const done = (async (): Promise<ExecCompletion> => {
      // The caller's time limit counts from now: a host that does not answer at all (a lost site) must not take the
      // connection's own, longer timeout.
      const client = opts.timeoutMs === undefined ? await this.connect() : await withinMs(this.connect(), opts.timeoutMs, () => new ExecTimeoutError(`cannot connect to ${this.target}: no answer within ${opts.timeoutMs} ms`));
      const ch = await new Promise<ClientChannel>((resolve, reject) =>
        client.exec(command, (err, c) => (err ? reject(new DcctlError(`cannot start ${what} on ${this.target}: ${err.message}`)) : resolve(c))),
      );
      channel = ch;
      if (killed) stopChannel(ch);
      return await new Promise<ExecCompletion>((resolve, reject) => {
        let stderr = "";
        let exit: ExecCompletion | undefined;
        let timer: NodeJS.Timeout | undefined;
        // sshd answers our close only once the program has exited; if the kill was refused (root login) that may be
        // never, so a killed command counts as ended after a grace period and the connection's end cleans up.
        afterKill = () => {
          setTimeout(() => {
            if (!finished) resolve({ code: signalCode("KILL"), stderr, signal: "SIGKILL" });
          }, KILL_GRACE_MS).unref();
          // The consumer sees the end of the output now, not when (if ever) the channel closes.
          ch.unpipe(stdout);
          stdout.end();
        };
        if (killed) afterKill();
        ch.stderr.on("data", (b: Buffer) => (stderr = appendTail(stderr, b)));
        ch.pipe(stdout);
        feedStdin(ch, opts.stdin);
        if (opts.timeoutMs !== undefined) {
          timer = setTimeout(() => {
            kill();
            reject(new ExecTimeoutError(`${what} did not finish within ${opts.timeoutMs} ms on ${this.target}; stopped`));
          }, opts.timeoutMs);
        }
        ch.on("exit", (code: number | null, signal?: string) => {
          exit = signal ? { code: signalCode(signal), stderr: "", signal: signalName(signal) } : { code: code ?? 255, stderr: "" };
        });
        // ssh2 hands the exit status to 'close' as well: a command that ends at once may have reported it (in the same
        // packets as the channel's opening) before the 'exit' listener above was attached.
        ch.once("close", (code?: number | null, signal?: string) => {
          finished = true;
          clearTimeout(timer);
          if (!exit && typeof code === "number") exit = { code, stderr: "" };
          else if (!exit && typeof signal === "string") exit = { code: signalCode(signal), stderr: "", signal: signalName(signal) };
          if (exit) resolve({ ...exit, stderr });
          else if (killed) resolve({ code: signalCode("KILL"), stderr, signal: "SIGKILL" });
          else reject(new DcctlError(`connection to ${this.target} closed before ${what} reported its exit status`));
        });
      });
    })();
    // A failure before the channel exists must still end the stream, or a consumer would wait forever.
    done.catch((e: unknown) => stdout.destroy(e instanceof Error ? e : new Error(String(e))));
    // The error is also what `done` rejects with; a consumer that only awaits `done` must not crash on an unheard 'error'.
    stdout.on("error", () => undefined);
    // A consumer that destroys stdout early (restic failed, say) no longer wants the command: stop it.
    stdout.once("close", () => {
      if (!finished && !stdout.readableEnded) kill();
    });
    return { stdout, done, kill };
  }

  /** Ends the connection (if any). A later command reconnects. */
  async close(): Promise<void> {
    const conn = this.conn;
    this.conn = undefined;
    // A host that never answered (a lost site) is given up at once rather than after the login's own timeout.
    const pending = this.connecting;
    this.connecting = undefined;
    this.opening = undefined;
    if (pending) {
      pending.destroy();
      return;
    }
    if (!conn) return;
    const client = await conn.catch(() => undefined);
    if (!client) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        client.destroy();
        resolve();
      }, 5_000);
      client.once("close", () => {
        clearTimeout(timer);
        resolve();
      });
      client.end();
    });
  }

  private connect(): Promise<Client> {
    if (this.conn) return this.conn;
    const conn: Promise<Client> = this.open(() => {
      // A dropped connection is not reused: the next command reconnects.
      if (this.conn === conn) this.conn = undefined;
    });
    this.conn = conn;
    conn.catch(() => undefined);
    return conn;
  }

  private open(onClosed: () => void): Promise<Client> {
    const port = this.t.port ?? 22;
    const entries = readKnownHosts(this.t.knownHostsPath);
    const pinnedTypes = [...new Set(pinnedKeys(entries, this.t.host, port).flatMap((e) => ALGORITHMS[e.keyType] ?? []))];
    let refusal: DcctlError | undefined;

    const config: ConnectConfig = {
      host: this.t.host,
      port,
      username: this.t.user,
      readyTimeout: this.t.connectTimeoutMs ?? 20_000,
      keepaliveInterval: this.t.keepaliveIntervalMs ?? 15_000,
      keepaliveCountMax: 3,
      hostVerifier: (key: Buffer): boolean => {
        try {
          verifyHostKey(entries, this.t.host, port, key, this.t.knownHostsPath);
          return true;
        } catch (e) {
          refusal = e instanceof DcctlError ? e : new DcctlError(String(e));
          return false;
        }
      },
      // With nothing pinned, let the server present its preferred key so the refusal can name its fingerprint.
      ...(pinnedTypes.length ? { algorithms: { serverHostKey: pinnedTypes } } : {}),
    };
    if (this.t.privateKeyPath) {
      try {
        config.privateKey = readFileSync(this.t.privateKeyPath);
      } catch (e) {
        return Promise.reject(new DcctlError(`cannot read SSH key ${this.t.privateKeyPath}: ${e instanceof Error ? e.message : String(e)}`));
      }
    }
    if (this.t.useAgent ?? !this.t.privateKeyPath) {
      const sock = this.t.agentSocket ?? process.env.SSH_AUTH_SOCK;
      if (sock) config.agent = sock;
      else if (!this.t.privateKeyPath) return Promise.reject(new DcctlError(`no SSH key file for ${this.target} and no SSH agent (SSH_AUTH_SOCK is not set)`));
    }

    // ssh2 (some 25 modules and a native addon) is loaded by the first login: a command that reaches no host over
    // SSH, or reaches one only after its own work (backup status), does not pay for it at start-up.
    const attempt = {};
    this.opening = attempt;
    return loadSsh2().then(
      ({ Client }) =>
        new Promise<Client>((resolve, reject) => {
          if (this.opening !== attempt) {
            // close() came while ssh2 loaded: as for a login it cuts short, this one ends here.
            reject(new DcctlError(`connection to ${this.target} closed during login`));
            onClosed();
            return;
          }
          const client = new Client();
          this.connecting = client;
          let ready = false;
          const settled = () => {
            if (this.connecting === client) this.connecting = undefined;
          };
          client.once("ready", () => {
            ready = true;
            settled();
            this.connectCount++;
            resolve(client);
          });
          client.on("error", (e: Error & { level?: string }) => {
            if (!ready) {
              reject(refusal ?? new DcctlError(connectFailure(this.target, this.t.privateKeyPath, e)));
            }
            // After login an error is followed by "close"; running channels then reject on their own.
          });
          client.once("close", () => {
            settled();
            if (!ready) reject(refusal ?? new DcctlError(`connection to ${this.target} closed during login`));
            onClosed();
          });
          client.connect(config);
        }),
    );
  }
}

let ssh2: Promise<typeof import("ssh2")> | undefined;

function loadSsh2(): Promise<typeof import("ssh2")> {
  return (ssh2 ??= import("ssh2"));
}

function connectFailure(target: string, keyPath: string | undefined, e: Error & { level?: string }): string {
  if (e.level === "client-authentication") return `cannot log in to ${target} with ${keyPath ? `key ${keyPath}` : "the SSH agent"}: the server refused the key`;
  if (e.level === "client-timeout") return `cannot connect to ${target}: timed out`;
  return `cannot connect to ${target}: ${e.message}`;
}

function feedStdin(ch: ClientChannel, stdin: ExecOptions["stdin"]): void {
  ch.on("error", () => undefined);
  if (stdin === undefined) ch.end();
  else if (typeof stdin === "string" || Buffer.isBuffer(stdin)) ch.end(stdin);
  else stdin.pipe(ch);
}

/** "SIGKILL", as the local executor (Node) names it: ssh2 passes on what sshd said, with or without the prefix. */
function signalName(signal: string): string {
  return signal.startsWith("SIG") ? signal : `SIG${signal}`;
}

/** The parts of ssh2's channel that stopChannel needs and ssh2 does not expose for a channel whose stdin has ended. */
interface ChannelInternals {
  outgoing?: { id?: number; state?: string };
  _client?: { _protocol?: { signal?: (id: number, signal: string) => void } };
}

/**
 * Asks sshd to kill the program (OpenSSH ≥ 7.9 honours "signal" requests), then closes the channel.
 * ssh2's channel.signal() sends nothing once stdin has been ended (our usual case), so the request goes through its
 * protocol object; without it, sshd would leave the program running after the channel closes.
 */
function stopChannel(ch: ClientChannel): void {
  const inner = ch as unknown as ChannelInternals;
  try {
    const id = inner.outgoing?.id;
    const state = inner.outgoing?.state;
    const signal = inner._client?._protocol?.signal;
    if (id !== undefined && (state === "open" || state === "eof") && signal) signal.call(inner._client?._protocol, id, "KILL");
    else ch.signal("KILL");
  } catch {
    // The channel may already be closing.
  }
  ch.close();
}

/** The promise's value, or the error `late()` makes once `ms` have passed first. */
function withinMs<T>(p: Promise<T>, ms: number, late: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(late()), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
