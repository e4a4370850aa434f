import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { createServer as createNetServer, type AddressInfo, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SMTPServer } from "smtp-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { Restic } from "../../restic/index.js";
import { notifyAll, type NotifyResult } from "../../notify/index.js";
import { readJournal, type JournalRecord } from "../../runbooks/engine/journal.js";
import { END_OF_RUN_NOTE } from "../../runbooks/engine/steps/notify.js";
import { repoRoot } from "../../util/tools.js";
import { startDcctl, type CliRun } from "../helpers/cli.js";
import { until as untilAny } from "../helpers/until.js";

/** Waits as the shared helper does, with this file's own deadline. */
const until = <T>(what: string, probe: () => T | false | undefined, timeoutMs = 10_000): Promise<T> => untilAny(what, probe, timeoutMs);

/**
 * Notifications end to end through the dcctl binary: a real SMTP server (smtp-server, plain text on loopback, with
 * a login) and a webhook receiver (node:http) get what a backup run with a failed job and a DR drill send; an SMTP
 * server that is not there leaves the backup's exit code and the drill's result as they were, with the failed
 * delivery named; a bad notify: section is one `file:line: message` line and exit 2.
 */

const work = mkdtempSync(join(tmpdir(), "dcctl-notify-"));
const SMTP_PASSWORD = "smtp-secret-5f2a";
const WEBHOOK_TOKEN = "hook-token-9c1e";
const CONSOLE = "https://10.10.50.11:8088";

interface Mail {
  from: string;
  to: string[];
  user?: string;
  password?: string;
  headers: Map<string, string>;
  body: string;
}
interface Hook {
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
}

const mails: Mail[] = [];
const hooks: Hook[] = [];
let smtp: SMTPServer | undefined;
let hookServer: Server | undefined;
let smtpPort = 0;
let hookPort = 0;
let deadPort = 0;
const logins = new Map<string, { user: string; password: string }>();

/** Headers (unfolded) and the text body, quoted-printable decoded: enough of RFC 5322 for nodemailer's plain mails. */
function parseMail(raw: string): { headers: Map<string, string>; body: string } {
  const split = raw.indexOf("\r\n\r\n");
  const head = raw.slice(0, split).replace(/\r\n(?=[ \t])/g, "");
  const headers = new Map<string, string>();
  for (const line of head.split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
  }
  let body = raw.slice(split + 4);
  if (/quoted-printable/i.test(headers.get("content-transfer-encoding") ?? "")) {
    const soft = body.replace(/=\r\n/g, "");
    const bytes: number[] = [];
    for (let i = 0; i < soft.length; i++) {
      const hex = soft[i] === "=" ? soft.slice(i + 1, i + 3) : "";
      if (/^[0-9A-F]{2}$/.test(hex)) {
        bytes.push(parseInt(hex, 16));
        i += 2;
      } else bytes.push(...Buffer.from(soft[i] ?? "", "utf8"));
    }
    body = Buffer.from(bytes).toString("utf8");
  }
  return { headers, body: body.replace(/\r\n/g, "\n") };
}

const mailsOf = (run: string) => mails.filter((m) => m.headers.get("x-dcctl-run") === run);
const hooksOf = (run: string) => hooks.filter((h) => h.body.run === run);

/** A loopback port that nothing listens on: taken from the kernel, then let go. */
async function closedPort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

const dcctl = (args: string[], env: Record<string, string>): Promise<CliRun> => startDcctl(args, { ...process.env, DCCTL_DEBUG: "", ...env }).done;

const sitesDir = join(work, "sites");
const stateDir = join(work, "state");
const baseEnv = () => ({ DCCTL_SITES_DIR: sitesDir, DCCTL_POLICIES_FILE: join(work, "policies.yaml"), DCCTL_STATE_DIR: stateDir });

/** A repositories file for this machine (the primary's backup server, every host local), with a notify: section. */
function reposFile(name: string, notify: Record<string, unknown>, site: "primary" | "secondary" = "primary"): string {
  const file = join(work, name);
  writeFileSync(
    file,
    stringify({
      site,
      repositories: { primary: { url: join(work, "repo"), passwordFile: "restic.pass" } },
      localHosts: ["qn-db-01", "qn-app-01", "qn-dr-db-01", "qn-dr-app-01"],
      cacheDir: join(work, "cache"),
      stateDir,
      notify,
    }),
  );
  return file;
}

