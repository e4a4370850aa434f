import { randomBytes } from "node:crypto";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { get } from "node:http";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { Restic } from "../../restic/index.js";
import { PG_BIN_DIR, startPostgres, type Postgres } from "../../lab/postgres.js";
import { repoRoot } from "../../util/tools.js";
import { dcctl as runCli, startDcctl, type CliChild, type CliRun } from "../helpers/cli.js";
import { PG_SEED } from "../helpers/db-fixtures.js";

/**
 * `dcctl serve` end to end: the built CLI serving a real control plane — a PostgreSQL database backed up into a local
 * restic repository by `dcctl backup run`, a job over its RPO and one never backed up, a verified repository, and two
 * drills run by `dcctl dr drill` (one ok, one failed, with real journals and reports) — looked at with Debian's
 * chromium at the duty room's 1366×768.
 */

const work = mkdtempSync(join(tmpdir(), "dcctl-console-"));
let pg: Postgres | undefined;
let browser: Browser | undefined;
const servers: CliChild[] = [];
let env: NodeJS.ProcessEnv = {};
let okRun = "";
let failedRun = "";

const dcctl = (args: string[], extra: Record<string, string> = {}): CliRun => runCli(args, { ...env, ...extra }, 120_000);

interface Serving {
  url: string;
  child: CliChild;
  stderr: () => string;
}

/** Starts `dcctl serve ARGS` and waits for the line naming the address it listens on. */
async function serve(args: string[], extra: Record<string, string> = {}): Promise<Serving> {
  const child = startDcctl(["serve", ...args], { ...env, ...extra });
  servers.push(child);
  let stderr = "";
  child.child.stderr.on("data", (s: string) => (stderr += s));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`dcctl serve did not say where it listens within 20 s: ${stderr}`)), 20_000);
    const look = () => {
      const m = /listening on (\S+)/.exec(stderr);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.child.stderr.on("data", look);
    void child.done.then((r) => {
      clearTimeout(timer);
      reject(new Error(`dcctl serve exited ${r.code}: ${r.stderr}`));
    });
  });
  return { url, child, stderr: () => stderr };
}

