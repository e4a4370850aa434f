import { spawn } from "node:child_process";
import { appendFileSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import type { AnomalyScore } from "../backup/anomaly.js";
import { quoteArgv } from "../hosts/quote.js";
import { encryptInPlaceArgv, ordinaryDay, scanCampaign, writeDocuments } from "../lab/documents.js";
import { siteCommand } from "../lab/lab.js";
import { labPaths } from "../lab/paths.js";
import { readLabState } from "../lab/state.js";
import { textTable } from "../util/table.js";
import { toolPath } from "../util/tools.js";
import { benchOption } from "./args.js";
import { runBench, whileRunning } from "./brought-up.js";
import { runningLab } from "./running-lab.js";
import { loadText, median } from "./stats.js";

/**
 * The anomaly score of every snapshot over ordinary days and over an attack, on a running lab (node
 * dist/bench/anomaly.js [--days N], as root; N ordinary days, default 22):
 *  1. the portal's documents (lab/documents.ts: dossiers and scans) written under the tree the application hosts'
 *     files jobs back up (<lab>/hosts/srv/bench-anomaly), and a first `backup run --all --site primary`, not counted;
 *  2. N ordinary days, each followed by `backup run --all --site primary`: the documents change as a day changes them,
 *     some of the mail server's accounts log in (MariaDB rows updated), a line is added to the hosts' /etc now and
 *     then, and the portal files dossiers into PostgreSQL as it always does (`lab up --write-every`);
 *  3. two unusual but legitimate days, each followed by a run: a digitisation campaign (60 scans filed at once, which
 *     do not compress), then every document rewritten with the same content (as a restore or a copy does);
 *  4. every file of the application tree encrypted in place on lab-app-01 (openssl over SSH from the primary's
 *     management host), and one more run: both application hosts' jobs back that tree up.
 * Then `backup snapshots --json` scores every snapshot: per policy and item, the ordinary days' min / median / max,
 * the unusual days' and the encrypted snapshots' scores, and the margin between. The tree is restored from the snapshot before the attack
 * (`dcctl restore`), the bench's documents, /etc lines and snapshots removed. Asserts nothing.
 */

const days = Number(benchOption("days", "22"));
/** The day of the attack, after the ordinary days and the two unusual ones. */
const ATTACK = days + 3;

interface Row {
  repository: "primary" | "secondary";
  id: string;
  short_id: string;
  job?: string;
  source?: string;
  anomaly?: Omit<AnomalyScore, "id">;
}

interface Done {
  code: number;
  stdout: string;
  stderr: string;
}

const say = (line: string) => process.stdout.write(`${line}\n`);

await runBench("anomaly", async () => {
  if (!(Number.isInteger(days) && days >= 1)) throw new Error(`--days must be a whole number of days ≥ 1, not ${benchOption("days", "")}`);
  const { dir, sites } = runningLab("anomaly");
  say(`load ${loadText()}; lab ${dir}; ${days} ordinary days`);
  const paths = labPaths(dir);
  const srv = join(dir, "hosts", "srv");
  const documents = join(srv, "bench-anomaly");
  const etcFile = join(dir, "hosts", "etc", "portal.conf");
  const etcBefore = readFileSync(etcFile, "utf8");
  const mariadb = readLabState(dir)?.services.find((s) => s.kind === "mariadb" && s.site === "primary");
  const app = sites.primary.hosts.find((h) => h.name === "lab-app-01");
  if (!mariadb || !app) throw new Error("the lab has no primary MariaDB or no lab-app-01");

  /** A command on a site's management host, stopped with the bench. */
  const at = (site: "primary" | "secondary", argv: string[]): Promise<Done> =>
    new Promise((resolve) => {
      const { cmd, args, env } = siteCommand(dir, site, argv);
      const child = spawn(cmd, args, { env, stdio: ["ignore", "pipe", "pipe"] });
      whileRunning(child, argv.slice(0, 4).join(" "));
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
      child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
      child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
    });
  const ok = async (site: "primary" | "secondary", argv: string[]): Promise<string> => {
    const res = await at(site, argv);
    if (res.code !== 0) throw new Error(`${argv.slice(0, 4).join(" ")} at ${site} exited ${res.code}: ${res.stderr.trim().split("\n").pop() ?? ""}`);
    return res.stdout;
  };

  const made = new Map<string, number>();
  let lastApp01 = "";
  const runAll = async (day: number) => {
    const t0 = performance.now();
    const out = JSON.parse(await ok("primary", ["dcctl", "backup", "run", "--all", "--site", "primary", "--json"])) as { results: { job: string; snapshots: string[] }[] };
    for (const r of out.results) for (const id of r.snapshots) made.set(id, day);
    const app01 = out.results.find((r) => r.job === "lab-app-01/app-daily")?.snapshots[0];
    if (app01 && day < ATTACK) lastApp01 = app01;
    say(`day ${day}: ${out.results.reduce((n, r) => n + r.snapshots.length, 0)} snapshots in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  };

  let encrypted = false;
  try {
    const seed = 1 + (Date.now() % 1_000_000);
    writeDocuments(documents, { dossiers: 300, scans: 20, seed });
    await runAll(0);
    for (let day = 1; day <= days; day++) {
      const change = ordinaryDay(documents, day, seed);
      const login = `UPDATE accounts SET used_mb = used_mb + ${1 + (day % 7)}, last_login = NOW() WHERE id % 40 = ${day % 40}`;
      await ok("primary", ["mariadb", `--defaults-extra-file=${join(dir, "secrets", "mariadb.cnf")}`, "-h", mariadb.address, "-P", String(mariadb.port), "mail", "-e", login]);
      if (day % 5 === 0) appendFileSync(etcFile, `# day ${day}: reviewed\n`);
      say(`day ${day}: ${change.updated} dossiers updated, ${change.filed} filed, ${change.scans} scans, ${change.archived} archived`);
      await runAll(day);
    }
    // Unusual days, legitimate: not an alarm either.
    const scanned = scanCampaign(documents, 60, seed);
    say(`day ${days + 1}: a digitisation campaign, 60 scans (${(scanned / 2 ** 20).toFixed(1)} MiB) filed at once`);
    await runAll(days + 1);
    let rewritten = 0;
    const rewrite = (d: string): void => {
      for (const name of readdirSync(d)) {
        const p = join(d, name);
        if (statSync(p).isDirectory()) rewrite(p);
        else {
          writeFileSync(p, readFileSync(p));
          rewritten++;
        }
      }
    };
    rewrite(documents);
    say(`day ${days + 2}: every document (${rewritten}) rewritten with the same content`);
    await runAll(days + 2);

    const ssh = ["ssh", "-i", paths.clientKey, "-o", `UserKnownHostsFile=${paths.knownHosts}`, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-p", String(app.ssh.port), `${app.ssh.user}@${app.ssh.host}`];
    encrypted = true;
    await ok("primary", [...ssh, quoteArgv(encryptInPlaceArgv(srv))]);
    await runAll(ATTACK);

    const rows = (JSON.parse(await ok("primary", ["dcctl", "backup", "snapshots", "--json"])) as Row[]).filter((r) => made.has(r.id));
    report(rows, made);
  } finally {
    if (encrypted && lastApp01) await ok("primary", ["dcctl", "restore", "--host", "lab-app-01", "--path", srv, "--snapshot", lastApp01, "--yes"]);
    rmSync(documents, { recursive: true, force: true });
    writeFileSync(etcFile, etcBefore);
    await forget([...made.keys()]);
  }

  /** The bench's snapshots forgotten, each repository by the site that owns it. */
  async function forget(ids: string[]): Promise<void> {
    if (!ids.length) return;
    for (const site of ["primary", "secondary"] as const) {
      const own = (parse(readFileSync(paths.reposFile(site), "utf8")) as { repositories: Record<string, { url: string; passwordFile: string }> }).repositories[site];
      if (!own) continue;
      const list = JSON.parse(await ok(site, [toolPath("restic"), "-r", own.url, "--password-file", own.passwordFile, "snapshots", "--json", "--no-lock"])) as { id: string }[];
      const here = list.map((s) => s.id).filter((id) => made.has(id));
      if (here.length) await ok(site, [toolPath("restic"), "-r", own.url, "--password-file", own.passwordFile, "forget", ...here]);
      say(`forgot the bench's ${here.length} snapshots in repository ${site}`);
    }
  }
});

function report(rows: Row[], made: Map<string, number>): void {
  const ordinary = rows.filter((r) => (made.get(r.id) ?? 0) >= 1 && (made.get(r.id) ?? 0) <= days);
  const unusual = rows.filter((r) => (made.get(r.id) ?? 0) > days && (made.get(r.id) ?? 0) < ATTACK && r.job?.endsWith("/app-daily"));
  const attack = rows.filter((r) => made.get(r.id) === ATTACK && r.job?.endsWith("/app-daily"));
  const kindOf = (r: Row) => `${r.job?.split("/")[1] ?? "?"} ${r.source ?? "?"}`;
  const kinds = [...new Set(ordinary.map(kindOf))].sort();
  const fmt = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? "-" : x.toFixed(3));
  const table = kinds.map((k) => {
    const of = ordinary.filter((r) => kindOf(r) === k);
    const scores = of.flatMap((r) => r.anomaly?.score ?? []);
    const judgedOnParts = of.filter((r) => Object.keys(r.anomaly?.parts ?? {}).length > 0).length;
    const worst = of.reduce<Row | undefined>((w, r) => ((r.anomaly?.score ?? -1) > (w?.anomaly?.score ?? -1) ? r : w), undefined);
    return [k, String(of.length), String(scores.length), String(judgedOnParts), fmt(Math.min(...scores)), fmt(median(scores)), fmt(Math.max(...scores)), String(of.filter((r) => r.anomaly?.verdict === "suspicious").length), worst?.anomaly?.reason ?? ""];
  });
  say("");
  say(`ordinary days 1–${days} (threshold ${ordinary[0]?.anomaly?.threshold ?? "-"}):`);
  say(textTable(["POLICY ITEM", "SNAPSHOTS", "SCORED", "ON PARTS", "MIN", "MEDIAN", "MAX", "SUSPICIOUS", "THE HIGHEST, WHY"], table));
  say("");
  say(`unusual days ${days + 1} (60 scans filed) and ${days + 2} (every document rewritten, same content), application tree:`);
  say(textTable(["DAY", "JOB", "ID", "SCORE", "VERDICT", "WHY"], unusual.map((r) => [String(made.get(r.id)), r.job ?? "", r.short_id, fmt(r.anomaly?.score), r.anomaly?.verdict ?? "-", r.anomaly?.reason ?? ""])));
  say("");
  say(`encrypted tree (day ${ATTACK}):`);
  say(textTable(["JOB", "REPOSITORY", "ID", "SCORE", "VERDICT", "WHY"], attack.map((r) => [r.job ?? "", r.repository, r.short_id, fmt(r.anomaly?.score), r.anomaly?.verdict ?? "-", r.anomaly?.reason ?? ""])));
  const maxOrdinary = Math.max(...[...ordinary, ...unusual].flatMap((r) => r.anomaly?.score ?? []));
  const minAttack = Math.min(...attack.flatMap((r) => r.anomaly?.score ?? []));
  say("");
  const alarms = [...ordinary, ...unusual].filter((r) => r.anomaly?.verdict === "suspicious").length;
  say(`max ordinary or unusual ${fmt(maxOrdinary)}, min encrypted ${fmt(minAttack)}: margin ${fmt(minAttack - maxOrdinary)}; false alarms ${alarms} of ${ordinary.length + unusual.length}`);
}
