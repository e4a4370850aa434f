import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ExecTimeoutError,
  HostKeyChangedError,
  LocalExecutor,
  SshExecutor,
  UnknownHostKeyError,
  knownHostsLine,
  parseKnownHosts,
  quoteArg,
  quoteArgv,
  type Executor,
} from "../../hosts/index.js";
import { keygen, publicKeyBlob, startSshd, type Sshd } from "../../lab/sshd.js";
import { createServer, type AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { freePort, run, startServer } from "../../util/process.js";
import { ensureTestUser } from "../helpers/users.js";
import { until } from "../helpers/until.js";

/** Arguments a naive `args.join(" ")` would let the remote shell interpret. */
const NASTY = ["plain", "two words", "it's", '"double"', "$(touch PWNED)", "`touch PWNED`", "; touch PWNED", "a|b&c>d", "*", "", "new\nline", "\\back\\slash", "-n", "$HOME"];

describe("quoteArgv", () => {
  it("single-quotes anything that is not a plain word", () => {
    expect(quoteArg("plain-word_1.2:/x")).toBe("plain-word_1.2:/x");
    expect(quoteArg("")).toBe("''");
    expect(quoteArg("it's")).toBe(`'it'\\''s'`);
    expect(quoteArg("$(x)")).toBe("'$(x)'");
    expect(quoteArgv(["echo", "a b"])).toBe("echo 'a b'");
    expect(() => quoteArg("a\0b")).toThrow(/NUL/);
    expect(() => quoteArgv([])).toThrow();
  });
});

describe("known_hosts parsing", () => {
  it("reads plain, [host]:port, wildcard, negated and marker lines", () => {
    const key = Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from("ssh-ed25519"), Buffer.alloc(36, 1)]);
    const b64 = key.toString("base64");
    const entries = parseKnownHosts(
      [`# comment`, `db01,10.0.0.5 ssh-ed25519 ${b64}`, `[127.0.0.1]:2222 ssh-ed25519 ${b64} c`, `*.prov.vn,!bad.prov.vn ssh-ed25519 ${b64}`, `@revoked old ssh-ed25519 ${b64}`, `garbage`, `h ssh-rsa ${b64}`].join("\n"),
    );
    expect(entries.map((e) => e.line)).toEqual([2, 3, 4, 5]);
    expect(entries[3]?.marker).toBe("revoked");
    expect(knownHostsLine("127.0.0.1", 2222, key)).toBe(`[127.0.0.1]:2222 ssh-ed25519 ${b64}`);
  });
});

