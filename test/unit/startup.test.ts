import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ajv, type ValidateFunction } from "ajv";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { POLICIES_SCHEMA } from "../../backup/policies.js";
import { REPOSITORIES_SCHEMA } from "../../backup/repositories.js";
import { SITE_SCHEMA } from "../../inventory/schema-check.js";
import { displayPath, parseYamlSource } from "../../inventory/yaml-source.js";
import { repoRoot } from "../../util/tools.js";
import { schemaFingerprint, type SchemaSpec } from "../../util/validator.js";
import { cachedYaml } from "../../util/yaml-cache.js";
import { mainJs } from "../helpers/cli.js";
import { HELP_PACKAGES, moduleRecorder, packagesOf, recordedModules } from "../helpers/module-recorder.js";

/**
 * What keeps dcctl's start-up short (issue 13, item 1; the figures are bench/startup.ts's): the validators compiled at
 * build time and equal to ajv's own, YAML data kept between runs without a word of any message changing, and the
 * modules each command line loads.
 */

const work = mkdtempSync(join(tmpdir(), "dcctl-startup-test-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("the validators the build compiles (dist/validators)", () => {
  const specs: [SchemaSpec, unknown[]][] = [
    [SITE_SCHEMA, [{}, { site: "tertiary", domain: "", dnsServers: [], hosts: [{ name: "Bad Name", role: "web", cpus: 1.5, memoryGb: 0, disks: [], ssh: { port: 0 } }], extra: 1 }]],
    [POLICIES_SCHEMA, [{}, { policies: {} }, { policies: { Bad: {}, ok: { sources: [{ kind: "files" }, { kind: "tape" }], schedule: "", retention: { keepLast: 0 }, rpoMinutes: 0, repository: "x" } } }]],
    [REPOSITORIES_SCHEMA, [{}, { site: "x", repositories: { primary: { url: "" } }, notify: { smtp: { host: "h", from: "f", to: [], user: "u" }, on: ["never"] }, concurrency: 0 }]],
  ];
  const require = createRequire(import.meta.url);

  for (const [spec, documents] of specs) {
    it(`${spec.name}: was built from this schema, and reports exactly what ajv compiling it reports`, () => {
      const file = join(repoRoot, "dist", "validators", `${spec.name}.cjs`);
      expect(existsSync(file), `${file} is missing: npm run build makes it`).toBe(true);
      const built = require(file) as ValidateFunction & { schemaFingerprint: string };
      expect(built.schemaFingerprint, "the schema changed since the build: npm run build").toBe(schemaFingerprint(spec));
      const compiled = new Ajv(spec.options).compile(spec.schema);
      for (const doc of documents) {
        expect(built(doc)).toBe(compiled(doc));
        expect(built.errors).toEqual(compiled.errors);
      }
    });
  }
});

describe("YAML data kept between runs (util/yaml-cache.ts)", () => {
  let before: string | undefined;
  beforeEach(() => {
    before = process.env.DCCTL_CACHE;
    process.env.DCCTL_CACHE = mkdtempSync(join(work, "cache-"));
  });
  afterEach(() => {
    if (before === undefined) delete process.env.DCCTL_CACHE;
    else process.env.DCCTL_CACHE = before;
  });

  /** parseYamlSource, counting its calls. */
  const counting = () => {
    const calls = { n: 0 };
    const parse = (file: string, text: string) => {
      calls.n++;
      return parseYamlSource(file, text);
    };
    return { calls, parse };
  };
  const text = "site: primary\nhosts:\n  - name: a\n    ip: 10.0.0.1\n  - { name: b, ip: 10.0.0.2 }\n";

  it("parses a text once; later reads give the same data, and lines and messages as the parser's own", () => {
    const { calls, parse } = counting();
    const first = cachedYaml("x.yaml", text, parse, displayPath);
    const again = cachedYaml("elsewhere/x.yaml", text, parse, displayPath);
    expect(calls.n).toBe(1);
    expect(again.data).toEqual(first.data);
    expect(again.displayPath).toBe(displayPath("elsewhere/x.yaml"));
    expect(again.syntaxProblems).toEqual([]);
    // Lines only when asked for, from a real parse of that file.
    for (const path of [[], ["hosts"], ["hosts", 1, "ip"], ["hosts", 7], ["nothing", "here"]]) expect(again.lineOf(path)).toBe(first.lineOf(path));
    expect(again.problem(["hosts", 1], "bad")).toBe(parseYamlSource("elsewhere/x.yaml", text).problem(["hosts", 1], "bad"));
    expect(calls.n).toBe(2);
  });

  it("never keeps a text with a syntax error, nor data JSON cannot carry exactly; an edit is a new text", () => {
    for (const t of ["a: [1, 2\n", "a: .inf\n", "a: -0\n"]) {
      const { calls, parse } = counting();
      cachedYaml("x.yaml", t, parse, displayPath);
      expect(cachedYaml("x.yaml", t, parse, displayPath).data).toEqual(parseYamlSource("x.yaml", t).data);
      expect(calls.n, t).toBe(2);
    }
    const { calls, parse } = counting();
    cachedYaml("x.yaml", text, parse, displayPath);
    cachedYaml("x.yaml", text + "# edited\n", parse, displayPath);
    expect(calls.n).toBe(2);
  });

  it("keeps the entries in use when it prunes, however many other texts came after them", () => {
    const { calls, parse } = counting();
    cachedYaml("x.yaml", text, parse, displayPath);
    const dir = join(String(process.env.DCCTL_CACHE), "yaml");
    const [kept] = readdirSync(dir);
    const long = new Date("2001-01-01");
    for (let i = 0; i < 450; i++) writeFileSync(join(dir, `old-${i}.json`), "{}");
    for (const name of readdirSync(dir)) utimesSync(join(dir, name), long, long);
    cachedYaml("x.yaml", text, parse, displayPath);
    cachedYaml("y.yaml", "another: text\n", parse, displayPath);
    expect(calls.n).toBe(2);
    const left = readdirSync(dir);
    expect(left.length).toBeLessThan(250);
    expect(left).toContain(kept);
    cachedYaml("x.yaml", text, parse, displayPath);
    expect(calls.n).toBe(2);
  });

  it("works on with a cache folder it cannot write, parsing every time", () => {
    const blocked = join(work, "blocked");
    writeFileSync(blocked, "a file, not a folder");
    process.env.DCCTL_CACHE = blocked;
    const { calls, parse } = counting();
    expect(cachedYaml("x.yaml", text, parse, displayPath).data).toEqual(cachedYaml("x.yaml", text, parse, displayPath).data);
    expect(calls.n).toBe(2);
  });
});

