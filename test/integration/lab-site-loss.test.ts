import { readFileSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDcctl, type CliRun } from "../helpers/cli.js";
import { sharedLab } from "../helpers/lab.js";
import { until } from "../helpers/until.js";

/**
 * A lost site is a state, not a stall (issue 21, items 1 and 2): on the lab the tests share, backed up at the primary and
 * replicated to the secondary, each site is lost in turn (`lab fail`: WAN cut, hosts frozen), and the surviving
 * site's views — `backup status`, `dr readiness`, `replication status` and the duty console in chromium — are
 * started the moment the loss is made and must each tell the truth within 30 s of it: the lost site named,
 * unreachable since T; each job judged by what the surviving site holds; per service, whether it can fail over now
 * and at what RPO. Before the loss, the secondary's console shows the primary's last runs, repository sizes and
 * verifies (issue 26). The seconds measured are printed.
 */
const t = sharedLab();
/**
 * The bound the issue sets, from the moment `lab fail` is started to a truthful answer; a `dcctl --version` started
 * beside the views measures what the machine's load alone costs, and is allowed on top.
 */
const BOUND_S = 30;
let browser: Browser | undefined;
const servers: ReturnType<typeof startDcctl>[] = [];

beforeAll(async () => {
  t.ensureUp();
  t.freshBackups();
  for (const argv of [
    ["backup", "verify", "--repository", "primary", "--subset", "10%"],
    ["backup", "verify", "--repository", "secondary", "--subset", "10%"],
  ]) {
    const r = t.at("primary", ["dcctl", ...argv]);
    if (r.code !== 0) throw new Error(`${argv.join(" ")} at the primary failed (exit ${r.code}): ${r.stderr}`);
  }
  // The secondary has judged every copy it holds against the primary's run records while the primary answered (its
  // scheduled status does that all day); a copy that reached it just before the loss would be told apart as unchecked.
  await until("the secondary judged every snapshot it holds", () => {
    const r = t.at("secondary", ["dcctl", "backup", "status", "--json"]);
    return r.stdout.startsWith("{") && (JSON.parse(r.stdout) as { trust: { pending?: number }[] }).trust.every((x) => !x.pending);
  }, 120_000);
}, 1_500_000);

afterAll(async () => {
  for (const s of servers) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill("SIGTERM");
  await Promise.allSettled(servers.map((s) => s.done));
  await browser?.close().catch((e: unknown) => console.error(e));
});

/** A site's duty console (`dcctl lab console`), opened in chromium at the duty room's 1366×768. */
async function openConsole(site: "primary" | "secondary"): Promise<{ url: string; page: Page; close(): Promise<void> }> {
  const server = startDcctl(["lab", "console", site, "--port", "0"], t.env);
  servers.push(server);
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    server.child.stdout.on("data", (s: Buffer) => {
      out += s.toString();
      const m = /duty console: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
      if (m?.[1]) resolve(m[1]);
    });
    void server.done.then((r) => reject(new Error(`lab console ended: ${r.stderr}`)));
  });
  browser ??= await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
  const page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
  await page.goto(url, { waitUntil: "load" });
  return {
    url,
    page,
    async close() {
      await page.close();
      server.child.kill("SIGTERM");
      await server.done;
    },
  };
}

interface ApiStatus {
  sites: { site: string; reachable: boolean; unreachableSince?: string }[];
  backup: { at?: string; predatesOutage?: boolean; jobs: { job: string; state: string; lastRun?: string }[] };
  repositories: { name: string; verify?: { ok: boolean; sizeBytes?: number; at: string } }[];
  services?: { service: string; reasons: string[] }[];
}

const apiStatus = async (url: string): Promise<ApiStatus> => (await (await fetch(`${url}api/status`)).json()) as ApiStatus;

/** A view at the surviving site, started now; resolves with its output and its seconds from `from`. */
function view(site: "primary" | "secondary", argv: string[], from: number): Promise<CliRun & { seconds: number }> {
  const run = startDcctl(["lab", "exec", site, "--", "dcctl", ...argv], t.env);
  servers.push(run);
  return run.done.then((r) => ({ ...r, seconds: (Date.now() - from) / 1000 }));
}

/** The console tells the truth: the banner names the lost site, the figures shown were read after the loss (the header is not marked stale), and no tile of the replicas is green. */
async function consoleTruthful(page: Page, lost: string): Promise<boolean> {
  const banner = await page.locator("#outage h2").textContent({ timeout: 1000 }).catch(() => null);
  if (!banner || !new RegExp(`The ${lost} site has not answered since \\d\\d:\\d\\d:\\d\\d`).test(banner)) return false;
  if (await page.locator("#updated.stale").count()) return false;
  const replicasTile = page.locator(".tile", { hasText: "Replicas OK" });
  return (await replicasTile.count()) === 1 && !(await replicasTile.getAttribute("class"))?.includes("tone-ok");
}