const smtpSection = (port: number) => ({ host: "127.0.0.1", port, secure: false, from: "dcctl <dcctl@qn.gov.vn>", to: ["trucban@qn.gov.vn", "kythuat@qn.gov.vn"], user: "dcctl", passwordFile: "smtp.pass" });
const hookSection = () => ({ url: `http://127.0.0.1:${hookPort}/hooks/dr`, tokenFile: "webhook.token" });

beforeAll(async () => {
  smtp = new SMTPServer({
    authOptional: true,
    // Plain text on loopback: no certificate to make, and nodemailer goes on without STARTTLS when none is offered.
    disabledCommands: ["STARTTLS"],
    allowInsecureAuth: true,
    logger: false,
    onAuth(auth, session, cb) {
      logins.set(session.id, { user: auth.username ?? "", password: auth.password ?? "" });
      cb(null, { user: auth.username });
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        const login = logins.get(session.id);
        mails.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
          to: session.envelope.rcptTo.map((r) => r.address),
          ...(login ? { user: login.user, password: login.password } : {}),
          ...parseMail(Buffer.concat(chunks).toString("utf8")),
        });
        cb();
      });
    },
  });
  const s = smtp;
  await new Promise<void>((resolve, reject) => {
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => resolve());
  });
  smtpPort = (s.server.address() as AddressInfo).port;

  hookServer = createServer((req, res) => {
    if (req.method === "GET" && req.url === "/health") return void res.end("ok");
    let body = "";
    req.setEncoding("utf8").on("data", (c: string) => (body += c));
    req.on("end", () => {
      hooks.push({ headers: req.headers, body: JSON.parse(body) as Record<string, unknown> });
      res.statusCode = 204;
      res.end();
    });
  });
  const h = hookServer;
  await new Promise<void>((resolve) => h.listen(0, "127.0.0.1", resolve));
  hookPort = (h.address() as AddressInfo).port;
  deadPort = await closedPort();

  // The inventory: the cross-site fixture, with its primary hosts under a good and a broken files policy.
  mkdirSync(sitesDir);
  const fixture = join(repoRoot, "test", "fixtures", "inventory", "cross-site-ok");
  const p = parse(readFileSync(join(fixture, "primary.yaml"), "utf8")) as { hosts: Record<string, unknown>[] };
  p.hosts = p.hosts.map((x) => ({ ...x, backupPolicy: x.name === "qn-app-01" ? "files-broken" : "files-ok" }));
  writeFileSync(join(sitesDir, "primary.yaml"), stringify(p));
  const sec = parse(readFileSync(join(fixture, "secondary.yaml"), "utf8")) as { hosts: Record<string, unknown>[] };
  sec.hosts = sec.hosts.map((x) => ({ ...x, backupPolicy: "files-ok" }));
  writeFileSync(join(sitesDir, "secondary.yaml"), stringify(sec));
  mkdirSync(join(work, "data"));
  writeFileSync(join(work, "data", "app.conf"), "workers 4\n");
  const policy = (paths: string[]) => ({ sources: [{ kind: "files", paths }], schedule: "0 2 * * *", retention: { keepLast: 1 }, rpoMinutes: 60, repository: "primary" });
  writeFileSync(join(work, "policies.yaml"), stringify({ policies: { "files-ok": policy([join(work, "data")]), "files-broken": policy([join(work, "no-such-folder")]) } }));

  writeFileSync(join(work, "restic.pass"), "restic secret\n", { mode: 0o600 });
  writeFileSync(join(work, "smtp.pass"), SMTP_PASSWORD + "\n", { mode: 0o600 });
  writeFileSync(join(work, "webhook.token"), WEBHOOK_TOKEN + "\n", { mode: 0o600 });
  await new Restic({ url: join(work, "repo"), passwordFile: join(work, "restic.pass") }, { cacheDir: join(work, "cache") }).init();
});

afterAll(async () => {
  await Promise.allSettled([new Promise<void>((resolve) => (smtp ? smtp.close(() => resolve()) : resolve())), new Promise<void>((resolve) => (hookServer ? hookServer.close(() => resolve()) : resolve()))]);
  rmSync(work, { recursive: true, force: true });
});

