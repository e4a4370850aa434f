import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { POLICIES_SCHEMA } from "../backup/policies.js";
import { REPOSITORIES_SCHEMA } from "../backup/repositories.js";
import { SITE_SCHEMA } from "../inventory/schema-check.js";
import { repoRoot } from "../util/tools.js";
import type { SchemaSpec } from "../util/validator.js";

/**
 * `npm run docs`: docs/reference/configuration.md, field by field, from the JSON schemas dcctl validates its files
 * with (the ones scripts/build-validators.ts compiles), so the reference says what the validator accepts and cannot
 * drift from it: test/unit/config-reference.test.ts fails when the committed file is not what this writes now.
 * A field's text is its schema's `description`; its default, the schema's `default`.
 */

export const REFERENCE_FILE = join(repoRoot, "docs", "reference", "configuration.md");

interface FileDoc {
  title: string;
  where: string;
  about: string;
  spec: SchemaSpec;
}

const FILES: FileDoc[] = [
  {
    title: "Site inventory",
    where: "`stacks/sites/primary.yaml` and `secondary.yaml` (another folder: `$DCCTL_SITES_DIR`)",
    about:
      "Each site's servers, networks, templates, vCenter names and DR tiers: what the stacks declare, the backup engine backs up and the DR engine brings up. `dcctl inventory validate` checks it, including what a schema cannot say (references between fields, unique names, addresses inside their network).",
    spec: SITE_SCHEMA,
  },
  {
    title: "Backup policies",
    where: "`backup/policies.yaml` of the checkout (another file: `$DCCTL_POLICIES_FILE`)",
    about: "What each host's `backupPolicy` means, and when each site runs replicate, prune and verify.",
    spec: POLICIES_SCHEMA,
  },
  {
    title: "Repositories file",
    where: "`/etc/dcctl/repositories.yaml` on each site's management host (another file: `$DCCTL_REPOS_FILE`); never in the checkout",
    about:
      "Where this site's repositories are and how this machine reaches the hosts, with every secret in a file of its own (mode 0600). Relative paths are read from the file's folder.",
    spec: REPOSITORIES_SCHEMA,
  },
];

/** What the key of a mapping of free names stands for, by the mapping's path. */
const KEY_NAMES: Record<string, string> = { policies: "<policy>", "databases.hosts": "<host>" };

type Schema = Record<string, unknown>;

interface Row {
  path: string;
  type: string;
  required: boolean;
  default?: unknown;
  description: string;
}

const isSchema = (v: unknown): v is Schema => typeof v === "object" && v !== null && !Array.isArray(v);
const code = (v: unknown): string => `\`${typeof v === "string" ? v : JSON.stringify(v)}\``;

/** A field's type as a reader wants it: the kind of value, and the range or set it must be in. */
function typeOf(s: Schema): string {
  if (Array.isArray(s.enum)) return `one of ${s.enum.map(code).join(", ")}`;
  if ("const" in s) return code(s.const);
  if (Array.isArray(s.anyOf)) return s.anyOf.filter(isSchema).map(typeOf).join(", or ");
  const types = Array.isArray(s.type) ? (s.type as string[]) : typeof s.type === "string" ? [s.type] : [];
  if (types.length > 1) return types.map((t) => (t === "string" && types.includes("number") ? "duration" : t === "number" ? "seconds" : t)).join(" or ");
  const t = types[0] ?? (isSchema(s.properties) || isSchema(s.additionalProperties) ? "object" : "any");
  if (t === "array") {
    const item = isSchema(s.items) ? typeOf(s.items) : "any";
    const min = typeof s.minItems === "number" && s.minItems > 0 ? `, at least ${s.minItems}` : "";
    return `list of ${item}${min}`;
  }
  if (t === "object") return "mapping";
  if (t === "integer" || t === "number") {
    const word = t === "integer" ? "integer" : "number";
    const low = typeof s.exclusiveMinimum === "number" ? `> ${s.exclusiveMinimum}` : typeof s.minimum === "number" ? `≥ ${s.minimum}` : "";
    if (typeof s.minimum === "number" && typeof s.maximum === "number") return `${word} ${s.minimum}–${s.maximum}`;
    return low ? `${word} ${low}` : word;
  }
  if (t === "string" && typeof s.pattern === "string") return `string matching ${code(s.pattern)}`;
  return t;
}

/** The condition of an if/then/else, as words: `kind` is `files`. */
function conditionOf(cond: unknown): string {
  const props = isSchema(cond) && isSchema(cond.properties) ? cond.properties : {};
  return Object.entries(props)
    .map(([k, v]) => (isSchema(v) && "const" in v ? `${k} is ${code(v.const)}` : k))
    .join(" and ");
}

