import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import { hostLocation, siteSourceFile, type Sites } from "../inventory/index.js";
import { parseYamlSource, displayPath, type DataPath, type YamlSource } from "../inventory/yaml-source.js";
import { MAX_DURATION_TEXT, parseDuration } from "../util/duration.js";
import { InputError, errorMessage } from "../util/errors.js";
import { repoRoot } from "../util/tools.js";
import type { KeepPolicy } from "./restic/index.js";
import { CronError, parseCron } from "./schedule.js";

/**
 * The backup policies (backup/policies.yaml): what each inventory `backupPolicy` name means. Loaded and checked like
 * the inventory: every problem is one `file:line: message` line, and a policy named in the inventory but not
 * defined here is reported at the host's line in the site file.
 */

export const REPOSITORY_NAMES = ["primary", "secondary"] as const;
export type RepositoryName = (typeof REPOSITORY_NAMES)[number];

export interface FilesSourceSpec {
  kind: "files";
  /** Absolute paths on the host. */
  paths: string[];
  /** restic/tar exclude patterns; a pattern starting with "/" is anchored at the root. */
  excludes: string[];
}

export interface DatabaseSourceSpec {
  kind: "postgresql" | "mariadb";
}

export type SourceSpec = FilesSourceSpec | DatabaseSourceSpec;

export interface Policy {
  name: string;
  description: string;
  sources: SourceSpec[];
  /** 5-field cron expression (checked). */
  schedule: string;
  retention: KeepPolicy;
  rpoMinutes: number;
  repository: RepositoryName;
  /** restic --limit-upload, KiB/s; 0 means no limit. */
  limitUploadKiB: number;
  randomizedDelaySec: number;
  /** A job that makes no progress for this long fails (restic stopped, nothing saved). */
  stallMs: number;
}

/** A job's stall limit when its policy names none: long enough for a slow pg_dump to send its first bytes. */
export const DEFAULT_STALL_MS = 5 * 60_000;

export interface Policies {
  file: string;
  policies: Map<string, Policy>;
}

interface RawPolicy {
  description?: string;
  sources: ({ kind: "files"; paths: string[]; excludes?: string[] } | { kind: "postgresql" | "mariadb" })[];
  schedule: string;
  retention: KeepPolicy;
  rpoMinutes: number;
  repository: RepositoryName;
  limitUploadKiB?: number;
  randomizedDelaySec?: number;
  stallTimeout?: string | number;
}

const count = { type: "integer", minimum: 1 } as const;
const schema = {
  type: "object",
  additionalProperties: false,
  required: ["policies"],
  properties: {
    policies: {
      type: "object",
      minProperties: 1,
      propertyNames: { pattern: "^[a-z0-9][a-z0-9-]*$" },
      additionalProperties: {
        type: "object",
        additionalProperties: false,
        required: ["sources", "schedule", "retention", "rpoMinutes", "repository"],
        properties: {
          description: { type: "string" },
          sources: {
            type: "array",
            minItems: 1,
            items: {
              type: "object",
              required: ["kind"],
              properties: { kind: { enum: ["files", "postgresql", "mariadb"] } },
              if: { properties: { kind: { const: "files" } } },
              then: {
                additionalProperties: false,
                required: ["paths"],
                properties: {
                  kind: { const: "files" },
                  paths: { type: "array", minItems: 1, items: { type: "string", pattern: "^/" } },
                  excludes: { type: "array", items: { type: "string", minLength: 1 } },
                },
              },
              else: { additionalProperties: false, properties: { kind: { enum: ["postgresql", "mariadb"] } } },
            },
          },
          schedule: { type: "string", minLength: 1 },
          retention: {
            type: "object",
            additionalProperties: false,
            minProperties: 1,
            properties: { keepLast: count, keepHourly: count, keepDaily: count, keepWeekly: count, keepMonthly: count, keepYearly: count },
          },
          rpoMinutes: { type: "number", exclusiveMinimum: 0 },
          repository: { enum: [...REPOSITORY_NAMES] },
          limitUploadKiB: { type: "integer", minimum: 0 },
          randomizedDelaySec: { type: "integer", minimum: 0 },
          stallTimeout: { type: ["string", "number"] },
        },
      },
    },
  },
} as const;

const ajv = new Ajv({ allErrors: true, strict: false });
// Compiled on first use: a schema costs tens of milliseconds to compile, paid by every dcctl start otherwise.
let compiled: ValidateFunction<{ policies: Record<string, RawPolicy> }> | undefined;
const validator = (): ValidateFunction<{ policies: Record<string, RawPolicy> }> => (compiled ??= ajv.compile<{ policies: Record<string, RawPolicy> }>(schema));

/** $DCCTL_POLICIES_FILE, or backup/policies.yaml of this checkout. */
export function policiesFilePath(env: NodeJS.ProcessEnv = process.env): string {
  return env.DCCTL_POLICIES_FILE ? resolve(env.DCCTL_POLICIES_FILE) : join(repoRoot, "backup", "policies.yaml");
}

/** Reads and checks the policies file; throws InputError with every problem as `file:line: message`. */
export function loadPolicies(path: string = policiesFilePath()): Policies {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new InputError([`${displayPath(path)}: cannot read the backup policies: ${(e as NodeJS.ErrnoException).code ?? errorMessage(e)}`]);
  }
  return parsePolicies(path, text);
}

