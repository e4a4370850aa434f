import { randomInt } from "node:crypto";
import type { SiteName } from "../../inventory/index.js";

/**
 * What a request for approval names, and how a later command is matched against it. Pure: no files, no clock of its
 * own (the store and the gate bring both), so that the matching rules are tested on their own.
 */

export type ArgValue = string | number | boolean | string[] | null;

/** A destructive action as its command is about to do it: what is matched between the request and the run. */
export interface GatedAction {
  /** The command as operators name it: "dr failover", "dr resume", "backup unlock --remove-all", "restore --db". */
  action: string;
  /** The site whose repositories file gates it (the site this dcctl serves). */
  site: SiteName;
  /** What it acts on: "site secondary", "repository secondary", "database portal on qn-dr-db-01". */
  target: string;
  /**
   * Every argument that decides what changes, by name (a runbook's digest too: a runbook edited after the approval
   * is another action). Flags that only change how it is said (--json, --yes) are not among them.
   */
  args: Record<string, ArgValue>;
  /** What it will change, in the operator's words: shown to the approver, not matched (a lock list moves). */
  change: string;
}

export interface ApprovalRequest extends GatedAction {
  format: 1;
  code: string;
  /** The requester as the request's writer named itself; believed only as far as the file's owner allows (store.ts). */
  requestedBy: string;
  requestedAt: string;
  host: string;
  /** The command line to run again, with --approval CODE. */
  command: string[];
}

export interface ApprovalGrant {
  format: 1;
  code: string;
  /** sha256 of the request file as the approver read it: the approval covers those bytes and no others. */
  requestSha256: string;
  approvedBy: string;
  approvedAt: string;
  host: string;
}

export interface ApprovalUse {
  format: 1;
  code: string;
  usedBy: string;
  usedAt: string;
  host: string;
  pid: number;
}

/**
 * What a gated action that ran carries into its journal, op record and output, and what the SOC feed sends (who asked,
 * who approved, what, on what, when): one shape for every gated action.
 */
export interface ApprovalRecord {
  code: string;
  action: string;
  site: SiteName;
  target: string;
  args: Record<string, ArgValue>;
  requestedBy: string;
  requestedAt: string;
  approvedBy: string;
  approvedAt: string;
  usedAt: string;
}

/** Crockford's base32 without the letters read as digits (I, L, O) and U: a code read aloud over a phone survives. */
const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
export const CODE_LENGTH = 6;

export function newCode(): string {
  let code = "";
  for (let i = 0; i < CODE_LENGTH; i++) code += ALPHABET[randomInt(ALPHABET.length)];
  return code;
}

/** A code as an operator typed it (any case; O for 0, I and L for 1, as base32 reads them), or undefined. */
export function normalCode(typed: string): string | undefined {
  const code = typed.trim().toUpperCase().replace(/O/g, "0").replace(/[IL]/g, "1");
  return code.length === CODE_LENGTH && [...code].every((c) => ALPHABET.includes(c)) ? code : undefined;
}

/** JSON with keys in order at every level: the same arguments always read the same. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    return `{${entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/**
 * How `run` differs from what `request` asked for, one phrase per difference; none: it is exactly the approved action.
 * The action, the site, the target and every argument must be equal; the words of `change` are not compared.
 */
export function differences(request: GatedAction, run: GatedAction): string[] {
  const out: string[] = [];
  if (request.action !== run.action) out.push(`the action is ${run.action}, the approval is for ${request.action}`);
  if (request.site !== run.site) out.push(`the site is ${run.site}, the approval is for ${request.site}`);
  if (request.target !== run.target) out.push(`the target is ${run.target}, the approval is for ${request.target}`);
  const names = [...new Set([...Object.keys(request.args), ...Object.keys(run.args)])].sort();
  for (const name of names) {
    const want = request.args[name];
    const got = run.args[name];
    if (canonicalJson(want ?? null) !== canonicalJson(got ?? null)) out.push(`${name} is ${show(got)}, the approval is for ${show(want)}`);
  }
  return out;
}

function show(v: ArgValue | undefined): string {
  return v === undefined || v === null ? "(none)" : Array.isArray(v) ? `[${v.join(", ")}]` : String(v);
}

/** The arguments of a request in one line, for people: "to=secondary runbook=failover". */
export function argsText(args: Record<string, ArgValue>): string {
  return Object.entries(args)
    .filter(([, v]) => v !== null && v !== false && !(Array.isArray(v) && v.length === 0))
    .map(([k, v]) => (v === true ? k : `${k}=${show(v)}`))
    .join(" ");
}
