import { spawn } from "node:child_process";
import { appendFileSync, chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer, type Server, type TLSSocket } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadBackupConfig } from "../../backup/repositories.js";
import { deliverEvents } from "../../notify/event-delivery.js";
import { feedEvent } from "../../notify/event-feed.js";
import { EventSpool } from "../../notify/event-spool.js";
import { CATALOGUE, severityOf, type EventKind, type FeedEvent } from "../../notify/events.js";
import { journalFields } from "../../notify/journald.js";
import type { SocConfig } from "../../notify/soc-config.js";
import { octetFrame, parseFrames, sdValue, syslogMessage } from "../../notify/syslog.js";
import { InputError } from "../../util/errors.js";
import { repoRoot } from "../../util/tools.js";
import { makeCertificates, type Certificates } from "../helpers/rsyslog.js";
import { dcctl, startDcctl } from "../helpers/cli.js";
import { until } from "../helpers/until.js";

/** The SOC feed's parts without a collector: the catalogue, the RFC 5424/5425 text, the spool, the confirmation rule. */

const work = mkdtempSync(join(tmpdir(), "dcctl-soc-unit-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const event = (over: Partial<FeedEvent> = {}, kind: EventKind = "backup.job"): FeedEvent => ({
  ...feedEvent({ site: "primary" }, kind, { target: "qn-db-01/db-hourly", outcome: "ok", run: "20261122T060102-77", data: { host: "qn-db-01", repository: "primary" } }, {}, new Date("2026-11-22T06:01:02.345Z")),
  ...over,
});

describe("the catalogue", () => {
  it("gives every kind its own DCCTL-nnnn, and the operator's page lists each with its title and severity", () => {
    const ids = Object.values(CATALOGUE).map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(/^DCCTL-\d{4}$/);
    const doc = readFileSync(join(repoRoot, "docs", "operator", "soc-events.md"), "utf8");
    for (const e of Object.values(CATALOGUE)) expect(doc, e.id).toMatch(new RegExp(`^\\| ${e.id} \\| ${e.title} \\| ${e.severity} \\|`, "m"));
    // And names none that the code does not have.
    expect([...doc.matchAll(/^\| (DCCTL-\d{4}) \|/gm)].map((m) => m[1]).sort()).toEqual([...ids].sort());
  });

  it("raises a failure's severity, never lowers an alarm's", () => {
    expect(severityOf("backup.job", "ok")).toBe("info");
    expect(severityOf("backup.job", "failed")).toBe("err");
    expect(severityOf("backup.job", "locked")).toBe("warning");
    expect(severityOf("snapshot.implausible", "detected")).toBe("alert");
    expect(severityOf("dr.failover.ended", "failed")).toBe("err");
    expect(severityOf("snapshot.suspicious", "failed")).toBe("crit");
  });
});