/** A field's row, then the fields inside it. */
function field(at: string, sub: Schema, isRequired: boolean, extra: string, rows: Row[], seen: Map<string, string>): void {
  const description = [typeof sub.description === "string" ? sub.description : "", extra].filter(Boolean).join(" ");
  // An object already described elsewhere with the very same fields (a per-host override, a second repository) is
  // pointed at, not repeated.
  const shape = isSchema(sub.properties) ? JSON.stringify(sub) : undefined;
  const twin = shape ? seen.get(shape) : undefined;
  rows.push({ path: at, type: typeOf(sub), required: isRequired, default: sub.default, description: twin ? `${description} The same fields as \`${twin}\`.`.trim() : description });
  if (twin) return;
  if (shape) seen.set(shape, at);
  if (isSchema(sub.properties) || isSchema(sub.if)) walk(sub, at, rows, seen);
  if (isSchema(sub.additionalProperties)) field(`${at}.${KEY_NAMES[at] ?? "<name>"}`, sub.additionalProperties, false, "", rows, seen);
  if (isSchema(sub.items)) walk(sub.items, `${at}[]`, rows, seen);
}

/** The fields of an object schema at `path`, including those that exist only under an if/then/else condition. */
function walk(s: Schema, path: string, rows: Row[], seen: Map<string, string>): void {
  const at = (key: string): string => (path ? `${path}.${key}` : key);
  const fields = isSchema(s.properties) ? s.properties : {};
  const required = new Set(Array.isArray(s.required) ? (s.required as string[]) : []);
  for (const [key, sub] of Object.entries(fields)) if (isSchema(sub)) field(at(key), sub, required.has(key), "", rows, seen);
  if (!isSchema(s.if)) return;
  const cond = conditionOf(s.if);
  for (const [branch, words] of [
    [s.then, `Only when ${cond}.`],
    [s.else, `Only when not ${cond}.`],
  ] as const) {
    if (!isSchema(branch) || !isSchema(branch.properties)) continue;
    const branchRequired = new Set(Array.isArray(branch.required) ? (branch.required as string[]) : []);
    for (const [key, sub] of Object.entries(branch.properties)) if (isSchema(sub) && !(key in fields)) field(at(key), sub, branchRequired.has(key), words, rows, seen);
  }
}

function rowsOf(spec: SchemaSpec): Row[] {
  const rows: Row[] = [];
  walk(spec.schema as Schema, "", rows, new Map());
  return rows;
}

/** Text for a table cell: pipes escaped, and outside code spans `<` too (`<stateDir>` is no HTML tag). */
const cell = (text: string): string =>
  text
    .split(/(`[^`]*`)/)
    .map((part, i) => (i % 2 ? part : part.replace(/</g, "&lt;")))
    .join("")
    .replace(/\|/g, "\\|")
    .replace(/\n/g, " ");

/** The whole reference, as `npm run docs` writes it. */
export function configurationReference(): string {
  const out = [
    "# Configuration reference",
    "",
    "<!-- Generated by `npm run docs` (scripts/config-reference.ts) from the JSON schemas dcctl validates these files with. Do not edit: change the schema's description and run npm run docs. -->",
    "",
    "Every field dcctl accepts in its YAML files, from the schemas it checks them with; a misspelt field is an error, never",
    "a silent default. A path reads `a.b` for a field of a mapping, `a[].b` for a field of each item of a list, and `<name>`",
    "for a key you choose. Runbooks are not described by a JSON schema: their fields are in",
    "[runbooks/engine/README.md](../../runbooks/engine/README.md).",
  ];
  for (const f of FILES) {
    out.push("", `## ${f.title}`, "", `${f.where}. ${f.about}`, "", "| field | type | required | default | description |", "|---|---|---|---|---|");
    for (const r of rowsOf(f.spec)) {
      out.push(`| ${cell(code(r.path))} | ${cell(r.type)} | ${r.required ? "yes" : ""} | ${r.default === undefined ? "" : cell(code(r.default))} | ${cell(r.description)} |`);
    }
  }
  return out.join("\n") + "\n";
}

function main(): void {
  mkdirSync(dirname(REFERENCE_FILE), { recursive: true });
  writeFileSync(`${REFERENCE_FILE}.partial`, configurationReference());
  renameSync(`${REFERENCE_FILE}.partial`, REFERENCE_FILE);
  process.stdout.write(`wrote ${REFERENCE_FILE}\n`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
