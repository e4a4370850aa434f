import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { ROLES, SITE_NAMES, type Role, type SiteName, type Sites } from "../../inventory/index.js";
import { asArray, asRecord, closest, show, type Problem } from "../../inventory/problems.js";
import { parseYamlSource, readYamlFile, type DataPath, type YamlSource } from "../../inventory/yaml-source.js";
import { InputError, errorMessage } from "../../util/errors.js";
import { repoRoot } from "../../util/tools.js";
import { MAX_DURATION_TEXT, parseDuration } from "./duration.js";
import { RUNBOOK_KINDS, STEP_TYPES, leavesProduction, type Runbook, type RunbookKind, type Step, type StepGroup, type StepType, type TargetSelector } from "./model.js";
import { DISRUPTIVE_TYPES, stepModules } from "./steps/index.js";
import { resolveTargets, selectorText } from "./targets.js";

/**
 * Reads a runbook YAML file and checks it against the step types and the inventory. Every problem is reported at
 * once as `file:line: message` (InputError, exit 2), the way the inventory loader does it, with the same helpers.
 */

/** The folder of the shipped runbooks. */
export const runbooksDir = join(repoRoot, "runbooks");

/** A runbook reference: a name under runbooks/ ("drill") or a path to a YAML file. */
export function runbookPath(ref: string): string {
  if (ref.includes("/") || /\.ya?ml$/.test(ref)) return resolve(ref);
  return join(runbooksDir, `${ref}.yaml`);
}

const DEFAULT_TIMEOUT_MS = 10 * 60_000;
const TOP_KEYS = ["name", "kind", "description", "to", "scope", "parallel", "groups"];
const GROUP_KEYS = ["name", "steps"];
const STEP_KEYS = ["id", "type", "targets", "dependsOn", "timeout", "retries", "service", "idempotent", "cleanup", "with"];
const TARGET_KEYS = ["site", "role", "drTier", "hosts", "services"];

class Checker {
  readonly problems: Problem[] = [];
  add(path: DataPath, message: string): void {
    this.problems.push({ path, message });
  }
  unknownKeys(obj: Record<string, unknown>, known: string[], path: DataPath, what: string): void {
    for (const key of Object.keys(obj)) {
      if (known.includes(key)) continue;
      const hint = closest(key, known);
      this.add([...path, key], `${what}: unknown field "${key}"${hint ? ` (did you mean "${hint}"?)` : ""}`);
    }
  }
}

function isStringList(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === "string");
}

function readTargets(c: Checker, raw: unknown, path: DataPath, label: string): TargetSelector | undefined {
  if (raw === undefined) return undefined;
  const t = asRecord(raw);
  if (!t) {
    c.add(path, `${label}: targets must be a mapping of site, role, drTier, hosts, services`);
    return undefined;
  }
  c.unknownKeys(t, TARGET_KEYS, path, label);
  const out: TargetSelector = {};
  if (t.site !== undefined) {
    if ((SITE_NAMES as readonly unknown[]).includes(t.site)) out.site = t.site as SiteName;
    else c.add([...path, "site"], `${label}: targets.site must be ${SITE_NAMES.join(" or ")}, not ${show(t.site)}`);
  }
  if (t.role !== undefined) {
    if ((ROLES as readonly unknown[]).includes(t.role)) out.role = t.role as Role;
    else c.add([...path, "role"], `${label}: targets.role must be one of ${ROLES.join(", ")}, not ${show(t.role)}`);
  }
  if (t.drTier !== undefined) {
    if (typeof t.drTier === "number" && Number.isInteger(t.drTier)) out.drTier = t.drTier;
    else c.add([...path, "drTier"], `${label}: targets.drTier must be a tier number, not ${show(t.drTier)}`);
  }
  for (const key of ["hosts", "services"] as const) {
    const v = t[key];
    if (v === undefined) continue;
    if (isStringList(v) && v.length) out[key] = v;
    else c.add([...path, key], `${label}: targets.${key} must be a list of names, not ${show(v)}`);
  }
  return out;
}

interface RawStep {
  step: Step;
  path: DataPath;
  groupIndex: number;
}

