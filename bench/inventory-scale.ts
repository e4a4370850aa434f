import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { parse, stringify } from "yaml";
import { textTable } from "../util/table.js";
import { repoRoot } from "../util/tools.js";
import { timed } from "./timed.js";
import { median } from "./stats.js";
import { broughtUp, runBench } from "./brought-up.js";

/**
 * How the inventory's consumers scale with the number of VMs (issue 13, item 6; node dist/bench/inventory-scale.js
 * [TIMES…] [--rounds N], default 1 10 100 and 3 rounds): the province's site files (stacks/sites, 33 VMs at the
 * primary) copied TIMES over into valid inventories under /tmp (unique names and addresses, each network a /16),
 * then `dcctl infra plan --stack primary --json`, `dcctl inventory validate` and `dcctl backup jobs --json` against
 * each, interleaved across sizes, median of the rounds; wall time and the process's peak RSS (VmHWM, read as it
 * exits), against `node -e 0` in the same rounds. Goal: growth linear or better (the marginal cost per VM from the
 * second-largest size to the largest no higher than the mean cost per VM at the second-largest). --keep leaves the
 * generated site files in place for profiling (--cpu-prof); --compare DIR measures another checkout's build (say, main
 * before a change) in the same rounds, in turn with this one, and prints the two side by side. Asserts nothing.
 */

const mainJs = join(repoRoot, "dist", "cli", "main.js");

interface RawNetwork {
  name: string;
  cidr: string;
  gateway: string;
  [field: string]: unknown;
}
interface RawHost {
  name: string;
  ip: string;
  network: string;
  standbyFor?: string;
  [field: string]: unknown;
}
interface RawSite {
  networks: RawNetwork[];
  hosts: RawHost[];
  [field: string]: unknown;
}

/** The second octet of each site's networks once renumbered: network j of the primary is 10.(100+j).0.0/16. */
const SECOND_OCTET = { primary: 100, secondary: 150 } as const;

/** The name of copy k of a host: the province's own for k = 0, so that 1× is the province. */
const copyName = (name: string, k: number): string => (k === 0 ? name : `${name}-x${k}`);

/**
 * The province's site files made `times` times larger: every host copied, its copy k at 10.N.k.LAST (LAST: the
 * last octet of its address in the province), on its network renumbered as a /16; standbys stand by for the copy
 * of their primary. Valid as the province is: checked by `dcctl inventory validate` in the bench itself.
 */
function scaleInventory(times: number, outDir: string): { primaryVms: number; hosts: number } {
  if (!Number.isInteger(times) || times < 1 || times > 256) throw new Error(`${times}× is not a whole number from 1 to 256`);
  mkdirSync(outDir, { recursive: true });
  let primaryVms = 0;
  let hosts = 0;
  for (const siteName of ["primary", "secondary"] as const) {
    const site = parse(readFileSync(join(repoRoot, "stacks", "sites", `${siteName}.yaml`), "utf8")) as RawSite;
    const base = new Map<string, number>();
    site.networks = site.networks.map((n, j) => {
      const second = SECOND_OCTET[siteName] + j;
      base.set(n.name, second);
      return { ...n, cidr: `10.${second}.0.0/16`, gateway: `10.${second}.0.1` };
    });
    const copies: RawHost[] = [];
    for (let k = 0; k < times; k++) {
      for (const h of site.hosts) {
        const last = h.ip.split(".")[3] ?? "0";
        const copy: RawHost = { ...h, name: copyName(h.name, k), ip: `10.${base.get(h.network) ?? 0}.${k}.${last}` };
        if (h.standbyFor !== undefined) copy.standbyFor = copyName(h.standbyFor, k);
        copies.push(copy);
      }
    }
    site.hosts = copies;
    hosts += copies.length;
    if (siteName === "primary") primaryVms = copies.length;
    // No anchors: copies share their disks and services arrays, and a site file written by hand has no aliases.
    writeFileSync(join(outDir, `${siteName}.yaml`), stringify(site, { aliasDuplicateObjects: false }));
  }
  return { primaryVms, hosts };
}

/** Loaded with --import into each measured process: its peak RSS as it exits, into $DCCTL_BENCH_HWM_FILE. */
const HWM_PRELOAD = `import { readFileSync, writeFileSync } from "node:fs";
process.on("exit", () => {
  const kb = /VmHWM:\\s+(\\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? "0";
  writeFileSync(process.env.DCCTL_BENCH_HWM_FILE, kb);
});
`;

interface Sample {
  ms: number;
  rssKb: number;
}

interface Size {
  times: number;
  dir: string;
  primaryVms: number;
  hosts: number;
}

