import { randomBytes } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { Restic } from "../../restic/index.js";
import { repoRoot } from "../../util/tools.js";
import { startDcctl } from "../helpers/cli.js";

/**
 * `backup run` judges what it just made: a files job on this machine (a local repository the primary keeps), a few
 * ordinary runs, then the job's tree overwritten with random bytes as ransomware would. The run that backs up the
 * encrypted tree says at once that its snapshot is suspicious, and the site's webhook has been told before the
 * command returns; the ordinary runs say nothing and tell nobody.
 */

const work = mkdtempSync(join(tmpdir(), "dcctl-run-judgement-"));
const data = join(work, "srv");
const JOB = "qn-app-01/app-daily";
const posts: string[] = [];
let hook: Server | undefined;
let env: NodeJS.ProcessEnv;

/** Prose-like text: compresses as documents do. */
function document(seed: number, lines: number): string {
  const words = ["hồ sơ", "công dân", "thủ tục", "giấy phép", "xác nhận", "địa chỉ", "ngày", "số", "phường", "quận"];
  return Array.from({ length: lines }, (_, i) => Array.from({ length: 12 }, (_, j) => words[(seed * 31 + i * 7 + j * 3) % words.length]).join(" ") + ` ${seed}-${i}`).join("\n") + "\n";
}

// Not spawnSync: the webhook receiver answers from this process meanwhile.
const dcctl = (args: string[]) => startDcctl(args, env).done;
const run = () => dcctl(["backup", "run", "--job", JOB, "--json"]);

beforeAll(async () => {
  mkdirSync(data, { recursive: true });
  for (let i = 0; i < 40; i++) writeFileSync(join(data, `dossier-${i}.txt`), document(i, 60));
  hook = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      posts.push(body);
      res.writeHead(200).end("ok");
    });
  });
  await new Promise<void>((r) => hook?.listen(0, "127.0.0.1", r));
  const port = (hook.address() as AddressInfo).port;

  const sites = join(work, "sites");
  mkdirSync(sites);
  for (const f of ["primary.yaml", "secondary.yaml"]) copyFileSync(join(repoRoot, "test", "fixtures", "inventory", "cross-site-ok", f), join(sites, f));
  const files = { sources: [{ kind: "files", paths: [data] }], schedule: "0 2 * * *", retention: { keepLast: 10 }, rpoMinutes: 1560, repository: "primary" };
  writeFileSync(join(work, "policies.yaml"), stringify({ policies: { "db-hourly": files, "db-daily": files, "app-daily": files } }));
  writeFileSync(join(work, "pass"), "judged at once\n", { mode: 0o600 });
  writeFileSync(join(work, "webhook.token"), "t0ken\n", { mode: 0o600 });
  const repo = join(work, "repo");
  await new Restic({ url: repo, passwordFile: join(work, "pass") }, { cacheDir: join(work, "cache") }).init();
  writeFileSync(
    join(work, "repositories.yaml"),
    stringify({
      site: "primary",
      repositories: { primary: { url: repo, passwordFile: "pass" } },
      localHosts: ["qn-app-01"],
      stateDir: join(work, "state"),
      cacheDir: join(work, "cache"),
      notify: { webhook: { url: `http://127.0.0.1:${port}/hooks/dr`, tokenFile: "webhook.token" }, on: ["failure"] },
    }),
  );
  env = { ...process.env, DCCTL_SITES_DIR: sites, DCCTL_POLICIES_FILE: join(work, "policies.yaml"), DCCTL_REPOS_FILE: join(work, "repositories.yaml"), DCCTL_STATE_DIR: join(work, "state"), DCCTL_DEBUG: "" };
}, 60_000);

afterAll(async () => {
  await new Promise<void>((r) => (hook ? hook.close(() => r()) : r()));
  rmSync(work, { recursive: true, force: true });
});

describe("backup run judges the snapshots it made", () => {
  it("ordinary runs pass quietly; the run after an encryption says its snapshot is suspicious and the webhook is told before it returns", async () => {
    for (let day = 0; day < 4; day++) {
      if (day > 0) {
        // An ordinary day: two dossiers amended, one new.
        for (const i of [day, day + 10]) writeFileSync(join(data, `dossier-${i}.txt`), document(i, 60) + document(100 + day, 3));
        writeFileSync(join(data, `new-${day}.txt`), document(200 + day, 40));
      }
      const ordinary = await run();
      expect(ordinary.code, ordinary.stderr).toBe(0);
      expect(ordinary.stderr).not.toContain("NOT TRUSTED");
      expect(JSON.parse(ordinary.stdout)).not.toHaveProperty("distrusted");
    }
    expect(posts).toEqual([]);

    // Every file overwritten in place with bytes that do not compress.
    for (const f of readdirSync(data)) writeFileSync(join(data, f), randomBytes(readFileSync(join(data, f)).length));
    const hit = await run();
    expect(hit.code, hit.stderr).toBe(0);
    const out = JSON.parse(hit.stdout) as { results: { snapshots: string[] }[]; distrusted?: { id: string; job?: string; distrust: { kind: string; score?: number }[] }[] };
    const made = out.results[0]?.snapshots[0] ?? "";
    expect(out.distrusted?.map((d) => [d.id, d.job, d.distrust.map((x) => x.kind)])).toEqual([[made, JOB, ["suspicious"]]]);
    expect(hit.stderr).toMatch(new RegExp(`^warning: NOT TRUSTED, just made: snapshot ${made.slice(0, 8)} of qn-app-01 \\(${JOB}, files\\), claiming .*: suspicious \\(score 0\\.\\d+\\): `, "m"));
    // Told once, at once: the post came before the command ended.
    expect(posts, hit.stderr).toHaveLength(1);
    expect(posts[0]).toContain(made.slice(0, 8));
    expect(posts[0]).toMatch(/suspicious/i);
    // The ledger keeps the verdict: the next view does not tell again.
    const status = await dcctl(["backup", "status", "--json"]);
    expect(status.code).toBe(9);
    expect(posts).toHaveLength(1);
  });
});