interface BackupOutcome {
  id: string;
  exitCode: number;
  reportPath: string;
  results: { job: string; status: string; error?: string }[];
  notified?: NotifyResult[];
}

describe("notifications of failed backup jobs", () => {
  it("a run with a failed job sends one mail and one webhook post naming the run, its result, the failed job and the console", async () => {
    const repos = reposFile("repositories.yaml", { smtp: smtpSection(smtpPort), webhook: hookSection(), consoleUrl: `${CONSOLE}/` });
    const t0 = Date.now();
    const run = await dcctl(["backup", "run", "--all", "--site", "primary", "--json"], { ...baseEnv(), DCCTL_REPOS_FILE: repos });
    const took = Date.now() - t0;
    expect(run.code).toBe(4);
    const outcome = JSON.parse(run.stdout) as BackupOutcome;
    expect(outcome.results.map((r) => [r.job, r.status])).toEqual([
      ["qn-db-01/files-ok", "ok"],
      ["qn-app-01/files-broken", "failed"],
    ]);
    const failedLine = outcome.results[1]?.error ?? "";
    expect(failedLine).not.toBe("");
    expect(outcome.notified?.map((n) => [n.channel, n.target, n.ok])).toEqual([
      ["smtp", "trucban@qn.gov.vn, kythuat@qn.gov.vn", true],
      ["webhook", `http://127.0.0.1:${hookPort}`, true],
    ]);
    expect(run.stderr).toContain(`note: notified: e-mail to trucban@qn.gov.vn, kythuat@qn.gov.vn ok; webhook http://127.0.0.1:${hookPort} ok\n`);

    const [mail, ...more] = await until("the mail", () => (mailsOf(outcome.id).length ? mailsOf(outcome.id) : undefined));
    expect(more).toEqual([]);
    expect(mail?.from).toBe("dcctl@qn.gov.vn");
    expect(mail?.to).toEqual(["trucban@qn.gov.vn", "kythuat@qn.gov.vn"]);
    expect(mail?.headers.get("from")).toBe("dcctl <dcctl@qn.gov.vn>");
    expect(mail?.headers.get("to")).toBe("trucban@qn.gov.vn, kythuat@qn.gov.vn");
    // The login used the password from the file; the password itself is in no output.
    expect([mail?.user, mail?.password]).toEqual(["dcctl", SMTP_PASSWORD]);
    expect(run.stdout + run.stderr).not.toContain(SMTP_PASSWORD);
    expect(mail?.headers.get("subject")).toBe(`[dcctl] backup FAILED at primary: 1 of 2 jobs (run ${outcome.id})`);
    expect(mail?.body).toContain(`1 of 2 backup jobs failed in run ${outcome.id} at the primary site`);
    expect(mail?.body).toContain(`  qn-app-01/files-broken on qn-app-01 -> repository primary: ${failedLine}\n`);
    expect(mail?.body).not.toContain("qn-db-01/files-ok on");
    expect(mail?.body).toContain("The other job succeeded.\n");
    expect(mail?.body).toContain(`Report: ${outcome.reportPath}\n`);
    expect(mail?.body).toContain(`Console: ${CONSOLE}/\n`);

    const [hook] = await until("the webhook post", () => (hooksOf(outcome.id).length ? hooksOf(outcome.id) : undefined));
    expect(hook?.headers.authorization).toBe(`Bearer ${WEBHOOK_TOKEN}`);
    expect(hook?.headers["content-type"]).toBe("application/json");
    expect(hook?.body).toMatchObject({ event: "failure", run: outcome.id, status: "failed", subject: mail?.headers.get("subject"), link: `${CONSOLE}/` });
    expect(String(hook?.body.text)).toContain(failedLine);
    console.log(`backup run with notification: ${took} ms (mail ${outcome.notified?.[0]?.ms ?? "?"} ms, webhook ${outcome.notified?.[1]?.ms ?? "?"} ms)`);
  });

  it("an SMTP server that is not there leaves the run's exit code and report as they were, and names the failed delivery", async () => {
    const repos = reposFile("repositories-dead-smtp.yaml", { smtp: { ...smtpSection(deadPort), user: undefined, passwordFile: undefined } });
    const run = await dcctl(["backup", "run", "--all", "--site", "primary", "--json"], { ...baseEnv(), DCCTL_REPOS_FILE: repos });
    expect(run.code).toBe(4);
    const outcome = JSON.parse(run.stdout) as BackupOutcome;
    expect(outcome.exitCode).toBe(4);
    expect(outcome.results.map((r) => r.status)).toEqual(["ok", "failed"]);
    expect(outcome.notified).toEqual([expect.objectContaining({ channel: "smtp", ok: false, error: expect.stringContaining(`ECONNREFUSED 127.0.0.1:${deadPort}`) as unknown })]);
    expect(run.stderr).toMatch(new RegExp(`^note: notification failed: e-mail to trucban@qn\\.gov\\.vn, kythuat@qn\\.gov\\.vn FAILED: .*ECONNREFUSED 127\\.0\\.0\\.1:${deadPort}`, "m"));
    // The usual last line, exactly as without notifications.
    expect(run.stderr).toMatch(/^dcctl: 1 of 2 jobs did not succeed \(report .*\); first: qn-app-01\/files-broken: /m);
    expect(mailsOf(outcome.id)).toEqual([]);
  });

  it("a run where every job succeeds sends nothing", async () => {
    const repos = reposFile("repositories-quiet.yaml", { smtp: smtpSection(smtpPort) });
    const run = await dcctl(["backup", "run", "--job", "qn-db-01/files-ok", "--json"], { ...baseEnv(), DCCTL_REPOS_FILE: repos });
    expect(run.code).toBe(0);
    const outcome = JSON.parse(run.stdout) as BackupOutcome;
    expect(outcome.notified).toBeUndefined();
    expect(run.stderr).toBe("");
    expect(mailsOf(outcome.id)).toEqual([]);
  });
});