/** Polls until the console is truthful; its seconds from `from`. */
async function consoleSeconds(page: Page, lost: string, from: number): Promise<number> {
  const deadline = Date.now() + 180_000;
  for (;;) {
    if (await consoleTruthful(page, lost)) return (Date.now() - from) / 1000;
    if (Date.now() > deadline) throw new Error(`the console never told the truth: ${await page.locator("main").textContent()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** What the surviving site's views answered after `lab fail`, each with its seconds from the moment it started. */
interface Loss {
  from: number;
  status: CliRun & { seconds: number };
  readiness: CliRun & { seconds: number };
  replication: CliRun & { seconds: number };
}

/**
 * Loses `lost` with the three views and the console started at once at the other site; prints the seconds and holds
 * each to the bound (what merely starting a dcctl costs on this machine now comes on top of dcctl's own waiting).
 */
async function lose(lost: "primary" | "secondary", page: Page, readinessArgv: string[]): Promise<Loss> {
  const at = lost === "primary" ? "secondary" : "primary";
  const from = Date.now();
  const fail = t.lab(["fail", lost]);
  expect(fail.code, fail.stderr).toBe(0);
  const [status, readiness, replication, consoleS, idle] = await Promise.all([
    view(at, ["backup", "status", "--json"], from),
    view(at, readinessArgv, from),
    view(at, ["replication", "status"], from),
    consoleSeconds(page, lost, from),
    view(at, ["--version"], from),
  ]);
  process.stdout.write(
    `${lost} lost, seen from the ${at}: backup status ${status.seconds.toFixed(1)} s, dr readiness ${readiness.seconds.toFixed(1)} s, replication status ${replication.seconds.toFixed(1)} s, console truthful ${consoleS.toFixed(1)} s after lab fail started (dcctl --version beside them: ${idle.seconds.toFixed(1)} s)\n`,
  );
  for (const [name, seconds] of [
    ["backup status", status.seconds],
    ["dr readiness", readiness.seconds],
    ["replication status", replication.seconds],
    ["the console", consoleS],
  ] as const) {
    expect(seconds, name).toBeLessThanOrEqual(BOUND_S + idle.seconds);
  }
  return { from, status, readiness, replication };
}

describe("the surviving site tells the truth within 30 s of losing the other", () => {
  it("the primary lost: the secondary judges by its own copies and says how to fail over (and its console showed the primary's runs and verifies)", () => t.changing(async () => {
    const con = await openConsole("secondary");
    try {
      // Issue 26: the runs and verifies were made at the primary; the secondary's console shows them all.
      let status: ApiStatus | undefined;
      await expect
        .poll(
          async () => {
            status = await apiStatus(con.url);
            return status.backup.jobs.length > 0 && status.backup.jobs.every((j) => j.lastRun) && status.repositories.every((r) => r.verify?.sizeBytes);
          },
          { timeout: 120_000, interval: 1000 },
        )
        .toBe(true);
      expect(status?.repositories.map((r) => [r.name, r.verify?.ok])).toEqual([
        ["primary", true],
        ["secondary", true],
      ]);
      // The page shows that reading at its next refresh.
      const lastRuns = () => con.page.locator("tr[data-job]").evaluateAll((rows) => rows.map((r) => `${r.getAttribute("data-job") ?? ""}: ${r.querySelectorAll("td")[5]?.textContent?.trim() ?? ""}`));
      const jobsCount = status?.backup.jobs.length ?? -1;
      const notShown = async () => {
        const rows = await lastRuns();
        return rows.length === jobsCount ? rows.filter((x) => !/: ok · \d{4}-\d\d-\d\d \d\d:\d\d$/.test(x)) : [`${rows.length} of ${jobsCount} rows`];
      };
      await expect.poll(notShown, { timeout: 60_000, interval: 1000 }).toEqual([]);
      for (const row of await con.page.locator("tr[data-repository]").all()) {
        expect(await row.locator("td").nth(2).textContent()).toMatch(/^\d+\.\d (KiB|MiB|GiB)$/);
        expect(await row.locator(".badge").textContent()).toBe("passed");
        expect(await row.textContent()).toMatch(/passed \d{4}-\d\d-\d\d \d\d:\d\d · read 10% of the data/);
      }

      // The loss, and the three views started at once beside the console.
      const { from, status: status1, readiness: readiness1, replication: replication1 } = await lose("primary", con.page, ["dr", "readiness"]);

      // backup status: exit 7, the primary named; every job judged by the secondary's copies, within RPO.
      expect(status1.code, status1.stderr).toBe(7);
      expect(status1.stderr).toMatch(/^dcctl: the primary site is unreachable since \S+; 8 of 8 jobs within RPO by the copies this site holds\n$/);
      const report = JSON.parse(status1.stdout) as { rows: { job: string; site: string; repository: string; judgedBy?: string; state: string; copies: { repository: string; state: string; error?: string }[] }[]; unreachable: { site: string; unreachableSince: string }[] };
      expect(report.unreachable.map((u) => u.site)).toEqual(["primary"]);
      const since = report.unreachable[0]?.unreachableSince ?? "";
      expect(Date.parse(since)).toBeGreaterThanOrEqual(from - 1000);
      expect(Date.parse(since)).toBeLessThanOrEqual(from + BOUND_S * 1000);
      for (const r of report.rows) {
        expect(r.state, r.job).toBe("ok");
        expect(r.judgedBy ?? r.repository, r.job).toBe("secondary");
        // The primary's repository, extra information, is not read at all while its site is lost.
        if (r.repository === "primary") expect(r.copies.find((c) => c.repository === "primary")?.error, r.job).toMatch(/^repository primary is at the primary site, unreachable since /);
      }
      expect(report.rows.filter((r) => r.site === "primary").length).toBeGreaterThanOrEqual(4);

      // dr readiness: exit 7, per service "can fail over, RPO X" against its tier, and the command to run.
      expect(readiness1.code, readiness1.stderr).toBe(7);
      expect(readiness1.stdout).toMatch(/^PRIMARY SITE UNREACHABLE since \S+: judged by what this site holds\.$/m);
      expect(readiness1.stdout).toMatch(/^To fail over, run at this site: dcctl dr failover --to secondary --failed-at \S+$/m);
      for (const [service, target] of [
        ["postgresql", 15],
        ["portal", 15],
        ["mariadb", 240],
      ] as const) {
        expect(readiness1.stdout).toMatch(new RegExp(`^${service} +\\d +can fail over, RPO [\\d.]+ min \\(target ${target} min, met\\) +\\S`, "m"));
      }
      // The replica says how far it is only when it replayed a commit since it started (nothing is written in this lab):
      // then its time stands beside the copy's (the unit test covers that); the copy always.
      expect(readiness1.stdout).toMatch(/lab-db-01: (replica lab-dr-db-01 complete to \S+, )?newest copy \S+/);
      // Every service can: the three of the inventory, and mail once a drill or failover has covered it.
      expect(readiness1.stderr).toMatch(/^dcctl: the primary site is unreachable since \S+: (\d+) of \1 services can fail over now \(run: dcctl dr failover --to secondary --failed-at \S+\)\n$/);

      // replication status: exit 7, the primary named; each replica says when it last heard from it.
      expect(replication1.code, replication1.stderr).toBe(7);
      expect(replication1.stdout).toMatch(/^PRIMARY SITE UNREACHABLE since \S+ \(management host lab-bk-01 \(10\.10\.50\.11:22\): no answer within 5 s; repository primary \(http:\/\/10\.10\.50\.11:\d+\/primary\/\): no answer within 5 s\)$/m);
      // Seen on the lab: the standbys themselves do not answer their 5 s query while the primary is lost (the views
      // then fall back to the copies); issue 21's report names this as still to find out.
      expect(replication1.stderr).toMatch(/^dcctl: the primary site is unreachable since \S+; 2 of 2 replication pairs not streaming \(lab-dr-db-01: (broken|unreachable)/);


      // The same T everywhere, kept in the secondary's own state.
      const kept = JSON.parse(readFileSync(join(t.dir, "control", "secondary", "state", "reachability.json"), "utf8")) as Record<string, { unreachableSince: string }>;
      const again = await view("secondary", ["backup", "status", "--json"], Date.now());
      expect(again.code).toBe(7);
      expect((JSON.parse(again.stdout) as { unreachable: { unreachableSince: string }[] }).unreachable[0]?.unreachableSince).toBe(kept.primary?.unreachableSince);

      // The console: the banner with each service's answer and the command; every figure read after the loss.
      const page = con.page;
      expect(await page.locator("#outage").textContent()).toContain("To fail over, run at this site:");
      expect(await page.locator("#outage code.command").textContent()).toMatch(/^dcctl dr failover --to secondary --failed-at \S+$/);
      for (const service of ["postgresql", "portal", "mariadb"]) {
        expect(await page.locator(`tr[data-failover="${service}"] .badge`).textContent(), service).toMatch(/^can fail over, RPO \d+ min \(target [\d.]+ (min|h), met\)$/);
      }
      const tiles = await page.locator(".tile").evaluateAll((els) => els.map((e) => `${e.className}: ${e.textContent ?? ""}`));
      expect(tiles[0]).toMatch(/tone-bad: ✕primary site: unreachable since \d\d:\d\d:\d\d/);
      expect(tiles.find((x) => x.includes("Replicas OK"))).toMatch(/tone-bad: 0\/2Replicas OK/);
      const api = await apiStatus(con.url);
      expect(Date.parse(api.backup.at ?? "")).toBeGreaterThanOrEqual(Date.parse(api.sites.find((s) => s.site === "primary")?.unreachableSince ?? ""));

      // A long reason (issue 26): one line until opened, then whole; it stays open across the page's refresh. The
      // longest is the service's whose data is described at most length (a standby that answers adds to it).
      const longest = [...(api.services ?? [])].sort((a, b) => b.reasons.join("; ").length - a.reasons.join("; ").length)[0];
      const reasons = longest?.reasons.join("; ") ?? "";
      const summary = page.locator(`tr[data-service="${longest?.service ?? ""}"] details.why > summary`);
      const clipped = () => summary.evaluate((e) => e.scrollWidth > e.clientWidth);
      expect(await clipped()).toBe(true);
      await summary.click();
      expect(await clipped()).toBe(false);
      expect((await summary.textContent())?.trim()).toBe(reasons);
      const updated = await page.locator("#updated").textContent();
      await page.waitForFunction((old) => document.getElementById("updated")?.textContent !== old, updated, { timeout: 60_000 });
      expect(await page.locator(`tr[data-service="${longest?.service ?? ""}"] details.why`).getAttribute("open")).not.toBeNull();
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBe(1366);
      await page.screenshot({ path: "/tmp/dcctl-console-primary-lost.png", fullPage: true });
    } finally {
      await con.close();
      const heal = t.lab(["heal"]);
      expect(heal.code, heal.stderr).toBe(0);
    }
  }), 900_000);

  it("the secondary lost: the primary names it, judges by its own repository and has nowhere to fail over to", () => t.changing(async () => {
    const con = await openConsole("primary");
    try {
      // The primary's console has read once, with both sites answering.
      await expect.poll(async () => (await apiStatus(con.url)).backup.jobs.length, { timeout: 120_000, interval: 1000 }).toBeGreaterThan(0);
      await expect.poll(async () => (await apiStatus(con.url)).sites.every((s) => s.reachable), { timeout: 60_000, interval: 1000 }).toBe(true);

      const { status: status1, readiness: readiness1, replication: replication1 } = await lose("secondary", con.page, ["dr", "readiness", "--json"]);

      expect(status1.code, status1.stderr).toBe(7);
      expect(status1.stderr).toMatch(/^dcctl: the secondary site is unreachable since \S+; \d+ of \d+ jobs within RPO by the copies this site holds/);
      const report = JSON.parse(status1.stdout) as { rows: { job: string; repository: string; judgedBy?: string; state: string; unreachable?: boolean; error?: string }[] };
      for (const r of report.rows) {
        if (r.repository === "primary") {
          expect(r.state, r.job).toBe("ok");
          expect(r.judgedBy, r.job).toBeUndefined();
        } else {
          // Written to the secondary's repository only: nothing here holds it, and its site does not answer.
          expect(r, r.job).toMatchObject({ state: "unknown", unreachable: true });
          expect(r.error).toMatch(/^repository secondary is at the secondary site, unreachable since /);
        }
      }

      expect(readiness1.code, readiness1.stderr).toBe(7);
      expect(readiness1.stderr).toMatch(/^dcctl: the secondary site is unreachable since \S+: 0 of 3 services can fail over now\n$/);
      const services = JSON.parse(readiness1.stdout) as { service: string; failoverNow?: { possible: boolean; blockers: string[]; lost: string } }[];
      expect(services.map((s) => s.service).sort()).toEqual(["mariadb", "portal", "postgresql"]);
      for (const s of services) {
        expect(s.failoverNow, s.service).toMatchObject({ lost: "secondary", possible: false });
        expect(s.failoverNow?.blockers.join(" "), s.service).toMatch(/the secondary site, where it would fail over to, is unreachable since /);
      }

      expect(replication1.code, replication1.stderr).toBe(7);
      expect(replication1.stdout).toMatch(/^SECONDARY SITE UNREACHABLE since \S+ \(management host lab-dr-bk-01 /m);
      expect(replication1.stdout).toMatch(/^lab-dr-db-01 +lab-db-01 +postgresql +unreachable /m);

      expect(await con.page.locator("#outage").textContent()).toContain("There is nowhere to fail over to while it is lost");
      const tiles = await con.page.locator(".tile").evaluateAll((els) => els.map((e) => `${e.className}: ${e.textContent ?? ""}`));
      expect(tiles[0]).toMatch(/tone-bad: ✕secondary site: unreachable since /);
      expect(tiles.find((x) => x.includes("Replicas OK"))).toMatch(/tone-bad: 0\/2Replicas OK/);
    } finally {
      await con.close();
      const heal = t.lab(["heal"]);
      expect(heal.code, heal.stderr).toBe(0);
    }
  }), 900_000);
});