function readStep(c: Checker, raw: unknown, path: DataPath, kind: RunbookKind | undefined, where: string): Step | undefined {
  const s = asRecord(raw);
  if (!s) {
    c.add(path, "a step must be a mapping with id and type");
    return undefined;
  }
  const id = typeof s.id === "string" && /^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(s.id) ? s.id : undefined;
  if (!id) c.add([...path, "id"], `step: id must be a name of letters, digits, -, _ or . (got ${show(s.id)})`);
  const label = `step "${id ?? "?"}"`;
  c.unknownKeys(s, STEP_KEYS, path, label);

  let type: StepType | undefined;
  if ((STEP_TYPES as readonly unknown[]).includes(s.type)) type = s.type as StepType;
  else {
    const hint = typeof s.type === "string" ? closest(s.type, STEP_TYPES) : undefined;
    c.add([...path, "type"], `${label}: unknown step type ${show(s.type)}${hint ? ` (did you mean "${hint}"?)` : ""}; known types: ${STEP_TYPES.join(", ")}`);
  }

  const targets = readTargets(c, s.targets, [...path, "targets"], label);
  let dependsOn: string[] = [];
  if (s.dependsOn !== undefined) {
    if (isStringList(s.dependsOn)) dependsOn = s.dependsOn;
    else if (typeof s.dependsOn === "string") dependsOn = [s.dependsOn];
    else c.add([...path, "dependsOn"], `${label}: dependsOn must be a list of step ids, not ${show(s.dependsOn)}`);
  }
  let timeoutMs = DEFAULT_TIMEOUT_MS;
  if (s.timeout !== undefined) {
    const ms = parseDuration(s.timeout);
    if (ms === undefined) c.add([...path, "timeout"], `${label}: bad timeout ${show(s.timeout)}: write a positive duration such as 30s, 5m, 1h30m, at most ${MAX_DURATION_TEXT}`);
    else timeoutMs = ms;
  }
  let retries = 0;
  if (s.retries !== undefined) {
    if (typeof s.retries === "number" && Number.isInteger(s.retries) && s.retries >= 0 && s.retries <= 10) retries = s.retries;
    else c.add([...path, "retries"], `${label}: retries must be a whole number from 0 to 10, not ${show(s.retries)}`);
  }
  if (s.service !== undefined && typeof s.service !== "string") c.add([...path, "service"], `${label}: service must be a name`);
  if (s.idempotent !== undefined && (typeof s.idempotent !== "boolean" || type !== "command")) {
    c.add([...path, "idempotent"], `${label}: idempotent (true/false) is for command steps only; other types know whether they are`);
  }
  let cleanup: Step["cleanup"];
  if (s.cleanup !== undefined) {
    const argv = asRecord(s.cleanup)?.argv;
    if (kind !== undefined && !leavesProduction(kind)) c.add([...path, "cleanup"], `${label}: cleanup is for drill and recover runbooks (a ${kind} is not undone)`);
    else if (!isStringList(argv) || argv.length === 0) c.add([...path, "cleanup"], `${label}: cleanup must be { argv: [command, args...] }`);
    else cleanup = { argv };
  }
  const withRaw = s.with === undefined ? {} : asRecord(s.with);
  if (!withRaw) c.add([...path, "with"], `${label}: with must be a mapping of the step type's parameters`);

  if (type && kind && leavesProduction(kind) && DISRUPTIVE_TYPES.includes(type)) {
    c.add([...path, "type"], `${label}: a ${kind} must not ${type === "dns" ? "switch DNS names" : type === "fence" ? "fence the primary" : type === "reprotect" ? "rebuild a replica (reprotect)" : "promote a standby"} (${kind === "drill" ? "drills are non-disruptive" : "a recover brings data back beside production"})`);
  }
  if (type && withRaw && kind) {
    for (const p of stepModules[type].check(withRaw, kind)) c.add([...path, ...p.path], `${label}: ${p.message}`);
  }
  if (!id || !type || !withRaw) return undefined;
  const step: Step = { id, type, dependsOn, timeoutMs, retries, with: withRaw, where };
  if (targets) step.targets = targets;
  if (typeof s.service === "string") step.service = s.service;
  if (typeof s.idempotent === "boolean") step.idempotent = s.idempotent;
  if (cleanup) step.cleanup = cleanup;
  return step;
}

/** Finds one dependency cycle, as the list of ids around it (first id repeated at the end). */
function findCycle(steps: Step[]): string[] | undefined {
  const byId = new Map(steps.map((s) => [s.id, s]));
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (id: string): string[] | undefined => {
    if (state.get(id) === "done") return undefined;
    if (state.get(id) === "open") return [...stack.slice(stack.indexOf(id)), id];
    state.set(id, "open");
    stack.push(id);
    for (const dep of byId.get(id)?.dependsOn ?? []) {
      if (!byId.has(dep)) continue;
      const cycle = visit(dep);
      if (cycle) return cycle;
    }
    stack.pop();
    state.set(id, "done");
    return undefined;
  };
  for (const s of steps) {
    const cycle = visit(s.id);
    if (cycle) return cycle;
  }
  return undefined;
}

