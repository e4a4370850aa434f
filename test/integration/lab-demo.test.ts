import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { beforeAll, describe, expect, it } from "vitest";
import { parseDocument, type YAMLMap, type YAMLSeq } from "yaml";
import { labNetwork } from "../../lab/lab.js";
import { drillHostDown, drillHosts, drillHostUp, labNetId } from "../../lab/network.js";
import { repoRoot } from "../../util/tools.js";
import { mainJs, startDcctl } from "../helpers/cli.js";
import { rootNamespaceView, routesOf, sharedLab, UP_OUTPUT } from "../helpers/lab.js";

/**
 * The README's main job as a new user and the duty room meet it: `npm run demo`'s script on the lab the tests share
 * (its `lab up` then finds the lab running and checks it, as a second run of the demo does), through the dcctl binary
 * as an operator types it on each site's management host; what keeps the lab inside itself (nothing of it in the root
 * namespace, no default route in any of its namespaces; that nothing is left after `lab down` is proved once the last
 * file is done with it, in test/shared-lab-setup.ts); then every command the demo prints, typed as printed; DR readiness; the secondary's duty console in a real browser; a drill
 * reported in Vietnamese; and its report checked against its hash-chained journal. Each test puts back what it
 * changes, so none depends on another having run.
 */
const t = sharedLab();
let demoOut = "";
/** The drill the demo ran (the newest run once it ended). */
let demoDrill: { dir: string; status: string } = { dir: "", status: "" };

beforeAll(async () => {
  t.ensureUp();
  const demo = spawnSync(process.execPath, [join(repoRoot, "dist", "scripts", "demo.js")], { env: t.env, encoding: "utf8", timeout: 600_000 });
  demoOut = demo.stdout;
  if (demo.status !== 0) throw new Error(`the demo failed (exit ${demo.status}):\n${demo.stdout.slice(-2000)}${demo.stderr.slice(-2000)}`);
  const runs = JSON.parse(t.at("secondary", ["dcctl", "dr", "history", "--json"]).stdout) as { dir: string; status: string }[];
  demoDrill = runs[0] ?? demoDrill;
  await t.standbysStreaming();
  // The lab's bring-up (when this file is the first to need it) and the demo: minutes on a busy machine.
}, 1_500_000);

const LAB_CIDRS = ["10.10.10.0/24", "10.10.20.0/24", "10.10.30.0/24", "10.10.50.0/24", "10.20.10.0/24", "10.20.20.0/24", "10.20.30.0/24", "10.20.50.0/24", "10.20.90.0/24", "10.255.255.0/30"];

/** A process's parent (field 4 of /proc/PID/stat), or undefined when it is gone. */
function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return undefined;
  }
}

/** The postmaster of each lab PostgreSQL data directory (db/HOST/data), by host, from its pid file. */
function postmasters(dir: string): Record<string, number> {
  const found: Record<string, number> = {};
  for (const host of readdirSync(join(dir, "db"))) {
    const file = join(dir, "db", host, "data", "postmaster.pid");
    if (existsSync(file)) found[host] = Number(readFileSync(file, "utf8").split("\n")[0]);
  }
  return found;
}