/** A command measured at each size, with what its output must show for the figure to count. */
interface Measured {
  label: string;
  args: string[];
  /** The VMs (or hosts) its cost is per: the primary's VMs for the plan, both sites' hosts otherwise. */
  per: (s: Size) => number;
  check: (out: string, s: Size) => string | undefined;
}

const MEASURED: Measured[] = [
  {
    label: "infra plan --stack primary --json",
    args: ["infra", "plan", "--stack", "primary", "--json"],
    per: (s) => s.primaryVms,
    check: (out, s) => {
      const vms = (JSON.parse(out) as { type: string }[]).filter((r) => r.type.endsWith(":VirtualMachine")).length;
      return vms === s.primaryVms ? undefined : `planned ${vms} VMs, expected ${s.primaryVms}`;
    },
  },
  {
    label: "inventory validate",
    args: ["inventory", "validate"],
    per: (s) => s.hosts,
    check: (out, s) => (out.includes(`${s.primaryVms} hosts`) ? undefined : `unexpected output: ${out.trim().slice(0, 300)}`),
  },
  {
    label: "backup jobs --json",
    args: ["backup", "jobs", "--json"],
    per: (s) => s.hosts,
    check: (out) => ((JSON.parse(out) as unknown[]).length > 0 ? undefined : "no jobs"),
  },
];