interface DrOutcome {
  runId: string;
  runDir: string;
  status: string;
  reportFiles: string[];
  notified?: NotifyResult[];
}

/** A drill that tells the duty room as it starts, then checks the portal over HTTP (so that RTO is measured). */
function drillRunbook(name: string): string {
  const file = join(work, `${name}.yaml`);
  writeFileSync(
    file,
    [
      `name: ${name}`,
      "kind: drill",
      "to: secondary",
      `scope: ${name}`,
      "groups:",
      "  - name: prepare",
      "    steps:",
      '      - { id: tell, type: notify, timeout: 30s, with: { message: "DR drill started at the secondary (no production impact)" } }',
      "  - name: check",
      "    steps:",
      `      - { id: check-portal, type: verify, service: portal, targets: { site: secondary, hosts: [qn-dr-db-01] }, timeout: 30s, with: { http: [{ url: "http://127.0.0.1:${hookPort}/health", status: 200 }] } }`,
      "",
    ].join("\n"),
  );
  return file;
}

const journalOf = (runDir: string): JournalRecord[] => readJournal(join(runDir, "journal.jsonl")).records;

describe("notifications of DR runs", () => {
  it("a drill sends its notify step's message and, at the end, one naming kind, run and result with RPO/RTO per service and the console link", async () => {
    const repos = reposFile("repositories-dr.yaml", { smtp: smtpSection(smtpPort), webhook: hookSection(), consoleUrl: CONSOLE, on: ["drill", "failover"] }, "secondary");
    const run = await dcctl(["dr", "drill", "--runbook", drillRunbook("notify-drill"), "--json"], { ...baseEnv(), DCCTL_REPOS_FILE: repos });
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const outcome = JSON.parse(run.stdout) as DrOutcome;
    expect(outcome.status).toBe("ok");
    expect(outcome.notified?.map((n) => n.ok)).toEqual([true, true]);

    const sent = await until("two mails", () => (mailsOf(outcome.runId).length >= 2 ? mailsOf(outcome.runId) : undefined));
    expect(sent.map((m) => m.headers.get("subject"))).toEqual([
      `[dcctl] DR drill ${outcome.runId} at secondary: DR drill started at the secondary (no production impact)`,
      `[dcctl] DR drill ${outcome.runId} OK at secondary`,
    ]);
    const end = sent[1];
    expect(end?.to).toEqual(["trucban@qn.gov.vn", "kythuat@qn.gov.vn"]);
    expect(end?.headers.get("x-dcctl-status")).toBe("ok");
    expect(end?.body).toContain(`DR drill ${outcome.runId} at the secondary site: OK\n`);
    expect(end?.body).toMatch(/\n {2}portal \(tier 1\): RPO not measured \(target 15 min\); RTO [\d.]+ min \(target 60 min, met\)\n/);
    expect(end?.body).toContain(`Report: ${CONSOLE}/runs/${outcome.runId}\n`);
    expect(end?.body).toContain(`Report files: ${join(outcome.runDir, "report.md")}, ${join(outcome.runDir, "report.json")}\n`);
    // The chain head sent out is the run-end record's: the anchor for everything up to the result.
    const runEnd = journalOf(outcome.runDir).find((r) => r.type === "run-end");
    expect(runEnd?.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(end?.body).toContain(`Journal: ${join(outcome.runDir, "journal.jsonl")} (chain head at record ${runEnd?.seq ?? 0}: sha256:${runEnd?.hash ?? ""})\n`);

    const posted = await until("two webhook posts", () => (hooksOf(outcome.runId).length >= 2 ? hooksOf(outcome.runId) : undefined));
    expect(posted.map((h) => [h.body.event, h.body.status])).toEqual([
      ["drill", "running"],
      ["drill", "ok"],
    ]);
    expect(posted[1]?.body.link).toBe(`${CONSOLE}/runs/${outcome.runId}`);

    // The journal says how the telling went; the report, written after that note, does not count it as a deviation.
    const journal = journalOf(outcome.runDir);
    const tell = journal.find((r) => r.type === "step-end" && r.step === "tell");
    expect(tell).toMatchObject({ status: "ok", notes: [`notified: e-mail to trucban@qn.gov.vn, kythuat@qn.gov.vn ok; webhook http://127.0.0.1:${hookPort} ok`] });
    expect(journal.at(-1)).toMatchObject({ type: "note", step: END_OF_RUN_NOTE, message: `end-of-run message sent: e-mail to trucban@qn.gov.vn, kythuat@qn.gov.vn ok; webhook http://127.0.0.1:${hookPort} ok` });
    expect(journal.at(-2)).toMatchObject({ type: "run-end", status: "ok" });
    const report = readFileSync(join(outcome.runDir, "report.md"), "utf8");
    expect(report).not.toContain("end-of-run message");
    for (const text of [readFileSync(join(outcome.runDir, "journal.jsonl"), "utf8"), report, run.stdout]) {
      expect(text).not.toContain(SMTP_PASSWORD);
      expect(text).not.toContain(WEBHOOK_TOKEN);
    }
  });

  it("a drill whose SMTP server is not there still ends OK; the step's note and the journal name the failed delivery, the webhook links the report file", async () => {
    const repos = reposFile("repositories-dr-dead.yaml", { smtp: { ...smtpSection(deadPort), user: undefined, passwordFile: undefined }, webhook: hookSection() }, "secondary");
    const run = await dcctl(["dr", "drill", "--runbook", drillRunbook("notify-drill-dead"), "--json"], { ...baseEnv(), DCCTL_REPOS_FILE: repos });
    expect(run.code).toBe(0);
    const outcome = JSON.parse(run.stdout) as DrOutcome;
    expect(outcome.status).toBe("ok");
    expect(outcome.notified?.map((n) => [n.channel, n.ok])).toEqual([
      ["smtp", false],
      ["webhook", true],
    ]);
    const journal = journalOf(outcome.runDir);
    const refused = `e-mail to trucban@qn.gov.vn, kythuat@qn.gov.vn FAILED: `;
    const tell = journal.find((r) => r.type === "step-end" && r.step === "tell");
    expect(tell).toMatchObject({ status: "ok", notes: [expect.stringContaining(`notification failed: ${refused}`) as unknown] });
    const note = journal.at(-1);
    expect(note).toMatchObject({ type: "note", message: expect.stringMatching(new RegExp(`^end-of-run message NOT delivered everywhere: e-mail to .* FAILED: .*ECONNREFUSED 127\\.0\\.0\\.1:${deadPort}; webhook http://127\\.0\\.0\\.1:${hookPort} ok$`)) as unknown });
    expect(note && "step" in note ? note.step : undefined).toBeUndefined();
    // A message that did not reach the duty room is a deviation the report shows.
    expect(readFileSync(join(outcome.runDir, "report.md"), "utf8")).toContain(`- end-of-run message NOT delivered everywhere: ${refused}`);
    const end = await until("the end-of-run webhook post", () => hooksOf(outcome.runId).find((h) => h.body.status === "ok"));
    expect(end.body.subject).toBe(`[dcctl] DR drill ${outcome.runId} OK at secondary`);
    expect(end.body.link).toBe(join(outcome.runDir, "report.html"));
    expect(String(end.body.text)).toContain(`Report: ${join(outcome.runDir, "report.html")}\n`);
  });
});

describe("the notify: section of the repositories file", () => {
  it("a mistake in it is one file:line line and exit 2", async () => {
    const file = join(work, "repositories-bad.yaml");
    writeFileSync(
      file,
      [
        "site: primary",
        "repositories:",
        `  primary: { url: ${join(work, "repo")}, passwordFile: restic.pass }`,
        "notify:",
        '  smtp: { host: mail.qn.gov.vn, from: "dcctl <dcctl@qn.gov.vn>", to: [trucban@qn.gov.vn] }',
        "  on: [failures]",
        "",
      ].join("\n"),
    );
    const run = await dcctl(["backup", "run", "--all", "--dry-run"], { ...baseEnv(), DCCTL_REPOS_FILE: file });
    expect(run.code).toBe(2);
    expect(run.stderr).toBe(`${file}:6: notify.on.0: must be equal to one of the allowed values\n`);

    writeFileSync(file, readFileSync(file, "utf8").replace("  on: [failures]\n", "").replace("to: [trucban@qn.gov.vn]", "to: [trucban]"));
    const address = await dcctl(["backup", "run", "--all", "--dry-run"], { ...baseEnv(), DCCTL_REPOS_FILE: file });
    expect(address.code).toBe(2);
    expect(address.stderr).toBe(`${file}:5: notify.smtp.to.0: "trucban" is not an e-mail address\n`);

    // A password file others can read is refused like the repositories' own.
    writeFileSync(join(work, "open.pass"), "x\n", { mode: 0o644 });
    writeFileSync(file, readFileSync(file, "utf8").replace("to: [trucban]", "to: [trucban@qn.gov.vn], user: dcctl, passwordFile: open.pass"));
    const open = await dcctl(["backup", "run", "--all", "--dry-run"], { ...baseEnv(), DCCTL_REPOS_FILE: file });
    expect(open.code).toBe(2);
    expect(open.stderr).toBe(`${file}:5: notify.smtp.passwordFile: ${join(work, "open.pass")} is readable by others (mode 0644); chmod 600 it\n`);
  });
});

describe("delivery is bounded in time", () => {
  it("a mail server and a webhook that take the connection and never answer are given up at the timeout, as failed results", async () => {
    const held: Socket[] = [];
    const silent = createNetServer((socket) => void held.push(socket));
    const hanging = createServer(() => undefined);
    try {
      await Promise.all([new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve)), new Promise<void>((resolve) => hanging.listen(0, "127.0.0.1", resolve))]);
      const config = {
        smtp: { host: "127.0.0.1", port: (silent.address() as AddressInfo).port, secure: false, from: "dcctl@qn.gov.vn", to: ["trucban@qn.gov.vn"] },
        webhook: { url: `http://127.0.0.1:${(hanging.address() as AddressInfo).port}/hooks/dr` },
        on: ["failure" as const],
      };
      const t0 = Date.now();
      const results = await notifyAll(config, { event: "failure", subject: "s", text: "t", run: "r", status: "failed" }, { timeoutMs: 400 });
      const took = Date.now() - t0;
      expect(results.map((r) => [r.channel, r.ok])).toEqual([
        ["smtp", false],
        ["webhook", false],
      ]);
      expect(took).toBeLessThan(2_000);
      for (const r of results) expect(r.error).toMatch(/within|timeout|timed out|aborted|greeting/i);
      // Not wanted: nothing is sent and nothing waits.
      expect(await notifyAll({ ...config, on: ["drill"] }, { event: "failure", subject: "s", text: "t", run: "r", status: "failed" })).toEqual([]);
    } finally {
      for (const s of held) s.destroy();
      hanging.closeAllConnections();
      await Promise.all([new Promise<void>((resolve) => silent.close(() => resolve())), new Promise<void>((resolve) => hanging.close(() => resolve()))]);
    }
  });
});