describe("what each command line loads", () => {
  const recorder = moduleRecorder(work);
  const cache = join(work, "cli-cache");
  mkdirSync(cache);
  const repos = join(work, "repositories.yaml");
  writeFileSync(join(work, "pass"), "x\n", { mode: 0o600 });
  writeFileSync(repos, `site: primary\nrepositories:\n  primary: { url: "rest:http://127.0.0.1:9/", passwordFile: ${join(work, "pass")} }\n`);
  let runs = 0;
  const loaded = (args: string[]): string[] => {
    const log = join(work, `loaded-${runs++}.txt`);
    writeFileSync(log, "");
    const env = { ...process.env, LOADED_LOG: log, DCCTL_CACHE: cache, DCCTL_REPOS_FILE: repos, DCCTL_SITES_DIR: "", DCCTL_POLICIES_FILE: "", DCCTL_DEBUG: "" };
    const res = spawnSync(process.execPath, ["--import", recorder, mainJs, ...args], { cwd: repoRoot, env, encoding: "utf8" });
    expect(res.status, res.stderr).toBe(0);
    return recordedModules(log);
  };
  const heavy = ["@pulumi/pulumi", "fastify", "nodemailer", "i18next", "playwright-core", "ora", "pg"];

  it("--help lists every group and loads none of them", () => {
    const files = loaded(["--help"]);
    const cli = files.filter((f) => f.includes("/dist/cli/")).map((f) => f.replace(/.*\/dist\/cli\//, ""));
    // inputs.js: the checks every command line gets (a flag given twice, the environment), a few lines of our own.
    expect(cli.sort()).toEqual(["commands.js", "inputs.js", "main.js"]);
    expect([...packagesOf(files)].filter((p) => !HELP_PACKAGES.test(p))).toEqual([]);
  });

  it("backup jobs and a dry run load neither ajv's compiler nor, once the files were read before, the yaml library", () => {
    const commands = [["backup", "jobs", "--json"], ["--lang", "en", "backup", "run", "--job", "qn-db-01", "--dry-run"]];
    for (const args of commands) loaded(args);
    for (const args of commands) {
      const files = loaded(args);
      expect(files.filter((f) => f.includes("/node_modules/ajv/") && !f.includes("/ajv/dist/runtime/")), args.join(" ")).toEqual([]);
      expect(files.filter((f) => /\/node_modules\/yaml\/(?!package\.json)/.test(f)), args.join(" ")).toEqual([]);
      expect([...packagesOf(files)].filter((p) => heavy.includes(p) || p === "ssh2"), args.join(" ")).toEqual([]);
      expect(files.some((f) => f.endsWith("/dist/cli/backup.js"))).toBe(true);
    }
    expect(readdirSync(join(cache, "yaml")).length).toBeGreaterThanOrEqual(3);
  });
});