function checkRunbook(source: YamlSource, sites: Sites): { runbook?: Runbook; problems: Problem[] } {
  const c = new Checker();
  const top = asRecord(source.data);
  if (!top) return { problems: [{ path: [], message: "a runbook must be a mapping with name, kind, to and groups" }] };
  c.unknownKeys(top, TOP_KEYS, [], "runbook");
  const name = typeof top.name === "string" && top.name ? top.name : undefined;
  if (!name) c.add(["name"], "runbook: name is required");
  const kind = (RUNBOOK_KINDS as readonly unknown[]).includes(top.kind) ? (top.kind as RunbookKind) : undefined;
  if (!kind) c.add(["kind"], `runbook: kind must be one of ${RUNBOOK_KINDS.join(", ")}, not ${show(top.kind)}`);
  const to = (SITE_NAMES as readonly unknown[]).includes(top.to) ? (top.to as SiteName) : undefined;
  if (!to) c.add(["to"], `runbook: to must be ${SITE_NAMES.join(" or ")} (the site that takes over), not ${show(top.to)}`);
  let parallel = 4;
  if (top.parallel !== undefined) {
    if (typeof top.parallel === "number" && Number.isInteger(top.parallel) && top.parallel >= 1) parallel = top.parallel;
    else c.add(["parallel"], `runbook: parallel must be a whole number ≥ 1, not ${show(top.parallel)}`);
  }
  if (top.scope !== undefined && (typeof top.scope !== "string" || !/^[A-Za-z0-9_.:-]+$/.test(top.scope))) c.add(["scope"], "runbook: scope must be a name (letters, digits, _ . : -)");

  const groups: StepGroup[] = [];
  const raws: RawStep[] = [];
  const rawGroups = asArray(top.groups);
  if (!Array.isArray(top.groups) || rawGroups.length === 0) c.add(["groups"], "runbook: groups must be a non-empty list of { name, steps }");
  rawGroups.forEach((g, gi) => {
    const gr = asRecord(g);
    if (!gr) {
      c.add(["groups", gi], `groups[${gi}] must be a mapping with name and steps`);
      return;
    }
    const gname = typeof gr.name === "string" ? gr.name : `group ${gi + 1}`;
    c.unknownKeys(gr, GROUP_KEYS, ["groups", gi], `group "${gname}"`);
    if (!Array.isArray(gr.steps) || gr.steps.length === 0) c.add(["groups", gi, "steps"], `group "${gname}": steps must be a non-empty list`);
    const steps: Step[] = [];
    asArray(gr.steps).forEach((s, si) => {
      const path = ["groups", gi, "steps", si];
      const step = readStep(c, s, path, kind, `${source.displayPath}:${source.lineOf(path)}`);
      if (step) {
        steps.push(step);
        raws.push({ step, path, groupIndex: gi });
      }
    });
    groups.push({ name: gname, steps });
  });

  // Ids, dependencies and targets, across the whole runbook.
  const groupOf = new Map<string, number>();
  for (const r of raws) {
    if (groupOf.has(r.step.id)) c.add([...r.path, "id"], `step "${r.step.id}": the id is used by an earlier step`);
    else groupOf.set(r.step.id, r.groupIndex);
  }
  for (const r of raws) {
    r.step.dependsOn.forEach((dep, i) => {
      const depPath = Array.isArray(asRecord(valueAtPath(top, r.path))?.dependsOn) ? [...r.path, "dependsOn", i] : [...r.path, "dependsOn"];
      const g = groupOf.get(dep);
      if (g === undefined) {
        const hint = closest(dep, [...groupOf.keys()]);
        c.add(depPath, `step "${r.step.id}": dependsOn names no step "${dep}"${hint ? ` (did you mean "${hint}"?)` : ""}`);
      } else if (g > r.groupIndex) {
        c.add(depPath, `step "${r.step.id}": depends on "${dep}", which is in a later priority group`);
      }
    });
    const t = r.step.targets;
    if (t) {
      const hosts = resolveTargets(sites, t);
      const missing = (t.hosts ?? []).filter((name) => !resolveTargets(sites, { hosts: [name] }).length);
      for (const name of missing) c.add([...r.path, "targets", "hosts"], `step "${r.step.id}": no host "${name}" in the inventory`);
      if (hosts.length === 0 && missing.length === 0) c.add([...r.path, "targets"], `step "${r.step.id}": targets (${selectorText(t)}) match no host in the inventory`);
      if (kind && leavesProduction(kind) && r.step.type !== "precheck" && !DISRUPTIVE_TYPES.includes(r.step.type) && hosts.some((h) => h.site === "primary")) {
        c.add([...r.path, "targets"], `step "${r.step.id}": a ${kind} must not touch the primary site (only precheck may read about it); target the secondary`);
      }
    }
  }
  const cycle = findCycle(raws.map((r) => r.step));
  if (cycle) {
    const first = raws.find((r) => r.step.id === cycle[0]);
    c.add(first ? [...first.path, "dependsOn"] : [], `dependency cycle: ${cycle.join(" → ")}`);
  }

  if (c.problems.length || !name || !kind || !to) return { problems: c.problems };
  const scope = typeof top.scope === "string" ? top.scope : `site-${to}`;
  return {
    runbook: { name, kind, description: typeof top.description === "string" ? top.description : "", to, scope, parallel, groups, file: source.displayPath },
    problems: [],
  };
}