export function parsePolicies(path: string, text: string): Policies {
  const source = parseYamlSource(path, text);
  if (source.syntaxProblems.length) throw new InputError(source.syntaxProblems);
  const data: unknown = source.data;
  const validate = validator(); if (!validate(data)) {
    // An error inside propertyNames repeats, without the name, what the propertyNames error itself says.
    const errors = (validate.errors ?? []).filter((e) => (e as ErrorObject & { propertyName?: string }).propertyName === undefined);
    throw new InputError(sorted(source, errors.map((e) => describe(e))));
  }
  const problems: { path: DataPath; message: string }[] = [];
  const policies = new Map<string, Policy>();
  for (const [name, raw] of Object.entries(data.policies)) {
    try {
      parseCron(raw.schedule);
    } catch (e) {
      if (!(e instanceof CronError)) throw e;
      problems.push({ path: ["policies", name, "schedule"], message: `policy ${name}: schedule: ${e.message}` });
    }
    const kinds = raw.sources.map((s) => s.kind);
    const repeated = kinds.filter((k, i) => kinds.indexOf(k) !== i);
    if (repeated.length) problems.push({ path: ["policies", name, "sources"], message: `policy ${name}: source kind ${repeated[0] ?? ""} is listed twice (merge its paths)` });
    const stallMs = raw.stallTimeout === undefined ? DEFAULT_STALL_MS : parseDuration(raw.stallTimeout);
    if (stallMs === undefined) problems.push({ path: ["policies", name, "stallTimeout"], message: `policy ${name}: stallTimeout: not a duration (e.g. 90s, 5m, 1h; at most ${MAX_DURATION_TEXT})` });
    policies.set(name, {
      name,
      description: raw.description ?? "",
      sources: raw.sources.map((s): SourceSpec => (s.kind === "files" ? { kind: "files", paths: [...s.paths], excludes: [...(s.excludes ?? [])] } : { kind: s.kind })),
      schedule: raw.schedule,
      retention: { ...raw.retention },
      rpoMinutes: raw.rpoMinutes,
      repository: raw.repository,
      limitUploadKiB: raw.limitUploadKiB ?? 0,
      randomizedDelaySec: raw.randomizedDelaySec ?? 0,
      stallMs: stallMs ?? DEFAULT_STALL_MS,
    });
  }
  if (problems.length) throw new InputError(sorted(source, problems));
  return { file: source.displayPath, policies };
}

/**
 * Every backupPolicy named in the inventory must be a defined policy; otherwise `site-file:line: …` at the host.
 * Returns the problems (empty when all is well) so callers can add them to their own.
 */
export function checkInventoryPolicies(sites: Sites, policies: Policies): string[] {
  const problems: string[] = [];
  const known = [...policies.policies.keys()];
  for (const site of [sites.primary, sites.secondary]) {
    for (const host of site.hosts) {
      if (policies.policies.has(host.backupPolicy)) continue;
      const where = hostLocation(site, host.name, "backupPolicy") ?? siteSourceFile(site) ?? site.site;
      problems.push(`${where}: host "${host.name}": backup policy "${host.backupPolicy}" is not defined in ${policies.file} (defined: ${known.join(", ")})`);
    }
  }
  return problems;
}

function describe(err: ErrorObject): { path: DataPath; message: string } {
  const path = err.instancePath
    .split("/")
    .slice(1)
    .map((p) => (/^\d+$/.test(p) ? Number(p) : p.replace(/~1/g, "/").replace(/~0/g, "~")));
  const inPolicy = path[0] === "policies" && typeof path[1] === "string";
  const name = inPolicy ? `policy ${String(path[1])}: ` : "";
  const field = (inPolicy ? path.slice(2) : path).map((p) => (typeof p === "number" ? `[${p}]` : `.${p}`)).join("").replace(/^\./, "");
  const at = field ? `${field} ` : "";
  switch (err.keyword) {
    case "additionalProperties":
      return { path: [...path, String(err.params.additionalProperty)], message: `${name}unknown field "${String(err.params.additionalProperty)}"` };
    case "required":
      return { path, message: `${name}${at ? `${field}: ` : ""}missing required field "${String(err.params.missingProperty)}"` };
    case "enum":
      return { path, message: `${name}${at}must be one of: ${(err.params.allowedValues as unknown[]).map(String).join(", ")}` };
    case "propertyNames":
      return { path: [...path, String(err.params.propertyName)], message: `policy name "${String(err.params.propertyName)}" must be lower-case letters, digits and hyphens` };
    case "minProperties":
      return { path, message: path.length === 1 ? "policies: define at least one policy" : `${name}${at}must have at least one entry` };
    case "if":
      // The `then`/`else` branch already said what is wrong.
      return { path, message: "" };
    default:
      return { path, message: `${name}${at}${err.message ?? "is invalid"}` };
  }
}

function sorted(source: YamlSource, problems: { path: DataPath; message: string }[]): string[] {
  const lines = problems
    .filter((p) => p.message)
    .map((p, order) => ({ line: source.lineOf(p.path), order, text: source.problem(p.path, p.message) }))
    .sort((a, b) => a.line - b.line || a.order - b.order)
    .map((p) => p.text);
  return [...new Set(lines)];
}