/** The "To look around" lines of the demo's output, without their comments. */
function lookAroundCommands(out: string): string[] {
  const block = out.slice(out.indexOf("To look around"), out.indexOf("To lose the primary"));
  return block
    .split("\n")
    .slice(1)
    .map((l) => l.replace(/\s+# .*$/, "").trim())
    .filter(Boolean);
}

/** Edits a lab file for the length of `body`, then puts its bytes back. */
async function whileEdited<T>(file: string, edit: (text: string) => string, body: () => Promise<T> | T): Promise<T> {
  const original = readFileSync(file);
  writeFileSync(file, edit(original.toString("utf8")));
  try {
    return await body();
  } finally {
    writeFileSync(file, original);
  }
}

interface Readiness {
  service: string;
  ready: boolean;
  reasons: string[];
}

const readiness = () => {
  const res = t.at("secondary", ["dcctl", "dr", "readiness", "--json"]);
  return { code: res.code, stderr: res.stderr, services: JSON.parse(res.stdout) as Readiness[] };
};

describe("the demo, and the duty room after it", () => {
  it("as another user than root, lab up says in one line that it needs root and creates nothing", () => {
    const res = spawnSync("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, mainJs, "lab", "up"], { env: { ...t.env, DCCTL_LAB_DIR: join(t.dir, "not-root") }, encoding: "utf8" });
    expect(res.status).toBe(1);
    expect(res.stderr).toBe("dcctl: dcctl lab up needs root: the lab builds its two sites from network namespaces\n");
    expect(existsSync(join(t.dir, "not-root"))).toBe(false);
  });

  it("brought the lab up in namespaces, backed up, replicated, drilled on the isolated network with measured RPO and RTO", async () => {
    // What the `lab up` that built it printed.
    const up = { stdout: readFileSync(join(t.dir, UP_OUTPUT), "utf8") };
    expect(up.stdout).toMatch(/stack primary: create \d+/);
    expect(up.stdout).toMatch(/stack secondary: create \d+/);
    // The secondary's standbys were seeded from their primaries and stream (lab up sets replication up once).
    expect(up.stdout).toMatch(/replication lab-dr-db-01: seeded: lab-dr-db-01 seeded from lab-db-01 in [\d.]+ s and streaming through slot dcctl_lab_dr_db_01/);
    expect(up.stdout).toMatch(/replication lab-dr-db-02: seeded:/);

    const status = t.lab(["status", "--json"]);
    expect(status.code).toBe(0);
    const parsed = JSON.parse(status.stdout) as { failed: string[]; wanMbit: number; services: { name: string; pid: number; running: boolean }[] };
    // The restore-test servers on lab-dr-bk-01 count too: 21.
    expect(parsed.services.length).toBe(21);
    expect(parsed.services.every((s) => s.running)).toBe(true);
    expect(parsed).toMatchObject({ failed: [], wanMbit: 100 });
    // The supervisor owns every server it reports, the standby that replication set-up re-seeded and restarted
    // included: each is its child, and each PostgreSQL it names is the postmaster running on that host's data.
    const labState = t.state();
    expect(labState.services.filter((s) => parentOf(s.pid) !== labState.supervisorPid).map((s) => s.name)).toEqual([]);
    const pgServices = Object.fromEntries(labState.services.filter((s) => s.kind === "postgresql").map((s) => [s.host, s.pid]));
    expect(pgServices).toEqual(postmasters(t.dir));
    expect(Object.keys(pgServices)).toContain("lab-dr-db-01");

    // Thirteen namespaces (9 hosts, 2 vCenters, 2 routers); none has a default route, the root namespace has
    // neither a route to a lab network nor one of the lab's links.
    const namespaces = t.namespaces();
    expect(namespaces.length).toBe(13);
    for (const ns of namespaces) expect(routesOf(ns), ns).not.toMatch(/^default/m);
    const root = rootNamespaceView();
    for (const cidr of LAB_CIDRS) expect(root.routes).not.toContain(cidr.split("/")[0]);
    expect(root.links).not.toMatch(/: (br\d+|h\d+|vc|wan)[:@]/);
    expect(root.links).not.toContain(labNetId(t.dir));

    // Inside: the other site answers across the WAN; an address outside the lab is unreachable at once.
    expect(t.at("primary", ["bash", "-c", "exec 3<>/dev/tcp/10.20.50.11/8000"]).code).toBe(0);
    const outside = t.at("primary", ["bash", "-c", "exec 3<>/dev/tcp/10.99.0.1/80"]);
    expect(outside.code).toBe(1);
    expect(outside.stderr).toContain("Network is unreachable");
    // A command killed inside a site ends `lab exec` as a shell says it: 137 for SIGKILL (an OOM kill too), not a stop.
    expect(t.lab(["exec", "primary", "--", "sh", "-c", "kill -KILL $$"]).code).toBe(137);
    expect(t.lab(["exec", "primary", "--", "sh", "-c", "kill -TERM $$"]).code).toBe(143);

    // The demo backed up every job and replicated them; the first line beside the second: each replicated
    // database's replica, measured now, next to its newest snapshot.
    await t.standbysStreaming();
    const backupStatus = t.at("primary", ["dcctl", "backup", "status"]);
    expect(backupStatus.code, backupStatus.stdout + backupStatus.stderr).toBe(0);
    expect(backupStatus.stdout).toMatch(/^lab-db-01\/db-hourly +ok .* lab-dr-db-01 streaming, lag [\d.]+ s \(0m ago\)/m);
    expect(backupStatus.stdout).toMatch(/^lab-db-02\/db-daily +ok .* lab-dr-db-02 streaming, lag [\d.]+ s /m);
    const replication = t.at("secondary", ["dcctl", "replication", "status"]);
    expect(replication.code, replication.stdout + replication.stderr).toBe(0);
    expect(replication.stdout).toMatch(/^lab-dr-db-01 +lab-db-01 +postgresql +streaming /m);
    expect(replication.stdout).toMatch(/^lab-dr-db-02 +lab-db-02 +mariadb +streaming /m);

    // The demo's drill: its journal is the secondary's, in the secondary's control plane.
    expect(demoDrill.status).toBe("ok");
    expect(demoDrill.dir.startsWith(join(t.dir, "control", "secondary"))).toBe(true);
    const md = readFileSync(join(demoDrill.dir, "report.md"), "utf8");
    expect(md).toMatch(/\| portal \| 1 \| [\d.]+ (s|min) \| 15 min \| met \| [\d.]+ (s|min) \| 60 min \| met \|/);
    // The drill's portal ran on the isolated drill network, which reached nothing of production nor was reached.
    expect(md).toMatch(/drill portal at 10\.20\.90\.21:8080 serves a copy of drill_\w+_portal \(\d+ dossiers\) on the isolated drill network; unreachable from it: .*10\.10\.20\.11:5432.*10\.20\.20\.11:5432/);
    expect(md).toMatch(/unreachable from both sites' management hosts: 10\.20\.90\.21:8080, 10\.20\.90\.11:5432/);
    expect(t.namespaces().length).toBe(13);

    // A host on the drill network, tried by hand: a primary address fails at once from there.
    const { sites, net } = labNetwork(t.dir);
    const drillApp = drillHosts(net, sites).app;
    await drillHostUp(net, drillApp);
    try {
      const tried = spawnSync("nsenter", [`--net=/run/netns/${drillApp.netns}`, "bash", "-c", "exec 3<>/dev/tcp/10.10.20.11/5432"], { encoding: "utf8", timeout: 10_000 });
      expect(tried.status).toBe(1);
      expect(tried.stderr).toContain("Network is unreachable");
    } finally {
      await drillHostDown(drillApp);
    }
    expect(t.namespaces().length).toBe(13);

    // Running it again is harmless: the demo's own `lab up` found the lab running, checked it, and changed no stack.
    expect(demoOut).toMatch(/stack primary: same \d+/);
    expect(demoOut).toMatch(/replication lab-dr-db-01: kept: /);
  });
  it("prints commands that each run as printed, in a shell that knows nothing but what it said to source", () => {
    expect(demoOut).toMatch(/^# DR drill \S+: OK/m);
    const commands = lookAroundCommands(demoOut);
    expect(commands[0]).toBe(`source ${join(t.dir, "env")}`);
    expect(commands.length).toBeGreaterThanOrEqual(9);
    // No DCCTL_* and a PATH without any dcctl on it.
    const bare: NodeJS.ProcessEnv = { HOME: process.env.HOME ?? "/root", PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C.UTF-8" };
    const [source, ...rest] = commands;
    for (const command of rest) {
      const res = spawnSync("bash", ["-c", `${source} && ${command}`], { env: bare, encoding: "utf8", input: "", timeout: 120_000 });
      expect(res.status, `${command}\n${res.stdout}${res.stderr}`).toBe(0);
      expect(res.stderr, command).not.toMatch(/not running|command not found|No such file/);
    }
    const status = spawnSync("bash", ["-c", `${source} && dcctl lab status`], { env: bare, encoding: "utf8" });
    expect(status.stdout).toMatch(/lab-db-01/);
  });

  it("dr readiness: every service ready after the demo; a failed job makes its service not ready (exit 4, the job named)", async () => {
    const before = readiness();
    expect(before.code, before.stderr + JSON.stringify(before.services)).toBe(0);
    expect(before.services.map((s) => s.service).sort()).toEqual(["mail", "mariadb", "portal", "postgresql"]);
    expect(before.services.every((s) => s.ready)).toBe(true);
    const metrics = readFileSync(join(t.dir, "control", "secondary", "state", "backup", "dcctl_dr.prom"), "utf8");
    expect(metrics).toMatch(/^dcctl_dr_ready\{service="portal"\} 1$/m);
    expect(metrics).toMatch(/^dcctl_dr_last_drill_timestamp_seconds\{service="portal"\} \d+/m);

    // The portal's files job run once against a folder that is not there (the policies file pointed elsewhere).
    const broken = join(t.dir, "broken-policies.yaml");
    writeFileSync(broken, readFileSync(join(t.dir, "policies.yaml"), "utf8").replace(/\/hosts\/srv/g, "/hosts/no-such-folder"));
    const job = "lab-app-01/app-daily";
    try {
      const failed = t.at("secondary", ["env", `DCCTL_POLICIES_FILE=${broken}`, process.execPath, mainJs, "backup", "run", "--job", job]);
      expect(failed.code).not.toBe(0);
      const after = readiness();
      expect(after.code).toBe(4);
      const portal = after.services.find((s) => s.service === "portal");
      expect(portal?.ready).toBe(false);
      expect(portal?.reasons.join("\n")).toMatch(new RegExp(`backup ${job}: last run failed`));
      expect(after.stderr).toMatch(/^dcctl: 1 of 4 services not ready to fail over \(first: portal: /m);
      expect(readFileSync(join(t.dir, "control", "secondary", "state", "backup", "dcctl_dr.prom"), "utf8")).toMatch(/^dcctl_dr_ready\{service="portal"\} 0$/m);
    } finally {
      expect(t.at("secondary", ["dcctl", "backup", "run", "--job", job]).code).toBe(0);
    }
    expect(readiness().code).toBe(0);
  });

  it("the secondary's duty console in chromium: every job, an over-RPO job and a never-drilled service as such, a drill's report", async () => {
    const jobs = (JSON.parse(t.at("secondary", ["dcctl", "backup", "jobs", "--json"]).stdout) as { id: string }[]).map((j) => j.id);
    expect(jobs.length).toBeGreaterThanOrEqual(5);
    // An operator tightens the mail database's RPO below its newest snapshot's age, and adds a service to the
    // inventory that no drill has covered yet.
    const tighten = (text: string) => text.replace(/(db-daily:[\s\S]*?rpoMinutes: )\d+/, "$10.01");
    const addService = (text: string) => {
      const doc = parseDocument(text);
      const host = (doc.get("hosts") as YAMLSeq<YAMLMap>).items.find((h) => h.get("name") === "lab-app-02");
      host?.set("services", doc.createNode(["portal", "lgsp"], { flow: true }));
      return doc.toString();
    };
    await whileEdited(join(t.dir, "policies.yaml"), tighten, () =>
      whileEdited(join(t.dir, "sites", "primary.yaml"), addService, async () => {
        const console1 = startDcctl(["lab", "console", "secondary", "--port", "0"], t.env);
        const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
        try {
          const url = await new Promise<string>((resolve, reject) => {
            let out = "";
            console1.child.stdout.on("data", (s: string) => {
              out += s;
              const m = /duty console: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
              if (m?.[1]) resolve(m[1]);
            });
            void console1.done.then((r) => reject(new Error(`lab console ended: ${r.stderr}`)));
          });
          const page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
          await page.goto(url, { waitUntil: "load" });
          const row = (job: string) => page.locator(`tr[data-job="${job}"]`);
          // The first reading of the repositories happens in the background; the page shows it when it is there.
          await expect.poll(() => row("lab-db-02/db-daily").locator(".badge").textContent(), { timeout: 60_000, interval: 1000 }).toBe("Over RPO");
          for (const job of jobs) expect(await row(job).count(), job).toBe(1);
          // The figure for the note: the page with the lab's data, navigation to the load event, as chromium timed it.
          await page.reload({ waitUntil: "load" });
          const loadMs = await page.evaluate(() => {
            const [nav] = performance.getEntriesByType("navigation") as PerformanceNavigationTiming[];
            return nav ? nav.loadEventEnd - nav.startTime : -1;
          });
          console.log(`lab console page load (navigation → load event, through lab console's forwarder): ${loadMs.toFixed(0)} ms`);
          expect(loadMs).toBeGreaterThan(0);
          expect(await row("lab-db-01/db-hourly").locator(".badge").textContent()).toBe("OK");
          expect(await page.locator('tr[data-service="lgsp"]').textContent()).toMatch(/never drilled.*Drill overdue/s);
          // Ready once the console has measured the portal's replica: on a busy machine a reading can miss the
          // standby's answer, and the page then says "not measured" until the next one.
          const portal = page.locator('tr[data-service="portal"]');
          await expect.poll(async () => `${await portal.locator(".badge").first().textContent()}: ${await portal.textContent()}`, { timeout: 120_000, interval: 1000 }).toMatch(/^Ready: /);
          expect(await page.locator("#replication").textContent()).toContain("lab-dr-db-01 ← lab-db-01");
          const shot = join(t.dir, "lab-console.png");
          await page.screenshot({ path: shot, fullPage: true });
          copyFileSync(shot, "/tmp/dcctl-lab-console.png");
          expect(readFileSync(shot).readUInt32BE(16)).toBe(1366);
          // The drill the demo ran: its report, with the RPO/RTO table.
          await page.locator("a[href^='/runs/']").first().click();
          await page.waitForURL(/\/runs\/\S+/);
          expect(await page.textContent("body")).toContain("RPO and RTO against the DR tiers");
        } finally {
          await browser.close();
          console1.child.kill("SIGTERM");
          await console1.done;
        }
      }),
    );
  });

  it("a drill with --lang vi reports in Vietnamese, verify-report passes, and one character edited in its journal is found", () => {
    const drill = t.at("secondary", ["dcctl", "dr", "drill", "--lang", "vi", "--runbook", join(t.dir, "runbooks", "drill.yaml"), "--json"]);
    expect(drill.code, drill.stderr).toBe(0);
    const { runId, runDir } = JSON.parse(drill.stdout) as { runId: string; runDir: string };
    const md = readFileSync(join(runDir, "report.md"), "utf8");
    expect(md).toContain(`# Báo cáo diễn tập khôi phục thảm họa ${runId}: HOÀN THÀNH`);
    expect(md).toContain("## RPO và RTO so với mục tiêu theo cấp DR");
    expect(md).toContain("Bằng chứng phục vụ đánh giá theo ISO/IEC 27001:2022");
    expect(readFileSync(join(runDir, "report.html"), "utf8")).toContain('<html lang="vi">');

    const verified = t.at("secondary", ["dcctl", "dr", "verify-report", runId]);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
    const journal = join(runDir, "journal.jsonl");
    const original = readFileSync(journal, "utf8");
    const lines = original.split("\n");
    const i = lines.findIndex((l) => l.includes('"type":"step-end"') && l.includes('"attempt":1'));
    lines[i] = (lines[i] ?? "").replace('"attempt":1', '"attempt":2');
    writeFileSync(journal, lines.join("\n"));
    try {
      const tampered = t.at("secondary", ["dcctl", "dr", "verify-report", runId]);
      expect(tampered.code).toBe(1);
      expect(tampered.stdout).toContain(`journal chain: first bad record: seq ${i + 1} (line ${i + 1}): its hash does not match its content`);
    } finally {
      writeFileSync(journal, original);
    }
  });
});
