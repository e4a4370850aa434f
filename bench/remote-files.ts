import { randomBytes } from "node:crypto";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { quoteArg } from "../hosts/quote.js";
import { loadSites } from "../inventory/index.js";
import { siteCommand } from "../lab/lab.js";
import { prng } from "../lab/dataset.js";
import { labPaths } from "../lab/paths.js";
import { toolPath } from "../util/tools.js";
import { benchFlag, benchValue } from "./args.js";
import { broughtUp, labUp, runBench, type Timed } from "./brought-up.js";
import { loadText as load, median } from "./stats.js";
import { timed } from "./timed.js";

/**
 * Incremental backups and single-file restores of a remote host's files (issue 13, item 0), on a lab of the bench's
 * own (node dist/bench/remote-files.js [--rounds N] [--before DIR] [--clean]; needs root):
 *  1. a generated tree of ≥ 2 GB (20,000 files of mixed sizes, made once into /tmp/dcctl-bench-cache/ and reused) on
 *     lab-app-01, 1 % of its files rewritten before each round; `dcctl backup run --job lab-app-01/app-daily` on the
 *     primary's management host (the policy pointed at the tree) against a bare `restic backup` run on lab-app-01
 *     over ssh into its own repository on the same rest-server, interleaved (A B, B A, …), median of the rounds.
 *     Goal: dcctl's incremental ≤ 1.2× the bare one.
 *  2. `dcctl restore --host lab-app-01 --path FILE` of one file (the latest snapshot) against a bare `restic restore
 *     latest --host lab-app-01 --include FILE` on lab-app-01, interleaved, median. Goal ≤ 1.2×.
 * --before DIR: a built checkout of an earlier dcctl (e.g. `git archive` of main into /tmp/dcctl-bench-before,
 * built with tsc), measured in the same rounds as a third column into a repository of its own: the before/after of
 * one run.
 * Prints each figure with its ratio to the bare tool, the data size and the machine's load; asserts nothing.
 * The lab is brought up in a folder of its own and taken down at the end; the tree stays cached (--clean removes it).
 */

const ROUNDS = Number(benchValue("rounds") ?? 5);
const BEFORE = benchValue("before");
const CLEAN = benchFlag("clean");
const FILES = Number(benchValue("files") ?? 20_000);
const CACHE = join(tmpdir(), "dcctl-bench-cache", `remote-files-${FILES}`);
const TREE = join(CACHE, "tree");
const HOST = "lab-app-01";
const JOB = `${HOST}/app-daily`;
const restic = toolPath("restic");

const fmt = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
const mib = (b: number): string => `${(b / 1024 / 1024).toFixed(1)} MiB`;

/** Sizes like a document store's: mostly small scans and mails, some larger PDFs, a few big archives. */
function fileSize(r: () => number): number {
  const x = r();
  const KiB = 1024;
  if (x < 0.7) return 2 * KiB + Math.floor(r() * 30 * KiB); // 2–32 KiB: mails, forms
  if (x < 0.97) return 32 * KiB + Math.floor(r() * 224 * KiB); // 32–256 KiB: scanned pages
  if (x < 0.997) return 256 * KiB + Math.floor(r() * 2.75 * 1024 * KiB); // 0.25–3 MiB: PDFs
  return 4 * 1024 * KiB + Math.floor(r() * 8 * 1024 * KiB); // 4–12 MiB: archives
}

function treeFiles(): { path: string; size: number }[] {
  const r = prng(2026);
  const out: { path: string; size: number }[] = [];
  for (let i = 0; i < FILES; i++) {
    const dir = join(TREE, `d${String(i % 100).padStart(3, "0")}`, `s${String(Math.floor(i / 100) % 20).padStart(2, "0")}`);
    out.push({ path: join(dir, `doc-${String(i).padStart(5, "0")}.bin`), size: fileSize(r) });
  }
  return out;
}

function writeRandom(path: string, size: number): void {
  const fd = openSync(path, "w");
  try {
    for (let left = size; left > 0; ) {
      const n = Math.min(left, 1 << 20);
      writeSync(fd, randomBytes(n));
      left -= n;
    }
  } finally {
    closeSync(fd);
  }
}