describe("RFC 5424 messages and RFC 5425 frames", () => {
  it("puts the catalogue ID in MSGID and every field in our SD element, escaped", () => {
    const e = event({ target: 'a "quoted" ]bracket\\ path', sudoUser: "an", chain: { seq: 12, hash: "ab".repeat(32) } });
    const m = syslogMessage(e, "authpriv");
    // authpriv (10) * 8 + info (6)
    expect(m.startsWith(`<86>1 2026-11-22T06:01:02.345Z ${e.host} dcctl ${process.pid} DCCTL-1001 [dcctl@32473 uid="${e.uid}" site="primary" user="`)).toBe(true);
    expect(m).toContain(` sudoUser="an" action="backup job ended" target="a \\"quoted\\" \\]bracket\\\\ path" run="20261122T060102-77" outcome="ok" chainSeq="12" chainHead="sha256:${"ab".repeat(32)}" host="qn-db-01" repository="primary"]`);
    expect(m).toMatch(/\]\[origin software="dcctl" swVersion="\d+\.\d+\.\d+"\] backup job ended: qn-db-01\/db-hourly: ok$/);
    expect(syslogMessage(event({ severity: "alert" }), "local4")).toMatch(/^<161>1 /);
    expect(sdValue("line\nbreak")).toBe("line break");
  });

  it("frames by octets, not characters, and reads frames back across a cut", () => {
    const text = "<86>1 - - dcctl - DCCTL-1001 - Nguyễn Văn A";
    const frame = octetFrame(text);
    expect(frame.toString("utf8")).toBe(`${Buffer.byteLength(text)} ${text}`);
    expect(Buffer.byteLength(text)).toBeGreaterThan(text.length);
    const two = Buffer.concat([frame, octetFrame("second")]);
    expect(parseFrames(two)).toEqual({ messages: [text, "second"], rest: Buffer.alloc(0) });
    const cut = parseFrames(two.subarray(0, two.length - 3));
    expect(cut.messages).toEqual([text]);
    expect(cut.rest.toString()).toBe("6 sec");
    expect(() => parseFrames(Buffer.from("<86>1 no length"))).toThrow(/not an octet-counted frame/);
  });

  it("gives journald fields of its own, one line each", () => {
    const fields = new Map(journalFields(event({ message: "two\nlines" }), "authpriv"));
    expect(fields.get("DCCTL_EVENT_ID")).toBe("DCCTL-1001");
    expect(fields.get("DCCTL_RUN_ID")).toBe("20261122T060102-77");
    expect(fields.get("DCCTL_HOST")).toBe("qn-db-01");
    expect(fields.get("PRIORITY")).toBe("6");
    expect(fields.get("MESSAGE")).toBe("DCCTL-1001 two lines");
    for (const [k] of fields) expect(k).toMatch(/^[A-Z][A-Z0-9_]*$/);
  });
});

describe("the spool", () => {
  it("keeps events in order across processes, each line whole", async () => {
    const dir = join(work, "many");
    const script = `import { EventSpool } from ${JSON.stringify(join(repoRoot, "dist", "notify", "event-spool.js"))};
const s = new EventSpool(${JSON.stringify(dir)});
for (let i = 0; i < 40; i++) s.append({ v: 1, uid: process.argv[2] + "-" + i, id: "DCCTL-1001", at: new Date().toISOString(), kind: "backup.job", message: "x".repeat(3000) });`;
    writeFileSync(join(work, "append.mjs"), script);
    await Promise.all(
      ["a", "b", "c", "d"].map(
        (w) =>
          new Promise<void>((resolve, reject) => {
            const c = spawn(process.execPath, [join(work, "append.mjs"), w], { stdio: "inherit" });
            c.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`appender ${w} exited ${code ?? "?"}`))));
          }),
      ),
    );
    const read = new EventSpool(dir).read();
    expect(read.damaged).toBe(0);
    expect(read.events).toHaveLength(160);
    // Each process's events in its own order: appends are ordered, never interleaved.
    for (const w of ["a", "b", "c", "d"]) expect(read.events.map((e) => e.event.uid).filter((u) => u.startsWith(`${w}-`))).toEqual(Array.from({ length: 40 }, (_, i) => `${w}-${i}`));
  });

  it("a crash mid-append: the torn line is never read, nothing before it is lost, the next append says so", () => {
    const spool = new EventSpool(join(work, "torn"));
    const [a, b, c] = [event(), event(), event()];
    spool.append(a);
    spool.append(b);
    // What a machine that lost power mid-write leaves: the start of a line and no newline.
    appendFileSync(spool.file, JSON.stringify(event()).slice(0, 57));
    const before = spool.read();
    expect(before.events.map((e) => e.event.uid)).toEqual([a.uid, b.uid]);
    expect(before.end).toBe(readFileSync(spool.file).lastIndexOf(0x0a) + 1);
    spool.append(c);
    const after = spool.read();
    expect(after.damaged).toBe(1);
    expect(after.events.map((e) => e.event.id)).toEqual(["DCCTL-1001", "DCCTL-1001", "DCCTL-9001", "DCCTL-1001"]);
    expect(after.events[2]?.event).toMatchObject({ kind: "feed.damaged", outcome: "detected", data: { bytes: "57" } });
    expect(after.events[3]?.event.uid).toBe(c.uid);
    // From a cursor past the first two, the rest only.
    expect(spool.read({ ...(after.spool !== undefined ? { spool: after.spool } : {}), offset: after.events[1]?.end ?? 0 }).events.map((e) => e.event.id)).toEqual(["DCCTL-9001", "DCCTL-1001"]);
  });
});