const ms = (x: number): string => (x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${Math.round(x)} ms`);
const mb = (kb: number): string => `${(kb / 1024).toFixed(0)} MB`;

function parseArgs(argv: string[]): { sizes: number[]; rounds: number; keep: boolean; compare?: string } {
  const sizes: number[] = [];
  let rounds = 3;
  let keep = false;
  let compare: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? "";
    if (a === "--rounds") rounds = Number(argv[++i]);
    else if (a === "--keep") keep = true;
    else if (a === "--compare") compare = argv[++i];
    else if (a.startsWith("-")) throw new Error(`unknown option ${a} (options: TIMES… --rounds N --keep --compare DIR)`);
    else sizes.push(Number(a));
  }
  if (compare !== undefined && !existsSync(join(compare, "dist", "cli", "main.js"))) throw new Error(`--compare ${compare}: no dist/cli/main.js there (build that checkout first)`);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error("--rounds takes a whole number ≥ 1");
  const list = sizes.length ? sizes : [1, 10, 100];
  if (list.some((t, i) => i > 0 && t <= (list[i - 1] ?? 0))) throw new Error("give the sizes in increasing order");
  return { sizes: list, rounds, keep, ...(compare === undefined ? {} : { compare }) };
}

async function main(): Promise<void> {
  const { sizes: times, rounds, keep, compare } = parseArgs(process.argv.slice(2));
  const loadStart = loadavg();
  const work = mkdtempSync(join(tmpdir(), "dcctl-bench-inventory-"));
  broughtUp("the generated site files", () => {
    // --keep: the generated site files stay, to profile a command against them (DCCTL_SITES_DIR=<work>/x100).
    if (keep) process.stdout.write(`site files kept in ${work}/x<TIMES>\n`);
    else rmSync(work, { recursive: true, force: true });
  });
  {
    const preload = join(work, "hwm.mjs");
    writeFileSync(preload, HWM_PRELOAD);
    const hwmFile = join(work, "hwm");
    const sizes: Size[] = times.map((t) => {
      const dir = join(work, `x${t}`);
      return { times: t, dir, ...scaleInventory(t, dir) };
    });
    const run = async (argv: string[], env: NodeJS.ProcessEnv): Promise<Sample & { out: string }> => {
      writeFileSync(hwmFile, "0");
      const t = await timed(process.execPath, ["--import", pathToFileURL(preload).href, ...argv], { ...env, DCCTL_BENCH_HWM_FILE: hwmFile });
      if (t.code !== 0) throw new Error(`${argv.join(" ")} exited ${t.code}: ${t.out.trim().slice(0, 2000)}`);
      return { ms: t.ms, rssKb: Number(readFileSync(hwmFile, "utf8")), out: t.out };
    };

    // One unmeasured pass first: the first start of node and of the CLI reads its files from disk.
    for (const m of MEASURED) await run([mainJs, ...m.args], { ...process.env, DCCTL_SITES_DIR: sizes[0]?.dir, DCCTL_POLICIES_FILE: join(repoRoot, "backup", "policies.yaml") });
    const bare: Sample[] = [];
    const samples = new Map<string, Sample[]>();
    // Sizes and commands in turn within each round, so that the load of a shared machine falls on every figure alike.
    for (let r = 0; r < rounds; r++) {
      for (const size of sizes) {
        bare.push(await run(["-e", "0"], process.env));
        const env = { ...process.env, DCCTL_SITES_DIR: size.dir, DCCTL_POLICIES_FILE: join(repoRoot, "backup", "policies.yaml") };
        for (const m of MEASURED) {
          // With --compare, the other checkout's CLI right before or after this one's, in turn.
          const clis = compare === undefined ? [["", mainJs]] : [["", mainJs], ["compare:", join(compare, "dist", "cli", "main.js")]];
          for (const [tag, cli] of r % 2 === 0 ? clis : [...clis].reverse()) {
            const s = await run([cli ?? "", ...m.args], env);
            const wrong = m.check(s.out, size);
            if (wrong) throw new Error(`${tag}${m.label} at ${size.times}×: ${wrong}`);
            const key = `${tag}${m.label}@${size.times}`;
            samples.set(key, [...(samples.get(key) ?? []), s]);
          }
        }
      }
    }

    const floor = { ms: median(bare.map((b) => b.ms)), rssKb: median(bare.map((b) => b.rssKb)) };
    const figure = (m: Measured, s: Size, tag = ""): Sample => {
      const xs = samples.get(`${tag}${m.label}@${s.times}`) ?? [];
      return { ms: median(xs.map((x) => x.ms)), rssKb: median(xs.map((x) => x.rssKb)) };
    };
    const rows: string[][] = [];
    for (const m of MEASURED) {
      sizes.forEach((s, i) => {
        const f = figure(m, s);
        const prev = sizes[i - 1];
        const p = prev ? figure(m, prev) : undefined;
        const dn = prev ? m.per(s) - m.per(prev) : 0;
        rows.push([
          i === 0 ? m.label : "",
          `${s.times}×`,
          String(m.per(s)),
          ms(f.ms),
          `${(f.ms / m.per(s)).toFixed(2)}`,
          p ? `${((f.ms - p.ms) / dn).toFixed(2)}` : "",
          `${(f.ms / floor.ms).toFixed(1)}×`,
          mb(f.rssKb),
          p ? `${((f.rssKb - p.rssKb) / dn).toFixed(1)}` : "",
        ]);
      });
    }
    const out = process.stdout;
    out.write(`inventory scale: the province ×${times.join(", ×")}, median of ${rounds} round${rounds === 1 ? "" : "s"}; node -e 0: ${ms(floor.ms)}, ${mb(floor.rssKb)}\n`);
    out.write(`load (1/5/15 min): ${loadStart.map((l) => l.toFixed(2)).join(" ")} at start, ${loadavg().map((l) => l.toFixed(2)).join(" ")} at end\n`);
    out.write(textTable(["COMMAND", "SIZE", "VMS", "TIME", "MS/VM", "MARGINAL MS/VM", "VS NODE -E 0", "PEAK RSS", "MARGINAL KB/VM"], rows));
    out.write("(VMS: the primary's VMs for the plan, both sites' hosts for validate and jobs; MARGINAL: from the size above)\n");
    if (sizes.length >= 2) {
      const [a, b] = [sizes[sizes.length - 2], sizes[sizes.length - 1]] as [Size, Size];
      for (const m of MEASURED) {
        const [fa, fb] = [figure(m, a), figure(m, b)];
        // t(n) = fixed + f(n): linear or better when each VM added costs no more than the mean VM at the smaller size
        // (for t = a + b·n the marginal is b ≤ a/n + b; a term in n² would make it ≈ (n₁+n₂)/n₁ times the mean).
        const marginal = (fb.ms - fa.ms) / (m.per(b) - m.per(a));
        const mean = fa.ms / m.per(a);
        out.write(
          `growth ${a.times}×→${b.times}× (VMs ×${(m.per(b) / m.per(a)).toFixed(1)}) ${m.label}: time ×${(fb.ms / fa.ms).toFixed(2)}, ` +
            `peak RSS ×${(fb.rssKb / fa.rssKb).toFixed(2)}; ms per VM added ${marginal.toFixed(2)} vs ${mean.toFixed(2)} per VM at ${a.times}×: ` +
            (marginal <= mean ? "linear or better" : "SUPER-LINEAR") +
            "\n",
        );
      }
    }
    if (compare !== undefined) {
      out.write(`against ${compare} (its dist/cli/main.js, measured in the same rounds, in turn with this one):\n`);
      const cmp = MEASURED.flatMap((m) =>
        sizes.map((s, i) => {
          const [a, b] = [figure(m, s), figure(m, s, "compare:")];
          return [i === 0 ? m.label : "", `${s.times}×`, ms(b.ms), ms(a.ms), (a.ms / b.ms).toFixed(2), mb(b.rssKb), mb(a.rssKb), (a.rssKb / b.rssKb).toFixed(2)];
        }),
      );
      out.write(textTable(["COMMAND", "SIZE", "TIME THERE", "TIME HERE", "RATIO", "RSS THERE", "RSS HERE", "RATIO"], cmp));
    }
  }
}

await runBench("inventory-scale", main);
