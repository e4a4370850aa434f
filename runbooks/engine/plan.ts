import type { Sites } from "../../inventory/index.js";
import { formatDuration } from "./duration.js";
import type { PlannedStep, Runbook } from "./model.js";
import { stepModules } from "./steps/index.js";
import { resolveTargets } from "./targets.js";

/** The runbook with every step's targets resolved to inventory hosts; pure: reads nothing, writes nothing. */
export function planRunbook(runbook: Runbook, sites: Sites): PlannedStep[] {
  return runbook.groups.flatMap((g) => g.steps.map((step) => ({ step, group: g.name, kind: runbook.kind, hosts: resolveTargets(sites, step.targets) })));
}

/** One step of `dcctl dr plan --json`. */
export interface PlanEntry {
  group: string;
  id: string;
  type: string;
  hosts: { name: string; site: string; ip: string }[];
  dependsOn: string[];
  timeoutMs: number;
  retries: number;
  idempotent: boolean;
  actions: string[];
  cleanup: string[];
}

/** Whether a step may be run again after a crash cut it off (the resume rule; see runbooks/engine/README.md). */
export function isIdempotent(p: PlannedStep): boolean {
  if (p.step.type === "command") return p.step.idempotent ?? false;
  return stepModules[p.step.type].idempotent(p.kind);
}

export function planEntries(planned: PlannedStep[]): PlanEntry[] {
  return planned.map((p) => {
    const m = stepModules[p.step.type];
    const cleanup: string[] = [];
    if (p.kind === "drill" && m.hasCleanup) cleanup.push(`undo what ${p.step.type} created`);
    if (p.step.cleanup) cleanup.push(`run \`${p.step.cleanup.argv.join(" ")}\` on ${p.hosts.map((h) => h.name).join(", ") || "the DR runner"}`);
    return {
      group: p.group,
      id: p.step.id,
      type: p.step.type,
      hosts: p.hosts.map((h) => ({ name: h.name, site: h.site, ip: h.ip })),
      dependsOn: p.step.dependsOn,
      timeoutMs: p.step.timeoutMs,
      retries: p.step.retries,
      idempotent: isIdempotent(p),
      actions: m.plan(p),
      cleanup,
    };
  });
}

/** The plan as an operator reads it: groups in order, each step with its hosts and what it would do. */
export function planText(runbook: Runbook, planned: PlannedStep[]): string[] {
  const lines = [`runbook ${runbook.name} (${runbook.kind} to ${runbook.to}) from ${runbook.file}`];
  if (runbook.description) lines.push(`  ${runbook.description}`);
  lines.push(`  lock scope ${runbook.scope}; up to ${runbook.parallel} independent steps at once`);
  let group = "";
  let n = 0;
  for (const e of planEntries(planned)) {
    if (e.group !== group) {
      group = e.group;
      lines.push("", `group ${group}:`);
    }
    n++;
    const deps = e.dependsOn.length ? `, after ${e.dependsOn.join(", ")}` : "";
    lines.push(`  ${n}. ${e.id} [${e.type}] timeout ${formatDuration(e.timeoutMs)}, ${e.retries} retr${e.retries === 1 ? "y" : "ies"}${deps}${e.idempotent ? "" : ", not idempotent"}`);
    lines.push(`     hosts: ${e.hosts.length ? e.hosts.map((h) => `${h.name} (${h.site} ${h.ip})`).join(", ") : "the DR runner"}`);
    for (const a of e.actions) lines.push(`     - ${a}`);
    for (const c of e.cleanup) lines.push(`     cleanup: ${c}`);
  }
  lines.push("", `${n} steps; nothing was changed (this is a plan).`);
  return lines;
}