/** The tree, generated once (random, incompressible content) and then reused; returns its files and bytes. */
function prepareTree(): { files: { path: string; size: number }[]; bytes: number } {
  const files = treeFiles();
  const bytes = files.reduce((n, f) => n + f.size, 0);
  const marker = join(CACHE, "complete.json");
  if (!existsSync(marker)) {
    rmSync(TREE, { recursive: true, force: true });
    process.stdout.write(`generating ${FILES} files, ${mib(bytes)} into ${TREE} (once)\n`);
    for (const f of files) {
      mkdirSync(join(f.path, ".."), { recursive: true });
      writeRandom(f.path, f.size);
    }
    writeFileSync(marker, JSON.stringify({ files: FILES, bytes }) + "\n");
  }
  return { files, bytes };
}

/** Rewrites 1 % of the files (new content, same size): what changes between two nightly runs. */
function changeOnePercent(files: { path: string; size: number }[], round: number): number {
  const r = prng(1000 + round);
  const n = Math.max(1, Math.floor(files.length / 100));
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const f = files[Math.floor(r() * files.length)] as { path: string; size: number };
    writeRandom(f.path, f.size);
    bytes += f.size;
  }
  return bytes;
}

function ok(what: string, t: Timed): number {
  if (t.code !== 0) throw new Error(`${what} exited ${t.code}: ${t.out.trim().slice(-2000)}`);
  return t.ms;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    process.stderr.write("bench/remote-files: needs root (it brings up a lab of its own)\n");
    process.exit(1);
  }
  const loadStart = load();
  const { files, bytes } = prepareTree();
  const lab = mkdtempSync(join(tmpdir(), "dcctl-bench-remote-files-lab-"));
  const restoreDir = mkdtempSync(join(tmpdir(), "dcctl-bench-remote-files-restore-"));
  broughtUp("the restore folder", () => {
    rmSync(restoreDir, { recursive: true, force: true });
    if (CLEAN) rmSync(CACHE, { recursive: true, force: true });
  });
  {
    process.stdout.write(`bringing up a lab in ${lab}\n`);
    ok("lab up", await labUp(lab, ["--size", "1", "--no-provision", "--write-every", "0"], { removeDir: true }));
    const paths = labPaths(lab);
    // Point the app servers' policy at the tree: every lab host sees this machine's files.
    const policies = parse(readFileSync(paths.policiesFile, "utf8")) as { policies: Record<string, { sources: { kind: string; paths?: string[] }[] }> };
    const app = policies.policies["app-daily"];
    if (!app) throw new Error("the lab's policies have no app-daily");
    app.sources = app.sources.map((s) => (s.kind === "files" ? { ...s, paths: [TREE] } : s));
    writeFileSync(paths.policiesFile, stringify(policies));

    const repos = parse(readFileSync(paths.reposFile("primary"), "utf8")) as { repositories: { primary: { url: string; passwordFile: string } } };
    const primaryUrl = repos.repositories.primary.url;
    const bareUrl = primaryUrl.replace(/\/primary\/$/, "/bare-files/");
    const passFile = repos.repositories.primary.passwordFile;
    const hostIp = loadSites(paths.sites).primary.hosts.find((h) => h.name === HOST)?.ip ?? "";
    const resticEnv = { RESTIC_PASSWORD_FILE: passFile, RESTIC_PROGRESS_FPS: "0.2" };

    /** A command on the primary's management host (lab exec primary), timed. */
    const atPrimary = (argv: string[], extraEnv: Record<string, string> = {}): Promise<Timed> => {
      const { cmd, args: a, env } = siteCommand(lab, "primary", argv);
      return timed(cmd, a, { ...env, ...extraEnv });
    };
    /** A command on lab-app-01 over ssh from the management host, as an engineer scripts it. */
    const onHost = (argv: string[]): Promise<Timed> =>
      atPrimary(["ssh", "-i", paths.clientKey, "-o", `UserKnownHostsFile=${paths.knownHosts}`, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", `root@${hostIp}`, "--", ...argv.map(quoteArg)]);
    const bareEnv = (url: string) => ["env", `RESTIC_REPOSITORY=${url}`, ...Object.entries(resticEnv).map(([k, v]) => `${k}=${v}`)];
    const snapshots = async (url: string): Promise<{ id: string; paths: string[]; summary?: { files_unmodified?: number; files_changed?: number; data_added?: number; total_bytes_processed?: number } }[]> => {
      const t = await atPrimary([restic, "snapshots", "--json", "--host", HOST], { RESTIC_REPOSITORY: url, RESTIC_PASSWORD_FILE: passFile });
      ok("restic snapshots", t);
      return JSON.parse(t.out.slice(t.out.indexOf("["))) as never;
    };
    ok("restic init (bare)", await atPrimary([restic, "init"], { RESTIC_REPOSITORY: bareUrl, RESTIC_PASSWORD_FILE: passFile }));
    const benchRepos = [primaryUrl, bareUrl];
    /** restic's caches of the bench's repositories (this machine's, which is every lab host's): removed before lab down. */
    broughtUp("restic's caches of the bench's repositories", async () => {
      for (const url of benchRepos) {
        const t = await atPrimary([restic, "cat", "config", "--no-lock"], { RESTIC_REPOSITORY: url, RESTIC_PASSWORD_FILE: passFile });
        const id = /"id":\s*"([0-9a-f]{64})"/.exec(t.out)?.[1];
        if (id) rmSync(join(process.env.XDG_CACHE_HOME ?? join(process.env.HOME ?? "/root", ".cache"), "restic", id), { recursive: true, force: true });
      }
    });

    /** The snapshot a run made, from its JSON output (dcctl's result, restic's summary). */
    const made = (what: string, t: Timed): { ms: number; snap: string } => {
      ok(what, t);
      const snap = /"(?:snapshot_id|snapshots)":\s*\[?\s*"([0-9a-f]{64})"/.exec(t.out)?.[1];
      if (!snap) throw new Error(`${what} printed no snapshot id: ${t.out.slice(-500)}`);
      return { ms: t.ms, snap };
    };
    const variants: { name: string; run: () => Promise<{ ms: number; snap: string }>; restore: (file: string, to: string) => Promise<number>; repo: string }[] = [
      {
        name: "dcctl",
        repo: primaryUrl,
        run: async () => made("dcctl backup run", await atPrimary(["dcctl", "backup", "run", "--job", JOB, "--json"])),
        restore: async (file, to) => ok("dcctl restore", await atPrimary(["dcctl", "restore", "--host", HOST, "--path", file, "--to", to, "--yes"])),
      },
      {
        name: "bare restic",
        repo: bareUrl,
        run: async () => made("bare restic backup", await onHost([...bareEnv(bareUrl), restic, "backup", "--json", "--host", HOST, "--exclude", "*.tmp", "--", TREE])),
        restore: async (file, to) => ok("bare restic restore", await onHost([...bareEnv(bareUrl), restic, "restore", "latest", "--host", HOST, "--include", file, "--target", to])),
      },
    ];
    if (BEFORE) {
      // The earlier dcctl into a repository of its own on the same server, so that each one's `latest` is its own.
      const beforeJs = join(BEFORE, "dist", "cli", "main.js");
      const beforeUrl = primaryUrl.replace(/\/primary\/$/, "/before-files/");
      ok("restic init (before)", await atPrimary([restic, "init"], { RESTIC_REPOSITORY: beforeUrl, RESTIC_PASSWORD_FILE: passFile }));
      benchRepos.push(beforeUrl);
      const reposFile = join(lab, "control", "primary", "repositories-before.yaml");
      const own = parse(readFileSync(paths.reposFile("primary"), "utf8")) as { repositories: { primary: { url: string } }; stateDir: string };
      own.repositories.primary.url = beforeUrl;
      own.stateDir = join(lab, "control", "primary", "state-before");
      writeFileSync(reposFile, stringify(own));
      const beforeEnv = { DCCTL_REPOS_FILE: reposFile, DCCTL_STATE_DIR: own.stateDir };
      variants.push({
        name: "dcctl before",
        repo: beforeUrl,
        run: async () => made("dcctl (before) backup run", await atPrimary([process.execPath, beforeJs, "backup", "run", "--job", JOB, "--json"], beforeEnv)),
        restore: async (file, to) => ok("dcctl (before) restore", await atPrimary([process.execPath, beforeJs, "restore", "--host", HOST, "--path", file, "--to", to, "--yes"], beforeEnv)),
      });
    }

    // The first backup of each (one sample), then rounds of 1 % change with every variant in turn, order rotating.
    const first: number[] = [];
    const lastSnap: string[] = [];
    for (const [i, v] of variants.entries()) {
      const r = await v.run();
      first.push(r.ms);
      lastSnap[i] = r.snap;
    }
    const incremental: number[][] = variants.map(() => []);
    let changedBytes = 0;
    for (let round = 0; round < ROUNDS; round++) {
      changedBytes += changeOnePercent(files, round);
      for (let k = 0; k < variants.length; k++) {
        const i = (k + round) % variants.length;
        const r = await (variants[i] as (typeof variants)[number]).run();
        incremental[i]?.push(r.ms);
        lastSnap[i] = r.snap;
      }
    }

    // What restic itself says each one read: its newest snapshot's summary.
    const snapsOf = await Promise.all(variants.map(async (v, i) => (await snapshots(v.repo)).find((s) => s.id === lastSnap[i])));

    // One file of the last change, restored from each one's newest snapshot, in turn; checked against the original.
    const file = files[Math.floor(prng(1000 + ROUNDS - 1)() * files.length)] as { path: string; size: number };
    const restores: number[][] = variants.map(() => []);
    for (let round = 0; round < ROUNDS; round++) {
      for (let k = 0; k < variants.length; k++) {
        const i = (k + round) % variants.length;
        const v = variants[i] as (typeof variants)[number];
        const to = join(restoreDir, `${i}-${round}`);
        restores[i]?.push(await v.restore(file.path, to));
        const got = readFileSync(join(to, file.path));
        if (!got.equals(readFileSync(file.path))) throw new Error(`${v.name} restored ${file.path} with other content`);
        rmSync(to, { recursive: true, force: true });
      }
    }

    const out = (l: string) => process.stdout.write(l + "\n");
    out(`\nremote files of ${HOST}: ${FILES} files, ${mib(bytes)} (${TREE}); ${ROUNDS} rounds of 1 % of the files rewritten (${mib(changedBytes / ROUNDS)} a round)`);
    out(`load average (1/5/15 min): ${loadStart} at start, ${load()} at end; ${readdirSync("/sys/devices/system/cpu").filter((n) => /^cpu\d+$/.test(n)).length} CPUs`);
    const bareI = 1;
    out(`\n  backup                       first       incremental (median)   ratio to bare`);
    variants.forEach((v, i) => out(`  ${v.name.padEnd(26)} ${fmt(first[i] ?? 0).padStart(9)}   ${fmt(median(incremental[i] ?? [])).padStart(9)}              ${(median(incremental[i] ?? []) / median(incremental[bareI] ?? [])).toFixed(3)}${i === 0 ? "  (goal ≤ 1.2)" : ""}`));
    out(`\n  what the newest snapshot read (restic's summary)`);
    variants.forEach((v, i) => {
      const s = snapsOf[i]?.summary;
      if (s) out(`  ${v.name.padEnd(26)} ${mib(s.total_bytes_processed ?? 0)} processed, ${s.files_changed ?? 0} files changed, ${s.files_unmodified ?? 0} unmodified, ${mib(s.data_added ?? 0)} added`);
    });
    out(`\n  single-file restore of ${file.path} (${mib(file.size)}), median of ${ROUNDS}`);
    variants.forEach((v, i) => out(`  ${v.name.padEnd(26)} ${fmt(median(restores[i] ?? [])).padStart(9)}   ratio ${(median(restores[i] ?? []) / median(restores[bareI] ?? [])).toFixed(3)}${i === 0 ? "  (goal ≤ 1.2)" : ""}`));
    out(`\n  samples (s): ${variants.map((v, i) => `${v.name}: backup ${(incremental[i] ?? []).map((ms) => (ms / 1000).toFixed(2)).join(" ")}; restore ${(restores[i] ?? []).map((ms) => (ms / 1000).toFixed(2)).join(" ")}`).join(" | ")}`);
  }
}

await runBench("remote-files", main);