describe("executors against a real sshd", () => {
  let sshd: Sshd | undefined;
  let work: string;
  let ssh: SshExecutor;
  let testUser: string;
  const local = new LocalExecutor();
  const executors: SshExecutor[] = [];

  function executor(overrides: Partial<ConstructorParameters<typeof SshExecutor>[0]> = {}): SshExecutor {
    if (!sshd) throw new Error("sshd did not start");
    const ex = new SshExecutor({ host: sshd.host, port: sshd.port, user: sshd.user, privateKeyPath: sshd.clientKeyPath, knownHostsPath: sshd.knownHostsPath, ...overrides });
    executors.push(ex);
    return ex;
  }

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "dcctl-ssh-test-"));
    // The non-root login user reads authorized_keys below this folder.
    chmodSync(work, 0o755);
    testUser = (await ensureTestUser()).name;
    sshd = await startSshd({ stateDir: join(work, "sshd"), extraUsers: [testUser] });
    ssh = executor();
  });

  afterAll(async () => {
    for (const ex of executors) await ex.close();
    await sshd?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it("pins the same fingerprint ssh-keygen reports", async () => {
    const res = await run("ssh-keygen", ["-l", "-E", "sha256", "-f", `${sshd?.hostKeyPath}.pub`]);
    expect(res.stdout).toContain(sshd?.hostKeyFingerprint);
  });

  it("runs echo", async () => {
    const res = await ssh.run(["echo", "hello", "world"]);
    expect(res).toEqual({ code: 0, stdout: "hello world\n", stderr: "" });
  });

  it("reports exit code and stderr, passes stdin and env", async () => {
    expect(await ssh.run(["sh", "-c", "echo oops >&2; exit 7"])).toMatchObject({ code: 7, stderr: "oops\n" });
    expect((await ssh.run(["cat"], { stdin: "from stdin" })).stdout).toBe("from stdin");
    expect((await ssh.run(["sh", "-c", 'printf %s "$GREETING"'], { env: { GREETING: "xin chào; $(id)" } })).stdout).toBe("xin chào; $(id)");
  });

  for (const [name, pick] of [
    ["ssh", () => ssh],
    ["local", () => local],
  ] as [string, () => Executor][]) {
    it(`${name}: arguments with spaces, quotes and $() arrive verbatim (no shell injection)`, async () => {
      const ex = pick();
      const res = await ex.run(["printf", "%s\\0", ...NASTY], {});
      expect(res.code).toBe(0);
      expect(res.stdout.split("\0").slice(0, -1)).toEqual(NASTY);
      // The remote command ran in root's home (ssh) or our cwd (local): neither may have gained a PWNED file.
      const home = (await ex.run(["sh", "-c", 'printf %s "$HOME"'])).stdout;
      expect(existsSync(join(home, "PWNED"))).toBe(false);
      expect(existsSync("PWNED")).toBe(false);
    });
  }

  it("streams 20 MB of stdout intact", async () => {
    const file = join(work, "big.bin");
    const data = randomBytes(20 * 1024 * 1024);
    writeFileSync(file, data);
    const s = ssh.stream(["head", "-c", String(data.length), file]);
    const hash = createHash("sha256");
    let bytes = 0;
    for await (const chunk of s.stdout) {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
    }
    const done = await s.done;
    expect(done.code).toBe(0);
    expect(bytes).toBe(data.length);
    expect(hash.digest("hex")).toBe(createHash("sha256").update(data).digest("hex"));
  });

  it("reuses one connection for several commands, also concurrent ones", async () => {
    const ex = executor();
    const seen = new Set<string>();
    for (let i = 0; i < 3; i++) seen.add((await ex.run(["sh", "-c", 'echo "$SSH_CONNECTION"'])).stdout);
    const parallel = await Promise.all([1, 2, 3, 4].map(() => ex.run(["sh", "-c", 'echo "$SSH_CONNECTION"'])));
    for (const r of parallel) seen.add(r.stdout);
    expect(seen.size).toBe(1);
    expect(ex.connectCount).toBe(1);
    await ex.close();
    await ex.run(["true"]);
    expect(ex.connectCount).toBe(2);
  });

  it("times out a sleep (root login: cut off, connection still usable)", async () => {
    const ex = executor();
    // Logged in first: the limit counts the login too, and on a loaded machine that alone can take 500 ms.
    await ex.run(["true"]);
    const started = Date.now();
    await expect(ex.run(["sleep", "3.125"], { timeoutMs: 500 })).rejects.toThrow(/did not finish within 500 ms on root@/);
    expect(Date.now() - started).toBeLessThan(2_500);
    expect((await ex.run(["echo", "still here"])).stdout).toBe("still here\n");
    expect(ex.connectCount).toBe(1);
  });

  it("times out a sleep of a non-root login, kills it, and keeps the connection usable", async () => {
    const ex = executor({ user: testUser });
    expect((await ex.run(["id", "-un"])).stdout).toBe(`${testUser}\n`);
    const started = Date.now();
    await expect(ex.run(["sleep", "37.25"], { timeoutMs: 1_000 })).rejects.toThrow(ExecTimeoutError);
    expect(Date.now() - started).toBeLessThan(5_000);
    let left = "";
    for (let i = 0; i < 20; i++) {
      left = (await local.run(["pgrep", "-f", "sleep 37.25"])).stdout;
      if (!left) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(left).toBe("");
    expect((await ex.run(["echo", "still here"])).stdout).toBe("still here\n");
    expect(ex.connectCount).toBe(1);
  });

  it("local executor times out too, and kills the whole process group", async () => {
    await expect(local.run(["sh", "-c", "sleep 38.5; echo never"], { timeoutMs: 500 })).rejects.toThrow(ExecTimeoutError);
    await until("the group's sleep to end", () => spawnSync("pgrep", ["-f", "sleep 38.5"], { encoding: "utf8" }).stdout === "", 5_000);
  });

  it("refuses an unknown host, naming it and the presented fingerprint", async () => {
    const empty = join(work, "known_hosts.other");
    writeFileSync(empty, readFileSync(sshd?.knownHostsPath ?? "", "utf8").replace(/^\[127\.0\.0\.1\]:\d+/, "[127.0.0.1]:1"));
    const err = await executor({ knownHostsPath: empty })
      .run(["echo", "must not run"])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnknownHostKeyError);
    expect((err as Error).message).toContain(`[127.0.0.1]:${sshd?.port}`);
    expect((err as Error).message).toContain(sshd?.hostKeyFingerprint);
  });

  it("refuses a changed host key, naming the presented fingerprint", async () => {
    const otherKey = join(work, "other_host_key");
    await keygen(otherKey, "impostor");
    const pinned = join(work, "known_hosts.changed");
    writeFileSync(pinned, knownHostsLine(sshd?.host ?? "", sshd?.port ?? 0, publicKeyBlob(`${otherKey}.pub`)) + "\n");
    const err = await executor({ knownHostsPath: pinned })
      .run(["echo", "must not run"])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostKeyChangedError);
    expect((err as Error).message).toContain(sshd?.hostKeyFingerprint);
    expect((err as Error).message).toMatch(/CHANGED/);
  });

  it("accepts a hashed known_hosts (ssh-keygen -H)", async () => {
    const hashed = join(work, "known_hosts.hashed");
    copyFileSync(sshd?.knownHostsPath ?? "", hashed);
    await run("ssh-keygen", ["-H", "-f", hashed]);
    expect(readFileSync(hashed, "utf8")).toMatch(/^\|1\|/);
    expect((await executor({ knownHostsPath: hashed }).run(["echo", "ok"])).stdout).toBe("ok\n");
  });

  it("logs in with a key held by an SSH agent", async () => {
    const socket = join(work, "agent.sock");
    const agent = await startServer("ssh-agent", "ssh-agent", ["-D", "-a", socket]);
    try {
      for (let i = 0; i < 50 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 100));
      const add = await run("ssh-add", [sshd?.clientKeyPath ?? ""], { env: { ...process.env, SSH_AUTH_SOCK: socket } });
      expect(add.code).toBe(0);
      const viaAgent = executor({ privateKeyPath: undefined, agentSocket: socket });
      expect((await viaAgent.run(["echo", "agent"])).stdout).toBe("agent\n");
      await viaAgent.close();
    } finally {
      await agent.stop();
    }
  });

  it("streams a Readable into the remote command's stdin", async () => {
    const data = randomBytes(5 * 1024 * 1024);
    const res = await ssh.run(["sha256sum"], { stdin: Readable.from([data.subarray(0, 1_000_000), data.subarray(1_000_000)]) });
    expect(res.stdout.split(" ")[0]).toBe(createHash("sha256").update(data).digest("hex"));
  });

  it("fails a connection that never speaks SSH within the connect timeout", async () => {
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const port = (silent.address() as AddressInfo).port;
    try {
      const started = Date.now();
      await expect(executor({ port, connectTimeoutMs: 700 }).run(["true"])).rejects.toThrow(/cannot connect to root@\[127\.0\.0\.1\]:\d+: timed out/);
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      silent.close();
    }
    const closed = await freePort();
    await expect(executor({ port: closed }).run(["true"])).rejects.toThrow(/cannot connect to .*ECONNREFUSED/);
  });

  it("gives up a login to a host that does not answer at close, not after the login's own timeout", async () => {
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const port = (silent.address() as AddressInfo).port;
    try {
      const ex = executor({ port, connectTimeoutMs: 20_000 });
      await expect(ex.run(["true"], { timeoutMs: 300 })).rejects.toThrow(/no answer within 300 ms/);
      const started = Date.now();
      await ex.close();
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      silent.close();
    }
  });

  it("says so when the server refuses the client key", async () => {
    const stranger = join(work, "stranger_key");
    await keygen(stranger, "stranger");
    await expect(executor({ privateKeyPath: stranger }).run(["true"])).rejects.toThrow(/cannot log in to .* the server refused the key/);
  });
});