describe("delivery is confirmed by the collector's clean close", () => {
  let certs: Certificates;
  const servers: Server[] = [];
  const sockets: TLSSocket[] = [];
  beforeAll(() => {
    certs = makeCertificates(join(work, "certs"), "soc.test", "127.0.0.1");
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  });

  /** A TLS listener that does `onConnection` with each client: the collector's behaviour under test. */
  const collector = async (onConnection: (s: TLSSocket, received: Buffer[]) => void): Promise<{ port: number; received: Buffer[] }> => {
    const received: Buffer[] = [];
    // Half-open allowed: what closes the collector's side is the behaviour under test, not Node's default.
    const server = createServer({ cert: readFileSync(certs.serverCert), key: readFileSync(certs.serverKey), ca: readFileSync(certs.ca), requestCert: true, rejectUnauthorized: true, allowHalfOpen: true }, (s) => {
      sockets.push(s);
      onConnection(s, received);
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const address = server.address();
    return { port: typeof address === "object" && address ? address.port : 0, received };
  };
  const soc = (port: number): SocConfig => ({ collectors: [{ name: "c", host: "127.0.0.1", port, caFile: certs.ca, certFile: certs.clientCert, keyFile: certs.clientKey, serverName: "soc.test" }], facility: "authpriv", journald: false });

  it("moves the cursor only for a batch the collector closed on after reading it all", async () => {
    // A collector that reads everything and closes when we do: the batch is confirmed, the spool emptied.
    const good = await collector((s, received) => {
      s.on("data", (d: Buffer) => received.push(d));
      s.on("end", () => s.end());
    });
    // One that hangs up after the handshake without reading: nothing is confirmed.
    const rude = await collector((s) => s.destroy());
    // One that reads and never closes: not confirmed within the time given.
    const silent = await collector((s) => s.on("data", () => undefined));
    const stateDir = join(work, "state");
    const spool = new EventSpool(join(stateDir, "events"));
    const events = [event(), event(), event()];
    for (const e of events) spool.append(e);

    for (const [name, port, timeoutMs, error] of [["rude", rude.port, 5_000, /closed the connection on its own|ECONNRESET|broke/], ["silent", silent.port, 1_500, /no clean close within/]] as const) {
      const r = await deliverEvents(stateDir, soc(port), { timeoutMs, lockWaitMs: 0 });
      expect(r.collectors[0], name).toMatchObject({ sent: 0, pending: 3, error: expect.stringMatching(error) });
      expect(spool.cursors().sinks.c?.offset ?? 0).toBe(0);
    }
    const ok = await deliverEvents(stateDir, soc(good.port), { timeoutMs: 5_000, lockWaitMs: 0 });
    expect(ok.collectors[0]).toMatchObject({ sent: 3, pending: 0 });
    expect(ok.collectors[0]?.error).toBeUndefined();
    const messages = parseFrames(Buffer.concat(good.received)).messages;
    expect(messages.map((m) => /uid="([^"]+)"/.exec(m)?.[1])).toEqual(events.map((e) => e.uid));
    // All of it confirmed: the spool file is gone, and the next event starts a new one from its start.
    expect(spool.read().events).toEqual([]);
    spool.append(event());
    const again = await deliverEvents(stateDir, soc(good.port), { timeoutMs: 5_000, lockWaitMs: 0 });
    expect(again.collectors[0]).toMatchObject({ sent: 1, pending: 0 });
    expect(parseFrames(Buffer.concat(good.received)).messages).toHaveLength(4);
  });
});

describe("the soc: section", () => {
  const load = (soc: string): string[] => {
    const file = join(work, `repos-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(join(work, "pass"), "x\n", { mode: 0o600 });
    writeFileSync(join(work, "ca.pem"), "x\n");
    writeFileSync(join(work, "client.key"), "x\n", { mode: 0o644 });
    chmodSync(join(work, "client.key"), 0o644);
    writeFileSync(file, `site: primary\nrepositories:\n  primary: { url: /srv/repo, passwordFile: pass }\nsoc:\n${soc}`);
    try {
      loadBackupConfig(file, {});
      return [];
    } catch (e) {
      if (e instanceof InputError) return e.problems.map((p) => p.replace(/^.*repos-\w+\.yaml/, "F"));
      throw e;
    }
  };

  it("takes defaults, and names at its line a collector twice, a file that is not there, a key others can read", () => {
    const file = join(work, "ok.yaml");
    writeFileSync(join(work, "ca.pem"), "x\n");
    writeFileSync(file, "site: primary\nrepositories:\n  primary: { url: /srv/repo, passwordFile: pass }\nsoc:\n  collectors:\n    - { host: soc.qn.gov.vn, caFile: ca.pem }\n");
    expect(loadBackupConfig(file, {}).soc).toEqual({ collectors: [{ name: "soc.qn.gov.vn:6514", host: "soc.qn.gov.vn", port: 6514, caFile: join(work, "ca.pem"), serverName: "soc.qn.gov.vn" }], facility: "authpriv", journald: true });
    expect(load("  collectors:\n    - { host: a, caFile: ca.pem }\n    - { host: a, caFile: ca.pem }\n")).toEqual(["F:7: soc.collectors.1: collector a:6514 is also soc.collectors.0: each needs its own name"]);
    expect(load("  collectors:\n    - { host: a, caFile: nope.pem }\n")).toEqual([`F:6: soc.collectors.0.caFile: ${join(work, "nope.pem")}: no such file`]);
    expect(load("  collectors:\n    - host: a\n      caFile: ca.pem\n      certFile: ca.pem\n      keyFile: client.key\n")).toEqual([`F:9: soc.collectors.0.keyFile: ${join(work, "client.key")}: readable by others (mode 0644); chmod 600 it`]);
    expect(load("  collectors:\n    - { host: a, caFile: ca.pem, keyFile: client.key }\n")[0]).toMatch(/^F:[56]: soc\.collectors\.0: must have property certFile when property keyFile is present/);
    expect(load("  facility: mail\n")[0]).toMatch(/^F:5: soc\.facility: must be equal to one of the allowed values/);
  });
});

describe("refusals and four eyes reach the spool", () => {
  it("an unconfirmed failover is DCCTL-3101; a request DCCTL-3001 with its code; a self-approval DCCTL-3003", () => {
    const dir = join(work, "gated");
    const stateDir = join(dir, "state");
    writeFileSync(join(work, "ca.pem"), "x\n");
    writeFileSync(join(work, "pass"), "x\n", { mode: 0o600 });
    // A collector at a port nobody listens on: the events stay in the spool, where this test reads them.
    const repos = join(work, "gated.yaml");
    writeFileSync(repos, ["site: secondary", "repositories:", `  secondary: { url: ${join(dir, "repo")}, passwordFile: ${join(work, "pass")} }`, `stateDir: ${stateDir}`, "approval: { required: true }", "soc:", `  collectors: [{ host: 127.0.0.1, port: 9, caFile: ${join(work, "ca.pem")} }]`, ""].join("\n"));
    const env = { ...process.env, DCCTL_REPOS_FILE: repos, DCCTL_STATE_DIR: stateDir, DCCTL_SITES_DIR: "", DCCTL_DEBUG: "", SUDO_USER: "", INVOCATION_ID: "", JOURNAL_STREAM: "" };
    const failover = ["dr", "failover", "--to", "secondary", "--runbook", "test/fixtures/runbooks/approval-failover.yaml"];
    const unconfirmed = dcctl(failover, env, 60_000);
    expect(unconfirmed.code, unconfirmed.stderr).toBe(5);
    expect(unconfirmed.stderr).toMatch(/^note: the SOC feed: 1 event waits in the spool for collector 127\.0\.0\.1:9 \(.*ECONNREFUSED/m);
    const asked = dcctl([...failover, "--yes"], env, 60_000);
    expect(asked.code, asked.stderr).toBe(8);
    const code = /approval required: request ([0-9A-Z]{6})/.exec(asked.stdout)?.[1] ?? "";
    const self = dcctl(["approve", code, "--yes"], env, 60_000);
    expect(self.code, self.stderr).toBe(8);
    const events = new EventSpool(join(stateDir, "events")).read().events.map((e) => e.event);
    expect(events.map((e) => `${e.id} ${e.outcome}`)).toEqual(["DCCTL-3101 refused", "DCCTL-3001 requested", "DCCTL-3003 refused"]);
    const [refused, requested, selfApproval] = events;
    expect(refused?.data).toMatchObject({ command: expect.stringMatching(/^dcctl dr failover --to secondary --runbook /), reason: expect.stringMatching(/confirm|--yes/) });
    expect(requested).toMatchObject({ severity: "notice", target: expect.any(String), data: { code, requestedBy: expect.any(String), request: expect.stringMatching(/^dr failover/) } });
    expect(selfApproval).toMatchObject({ severity: "warning", data: { code, reason: "self-approval" } });
  });
});

describe("the console's token logins reach the spool", () => {
  it("a login with the token is DCCTL-5001; wrong tokens DCCTL-5002, once a minute per address with their count", async () => {
    const stateDir = join(work, "console-state");
    writeFileSync(join(work, "ca.pem"), "x\n");
    writeFileSync(join(work, "pass"), "x\n", { mode: 0o600 });
    writeFileSync(join(work, "console.token"), "a-console-token-of-enough-length\n", { mode: 0o600 });
    const repos = join(work, "console.yaml");
    writeFileSync(repos, ["site: primary", "repositories:", `  primary: { url: ${join(work, "console-repo")}, passwordFile: ${join(work, "pass")} }`, `stateDir: ${stateDir}`, "soc:", `  collectors: [{ host: 127.0.0.1, port: 9, caFile: ${join(work, "ca.pem")} }]`, ""].join("\n"));
    const env = { ...process.env, DCCTL_REPOS_FILE: repos, DCCTL_STATE_DIR: stateDir, DCCTL_SITES_DIR: "", DCCTL_DEBUG: "", INVOCATION_ID: "", JOURNAL_STREAM: "" };
    const serve = startDcctl(["serve", "--listen", "127.0.0.1:0", "--token-file", join(work, "console.token")], env);
    let stderr = "";
    serve.child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    try {
      const url = await until("the console's address", () => /listening on (http:\/\/[^ ]+)/.exec(stderr)?.[1], 30_000);
      for (const token of ["wrong-1", "wrong-2", "wrong-3"]) expect((await fetch(`${url}?token=${token}`, { redirect: "manual" })).status).toBe(401);
      expect((await fetch(`${url}?token=a-console-token-of-enough-length`, { redirect: "manual" })).status).toBe(303);
      const spool = new EventSpool(join(stateDir, "events"));
      const events = await until("the console's events in the spool", () => {
        const e = spool.read().events.map((x) => x.event);
        return e.length >= 2 && e;
      }, 10_000);
      expect(events.map((e) => `${e.id} ${e.outcome} ${e.data?.client ?? ""}`)).toEqual(["DCCTL-5002 refused 127.0.0.1", "DCCTL-5001 ok 127.0.0.1"]);
      expect(events[0]?.data).toMatchObject({ attempts: "1", console: expect.stringMatching(/^127\.0\.0\.1:\d+$/) });
    } finally {
      serve.child.kill("SIGTERM");
      await serve.done;
    }
  });
});