function valueAtPath(data: unknown, path: DataPath): unknown {
  let node = data;
  for (const key of path) node = Array.isArray(node) && typeof key === "number" ? node[key] : asRecord(node)?.[String(key)];
  return node;
}

/** Parses and checks runbook text; `file` is used for messages only. */
export function parseRunbook(file: string, text: string, sites: Sites): Runbook {
  const source = parseYamlSource(file, text);
  if (source.syntaxProblems.length) throw new InputError(source.syntaxProblems);
  if (source.data === undefined || source.data === null) throw new InputError([source.problem([], "the runbook is empty")]);
  const { runbook, problems } = checkRunbook(source, sites);
  if (!runbook) {
    const lines = problems
      .map((p, order) => ({ line: source.lineOf(p.path), order, text: source.problem(p.path, p.message) }))
      .sort((a, b) => a.line - b.line || a.order - b.order)
      .map((p) => p.text);
    throw new InputError([...new Set(lines)]);
  }
  return runbook;
}

/** Loads a runbook by name or path, with its text (kept in the run folder so that a resume runs what was started). */
export function loadRunbook(ref: string, sites: Sites): { runbook: Runbook; text: string; path: string } {
  const path = runbookPath(ref);
  let text: string;
  try {
    text = readYamlFile(path);
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === "ENOENT";
    const known = missing && existsSync(runbooksDir) ? " (a name under runbooks/ or a path to a YAML file)" : "";
    throw new InputError([`runbook ${ref}: cannot read ${path}: ${missing ? "no such file" : errorMessage(err)}${known}`]);
  }
  return { runbook: parseRunbook(path, text, sites), text, path };
}

/**
 * The part of a runbook that concerns one service (`dcctl dr recover --service`): the steps labelled with it and those
 * labelled with none (report, notify), with dependencies on the others dropped and groups left empty left out.
 */
export function forService(runbook: Runbook, service: string, flag = "--service"): Runbook {
  const labels = [...new Set(runbook.groups.flatMap((g) => g.steps.flatMap((s) => (s.service === undefined ? [] : [s.service]))))];
  if (!labels.includes(service)) throw new InputError([`${flag} ${service}: runbook ${runbook.name} (${runbook.file}) has no step for it (its services: ${labels.join(", ") || "none"})`]);
  const kept = (s: Step) => s.service === undefined || s.service === service;
  const ids = new Set(runbook.groups.flatMap((g) => g.steps.filter(kept).map((s) => s.id)));
  const groups = runbook.groups
    .map((g) => ({ name: g.name, steps: g.steps.filter(kept).map((s) => ({ ...s, dependsOn: s.dependsOn.filter((d) => ids.has(d)) })) }))
    .filter((g) => g.steps.length > 0);
  return { ...runbook, groups };
}

/** The runbook a run ran: its kept text, narrowed to the service its start names, if any. */
export function runbookOfRun(file: string, text: string, sites: Sites, start: { service?: string }): Runbook {
  const runbook = parseRunbook(file, text, sites);
  return start.service === undefined ? runbook : forService(runbook, start.service);
}