/** Waits until the console has read the repositories once (it never makes a page wait for restic). */
async function firstReading(url: string, headers: Record<string, string> = {}): Promise<StatusJson> {
  const until = Date.now() + 60_000;
  for (;;) {
    const s = (await (await fetch(`${url}api/status`, { headers })).json()) as StatusJson;
    if (s.backup.at && !s.backup.refreshingSince) return s;
    if (Date.now() > until) throw new Error(`no reading of the repositories within 60 s: ${JSON.stringify(s.backup)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

interface StatusJson {
  summary: { jobs: { ok: number; overRpo: number; never: number; total: number }; services?: { ready: number; notReady: number; drillsOverdue: number } };
  backup: { at?: string; refreshingSince?: string; error?: string; jobs: { job: string; state: string }[]; replicas: { pair: string }[] };
  repositories: { name: string; verify?: { ok: boolean; sizeBytes?: number } }[];
  services?: { service: string; ready: boolean; overdue: boolean; lastDrill?: { runId: string; status: string } }[];
  runs: { runId: string; status: string }[];
}

const drillRunbook = (name: string, expectDossiers: number) =>
  stringify({
    name,
    kind: "drill",
    to: "secondary",
    scope: "test-console",
    groups: [
      { name: "prepare", steps: [{ id: "precheck", type: "precheck", targets: { hosts: ["qn-db-01"] }, timeout: "1m", with: { repository: "primary" } }] },
      {
        name: "restore",
        steps: [{ id: "restore-portal", type: "restore-db", service: "portal", targets: { hosts: ["qn-dr-db-01"] }, dependsOn: ["precheck"], timeout: "5m", with: { repository: "primary", databases: ["portal"] } }],
      },
      {
        name: "verify",
        steps: [
          {
            id: "verify-portal",
            type: "verify",
            service: "portal",
            targets: { hosts: ["qn-dr-db-01"] },
            dependsOn: ["restore-portal"],
            timeout: "1m",
            with: { sql: [{ database: "portal", query: "SELECT count(*) FROM dossiers", expect: expectDossiers }] },
          },
        ],
      },
      { name: "close", steps: [{ id: "report", type: "report", timeout: "1m" }] },
    ],
  });

beforeAll(async () => {
  chmodSync(work, 0o755);
  pg = await startPostgres({ dir: join(work, "pg") });
  await pg.psql("CREATE DATABASE portal");
  await pg.psql(PG_SEED, "portal");

  // Inventory: the cross-site fixture. qn-db-01 runs the portal's PostgreSQL (its standby qn-dr-db-01 is the same
  // local server: the drill restores into a scratch database beside it); qn-app-01 runs nginx, never drilled.
  const sites = join(work, "sites");
  mkdirSync(sites);
  const fixture = join(repoRoot, "test", "fixtures", "inventory", "cross-site-ok");
  const p = parse(readFileSync(join(fixture, "primary.yaml"), "utf8")) as { hosts: Record<string, unknown>[] };
  p.hosts = p.hosts.map((h) => (h.name === "qn-db-01" ? { ...h, backupPolicy: "db-test", services: ["postgresql"] } : { ...h, backupPolicy: "files-late", services: ["nginx"] }));
  writeFileSync(join(sites, "primary.yaml"), stringify(p));
  const s = parse(readFileSync(join(fixture, "secondary.yaml"), "utf8")) as { hosts: Record<string, unknown>[] };
  s.hosts = s.hosts.map((h) => ({ ...h, backupPolicy: "files-never", services: h.name === "qn-dr-db-01" ? ["postgresql"] : ["nginx"] }));
  writeFileSync(join(sites, "secondary.yaml"), stringify(s));

  mkdirSync(join(work, "data", "late"), { recursive: true });
  writeFileSync(join(work, "data", "late", "app.conf"), "workers 4\n");
  const policy = (sources: unknown[], rpoMinutes: number, repository: string) => ({ sources, schedule: "5 * * * *", retention: { keepLast: 3 }, rpoMinutes, repository });
  writeFileSync(
    join(work, "policies.yaml"),
    stringify({
      policies: {
        "db-test": policy([{ kind: "postgresql" }], 60, "primary"),
        // Over its RPO a moment after its run.
        "files-late": policy([{ kind: "files", paths: [join(work, "data", "late")], excludes: [] }], 0.0001, "primary"),
        "files-never": policy([{ kind: "files", paths: [join(work, "data", "never")], excludes: [] }], 60, "secondary"),
      },
    }),
  );

  const pgpass = join(work, "pgpass");
  writeFileSync(pgpass, `127.0.0.1:${pg.port}:*:postgres:${readFileSync(pg.superuserPasswordFile, "utf8").trim()}\n`, { mode: 0o600 });
  for (const r of ["primary", "secondary"]) writeFileSync(join(work, `${r}.pass`), randomBytes(18).toString("base64url") + "\n", { mode: 0o600 });
  writeFileSync(
    join(work, "repositories.yaml"),
    stringify({
      site: "primary",
      repositories: { primary: { url: join(work, "repo-primary"), passwordFile: "primary.pass" }, secondary: { url: join(work, "repo-secondary"), passwordFile: "secondary.pass" } },
      localHosts: ["qn-db-01", "qn-app-01", "qn-dr-db-01", "qn-dr-app-01"],
      cacheDir: join(work, "cache"),
      databases: {
        postgresql: { user: "postgres", passFile: pgpass, binDir: PG_BIN_DIR, databases: ["portal"], globals: false },
        hosts: { "qn-db-01": { postgresql: { port: pg.port } }, "qn-dr-db-01": { postgresql: { port: pg.port } } },
      },
    }),
  );
  for (const r of ["primary", "secondary"]) await new Restic({ url: join(work, `repo-${r}`), passwordFile: join(work, `${r}.pass`) }, { cacheDir: join(work, "cache") }).init();

  env = {
    ...process.env,
    DCCTL_DEBUG: "",
    DCCTL_LANG: "",
    DCCTL_SITES_DIR: sites,
    DCCTL_POLICIES_FILE: join(work, "policies.yaml"),
    DCCTL_REPOS_FILE: join(work, "repositories.yaml"),
    DCCTL_STATE_DIR: join(work, "state"),
  };

  // The control plane's state, made by the CLI as operators and timers make it.
  for (const job of ["qn-db-01/db-test", "qn-app-01/files-late"]) {
    const r = dcctl(["backup", "run", "--job", job]);
    if (r.code !== 0) throw new Error(`backup run ${job}: ${r.stderr}`);
  }
  const verify = dcctl(["backup", "verify", "--repository", "primary"]);
  if (verify.code !== 0) throw new Error(`backup verify: ${verify.stderr}`);
  writeFileSync(join(work, "drill-ok.yaml"), drillRunbook("console-drill", 3000));
  writeFileSync(join(work, "drill-bad.yaml"), drillRunbook("console-drill-bad", 2999));
  const ok = dcctl(["dr", "drill", "--runbook", join(work, "drill-ok.yaml"), "--json"]);
  if (ok.code !== 0) throw new Error(`drill: ${ok.stderr}`);
  okRun = (JSON.parse(ok.stdout) as { runId: string }).runId;
  const bad = dcctl(["dr", "drill", "--runbook", join(work, "drill-bad.yaml")]);
  failedRun = /run (\S+) failed/.exec(bad.stderr)?.[1] ?? "";
  if (bad.code !== 1 || !failedRun) throw new Error(`the failing drill should fail: ${bad.code} ${bad.stderr}`);

  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
});

afterAll(async () => {
  // Every server this file started, even when a test failed half-way: SIGTERM, then SIGKILL after 10 s.
  await Promise.allSettled(
    servers.map(async ({ child, done }) => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await done.finally(() => clearTimeout(timer));
    }),
  );
  await browser?.close().catch((e: unknown) => console.error(e));
  await pg?.stop().catch((e: unknown) => console.error(e));
  rmSync(work, { recursive: true, force: true });
});

/** GET with a Host header of our choosing (fetch does not let one set it). */
function statusWithHost(url: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    get(url, { headers: { host } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on("error", reject);
  });
}

async function openPage(url: string): Promise<{ page: Page; cspViolations: string[] }> {
  if (!browser) throw new Error("set-up did not finish");
  const page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
  const cspViolations: string[] = [];
  page.on("console", (m) => void (/Content Security Policy/i.test(m.text()) && cspViolations.push(m.text())));
  page.on("pageerror", (e) => cspViolations.push(`page error: ${e.message}`));
  await page.goto(url, { waitUntil: "load" });
  return { page, cspViolations };
}

describe("dcctl serve, the duty console", () => {
  it("shows every job, the over-RPO and never backed-up ones as such, the replica, the verified repository, the services and the DR runs", async () => {
    const console1 = await serve(["--listen", "127.0.0.1:0"]);
    expect(console1.stderr()).toMatch(/^dcctl serve: listening on http:\/\/127\.0\.0\.1:\d+\/ \(read-only, this machine only, lang en, site primary\)\n$/);
    const status = await firstReading(console1.url);
    expect(status.backup.error).toBeUndefined();
    expect(Object.fromEntries(status.backup.jobs.map((j) => [j.job, j.state]))).toEqual({ "qn-db-01/db-test": "ok", "qn-app-01/files-late": "over-rpo", "qn-dr-db-01/files-never": "none" });
    expect(status.summary.jobs).toMatchObject({ ok: 1, overRpo: 1, never: 1, total: 3 });
    expect(status.repositories.find((r) => r.name === "primary")?.verify?.ok).toBe(true);
    expect(status.runs.map((r) => [r.runId, r.status])).toEqual([
      [failedRun, "failed"],
      [okRun, "ok"],
    ]);
    const portal = status.services?.find((x) => x.service === "portal");
    expect(portal).toMatchObject({ ready: false, overdue: false, lastDrill: { runId: failedRun, status: "failed" } });
    expect(status.services?.find((x) => x.service === "nginx")).toMatchObject({ ready: false, overdue: true });

    // Page load: navigation start to the load event, as the browser measured it; and /api/status from here.
    const { page, cspViolations } = await openPage(console1.url);
    const loadMs = await page.evaluate(() => {
      const [nav] = performance.getEntriesByType("navigation") as PerformanceNavigationTiming[];
      return nav ? nav.loadEventEnd - nav.startTime : -1;
    });
    const apiMs: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      await (await fetch(`${console1.url}api/status`)).text();
      apiMs.push(performance.now() - t0);
    }
    apiMs.sort((a, b) => a - b);
    console.log(`console page load (navigation → load event): ${loadMs.toFixed(0)} ms; /api/status: median ${apiMs[2]?.toFixed(1)} ms, max ${apiMs[4]?.toFixed(1)} ms`);
    expect(loadMs).toBeGreaterThan(0);

    expect(await page.getAttribute("html", "lang")).toBe("en");
    expect(await page.title()).toBe("Duty console");
    const row = (job: string) => page.locator(`tr[data-job="${job}"]`);
    await expect.poll(() => row("qn-db-01/db-test").locator(".badge").textContent()).toBe("OK");
    expect(await row("qn-app-01/files-late").locator(".badge").textContent()).toBe("Over RPO");
    expect(await row("qn-app-01/files-late").getAttribute("class")).toBe("row-bad");
    expect(await row("qn-dr-db-01/files-never").locator(".badge").textContent()).toBe("Never backed up");
    // A word and a colour: red for the late ones, green for the good one.
    const colour = (job: string) => row(job).locator(".badge").evaluate((e) => getComputedStyle(e).color);
    expect(await colour("qn-app-01/files-late")).toBe("rgb(163, 0, 27)");
    expect(await colour("qn-dr-db-01/files-never")).toBe("rgb(163, 0, 27)");
    expect(await colour("qn-db-01/db-test")).toBe("rgb(23, 102, 58)");
    const tiles = await page.locator(".tile").allTextContents();
    // postgresql and portal: their last drill failed (and the replica is none); nginx: never drilled, its job over RPO.
    expect(tiles).toEqual(["1/3Jobs OK", "1Over RPO", "1Never backed up", "0/1Replicas OK", "0Services ready", "3Not ready", "1Overdue drills"]);
    expect(await page.locator("#replication").textContent()).toContain("qn-dr-db-01 ← qn-db-01");
    expect(await page.locator('tr[data-repository="primary"] .badge').textContent()).toBe("passed");
    expect(await page.locator('tr[data-repository="primary"]').textContent()).toMatch(/\d+\.\d (KiB|MiB).*passed \d{4}-\d\d-\d\d \d\d:\d\d/);
    expect(await page.locator('tr[data-repository="secondary"] .badge').textContent()).toBe("never verified");
    expect(await page.locator('tr[data-service="nginx"]').textContent()).toContain("Drill overdue");
    expect(await page.locator('tr[data-service="portal"] .badge').first().textContent()).toBe("Not ready");
    expect(await page.locator(`tr[data-run="${failedRun}"] .badge`).textContent()).toBe("Failed");
    expect(await page.locator(`tr[data-run="${okRun}"] .badge`).textContent()).toBe("OK");

    // 1366 px wide and nothing wider: no horizontal scrolling.
    expect(await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth])).toEqual([1366, 1366]);
    expect(await page.locator("script:not([src])").count()).toBe(0);
    const shot = join(work, "console.png");
    await page.screenshot({ path: shot, fullPage: true });
    copyFileSync(shot, "/tmp/dcctl-console.png");
    const png = readFileSync(shot);
    expect(png.subarray(0, 8).toString("hex")).toBe("89504e470d0a1a0a");
    expect(png.readUInt32BE(16)).toBe(1366);

    // Live: the figures' time and age change by themselves, and the page was not reloaded (the mark set in it is still there).
    const before = await page.locator("#updated").textContent();
    expect(before).toMatch(/^figures of \d\d:\d\d:\d\d \(\d+ s ago\)$/);
    await page.evaluate(() => Object.assign(window, { consoleTestMark: 1 }));
    await page.waitForFunction((old) => document.getElementById("updated")?.textContent !== old, before, { timeout: 30_000 });
    expect(await page.evaluate(() => (window as unknown as { consoleTestMark?: number }).consoleTestMark)).toBe(1);
    expect(await page.locator("#updated").textContent()).toMatch(/^figures of \d\d:\d\d:\d\d \(\d+ s ago\)$/);

    // The failed drill's report, from its link in the history: its RPO/RTO table.
    await page.locator(`tr[data-run="${failedRun}"] a`).click();
    await page.waitForURL(`${console1.url}runs/${failedRun}`);
    // The engine's report page (runbooks/engine/report-html.ts), in the console's language, with a way back.
    expect(await page.locator("h1").textContent()).toMatch(new RegExp(`${failedRun}.*FAILED`));
    expect(await page.getAttribute("html", "lang")).toBe("en");
    expect(await page.locator('a[href="/"]').count()).toBe(1);
    const rpoTable = page.locator("table", { hasText: "RTO" }).first();
    expect(await rpoTable.locator("th").allTextContents()).toEqual(expect.arrayContaining(["RPO", "RTO"]));
    expect(await rpoTable.locator("tr", { hasText: "portal" }).count()).toBeGreaterThan(0);
    await page.goBack();
    await page.locator(`tr[data-run="${okRun}"] a`).click();
    await page.waitForURL(`${console1.url}runs/${okRun}`);
    expect(await page.locator("table", { hasText: "RTO" }).first().locator("tr", { hasText: "portal" }).textContent()).toMatch(/met/);
    expect((await fetch(`${console1.url}runs/no-such-run`)).status).toBe(404);
    expect(cspViolations).toEqual([]);

    // Security headers on every answer; nothing but GET.
    const res = await fetch(console1.url);
    expect(res.headers.get("content-security-policy")).toMatch(/^default-src 'self'; script-src 'self';/);
    expect(res.headers.get("x-frame-options")).toBe("DENY");
    expect((await fetch(`${console1.url}api/status`, { method: "POST" })).status).toBe(405);
    // A name some other site points at 127.0.0.1 (DNS rebinding) gets nothing.
    expect(await statusWithHost(console1.url, "evil.example:80")).toBe(421);
    await page.close();
  });

  it("speaks Vietnamese with --lang vi", async () => {
    const vi = await serve(["--listen", "127.0.0.1:0", "--lang", "vi"]);
    await firstReading(vi.url);
    const { page } = await openPage(vi.url);
    expect(await page.getAttribute("html", "lang")).toBe("vi");
    expect(await page.title()).toBe("Bảng điều khiển trực ban");
    const text = (await page.locator("main").textContent()) ?? "";
    for (const phrase of ["Bảng điều khiển trực ban", "Sao lưu", "Bản sao lưu mới nhất", "Quá hạn RPO", "Chưa từng sao lưu", "Độ trễ sao chép", "Kho sao lưu", "Dịch vụ và diễn tập", "Quá hạn diễn tập", "Chưa sẵn sàng", "Diễn tập", "Thất bại", "Thành công", "trung tâm chính", "trung tâm dự phòng"]) {
      expect(text, phrase).toContain(phrase);
    }
    expect(await page.locator("#updated").textContent()).toMatch(/^số liệu lúc \d\d:\d\d:\d\d \(cách đây \d+ giây\)$/);
    expect(await page.locator('tr[data-job="qn-app-01/files-late"] .badge').textContent()).toBe("Quá hạn RPO");
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBe(1366);
    // The run's report in the console's language too.
    await page.goto(`${vi.url}runs/${okRun}`);
    expect(await page.getAttribute("html", "lang")).toBe("vi");
    expect(await page.locator("main").textContent()).toContain("RPO và RTO");
    expect(await page.locator('a[href="/"]').textContent()).toBe("← trang tổng quan");
    await page.close();
  });

  it("refuses an address other machines can reach without a token (exit 2, one line)", () => {
    for (const listen of ["0.0.0.0:0", "[::]:0"]) {
      const r = dcctl(["serve", "--listen", listen]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^dcctl serve: refusing to listen on \S+ without protection: .*--token-file.*\n$/);
    }
    const loose = join(work, "loose.token");
    writeFileSync(loose, randomBytes(24).toString("hex") + "\n", { mode: 0o644 });
    chmodSync(loose, 0o644);
    const r = dcctl(["serve", "--listen", "0.0.0.0:0", "--token-file", loose]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`dcctl serve: --token-file ${loose} is readable by others (mode 0644); chmod 600 it\n`);
  });

  it("with TLS and a client CA: a client without a certificate the CA signed gets no answer, one with it does", async () => {
    const dir = join(work, "tls");
    mkdirSync(dir);
    const ssl = (args: string[]) => {
      const r = spawnSync("openssl", args, { cwd: dir, encoding: "utf8" });
      if (r.status !== 0) throw new Error(`openssl ${args.join(" ")}: ${r.stderr}`);
    };
    const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    ssl(["req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=duty room test CA"]);
    writeFileSync(join(dir, "san.ext"), "subjectAltName=IP:127.0.0.1\n");
    for (const [name, cn, ext] of [["server", "127.0.0.1", ["-extfile", "san.ext"]], ["client", "duty officer", []]] as const) {
      ssl(["req", ...ec, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${cn}`]);
      ssl(["x509", "-req", "-in", `${name}.csr`, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", `${name}.pem`, "-days", "2", ...ext]);
    }
    const tls = await serve(["--listen", "127.0.0.1:0", "--tls-cert", join(dir, "server.pem"), "--tls-key", join(dir, "server.key"), "--client-ca", join(dir, "ca.pem")]);
    expect(tls.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/$/);
    expect(tls.stderr()).toContain("client certificate required");
    const ca = readFileSync(join(dir, "ca.pem"));
    const ask = (opts: { cert?: Buffer; key?: Buffer }) =>
      new Promise<string>((resolve) => {
        const req = httpsRequest(`${tls.url}healthz`, { ca, ...opts }, (res) => {
          res.resume();
          resolve(`${res.statusCode ?? 0} ${res.headers["strict-transport-security"] ?? ""}`);
        });
        req.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
        req.end();
      });
    expect(await ask({})).toMatch(/CERTIFICATE_REQUIRED|ECONNRESET/);
    expect(await ask({ cert: readFileSync(join(dir, "client.pem")), key: readFileSync(join(dir, "client.key")) })).toBe("200 max-age=31536000");
  });

  it("with a token file: 401 without the token, 200 with it, ?token= once for a cookie; stops cleanly on SIGTERM", async () => {
    const tokenFile = join(work, "console.token");
    const token = randomBytes(24).toString("hex");
    writeFileSync(tokenFile, token + "\n", { mode: 0o600 });
    const guarded = await serve(["--listen", "127.0.0.1:0", "--token-file", tokenFile]);
    expect(guarded.stderr()).toContain("token required");
    const api = `${guarded.url}api/status`;
    expect((await fetch(api)).status).toBe(401);
    expect((await fetch(api, { headers: { authorization: `Bearer ${token}x` } })).status).toBe(401);
    expect((await fetch(guarded.url)).status).toBe(401);
    expect((await fetch(api, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    expect((await fetch(`${guarded.url}healthz`)).status).toBe(200);
    const once = await fetch(`${guarded.url}?token=${token}`, { redirect: "manual" });
    expect(once.status).toBe(303);
    expect(once.headers.get("location")).toBe("/");
    const cookie = once.headers.get("set-cookie") ?? "";
    expect(cookie).toMatch(/^dcctl_console=[\w-]+; Path=\/; HttpOnly; SameSite=Strict$/);
    expect(cookie).not.toContain(token);
    expect((await fetch(api, { headers: { cookie: cookie.split(";")[0] ?? "" } })).status).toBe(200);
    expect((await fetch(`${guarded.url}?token=wrong-token-0123456789`, { redirect: "manual" })).status).toBe(401);

    guarded.child.child.kill("SIGTERM");
    const end = await guarded.child.done;
    expect(end.code).toBe(0);
    expect(guarded.stderr()).toMatch(/dcctl serve: stopped \(SIGTERM\)\n$/);
  });
});
