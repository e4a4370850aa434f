import type { Role, SiteHost, SiteName } from "../../inventory/index.js";

/**
 * The runbook model as the loader hands it out: a runbook is an ordered list of priority groups; each group's steps
 * may run in parallel once the steps they depend on have ended well. Field names are those of the YAML files.
 */

export const RUNBOOK_KINDS = ["drill", "failover", "failback", "recover"] as const;
/**
 * `drill`: non-disruptive test at the secondary; `failover`/`failback`: the real thing, confirmed by an operator;
 * `recover`: a service's databases brought back from the point-in-time archive to just before an attack, beside
 * production (`dcctl dr recover --before`), for the operator to inspect before anything of production changes.
 */
export type RunbookKind = (typeof RUNBOOK_KINDS)[number];

/**
 * Kinds that leave production as it is: their restores go into scratch databases, they address no primary host
 * (precheck only reads about one), and they take no step that fences, promotes, rebuilds or switches names.
 */
export function leavesProduction(kind: RunbookKind): boolean {
  return kind === "drill" || kind === "recover";
}

export const STEP_TYPES = ["precheck", "fence", "restore-db", "restore-pitr", "promote", "reprotect", "infra", "dns", "verify", "data-loss", "command", "notify", "report"] as const;
export type StepType = (typeof STEP_TYPES)[number];

/** Which inventory hosts a step addresses; every given field must match (hosts: any of the names). */
export interface TargetSelector {
  site?: SiteName;
  role?: Role;
  drTier?: number;
  hosts?: string[];
  /** A host matches when it runs any of these services. */
  services?: string[];
}

/** A command (argument vector) run on the step's targets after a drill, in addition to the type's own clean-up. */
export interface CleanupSpec {
  argv: string[];
}

export interface Step {
  id: string;
  type: StepType;
  /** Absent: the step runs on the DR runner itself (dns, notify, report, infra) or needs no host. */
  targets?: TargetSelector;
  dependsOn: string[];
  timeoutMs: number;
  /** Further attempts after a failed one (0: one attempt). */
  retries: number;
  /** A label for the report: RPO and RTO are measured per service. */
  service?: string;
  /** Only for `command`: may it safely run again after a crash cut it off? Default false. */
  idempotent?: boolean;
  cleanup?: CleanupSpec;
  /** The type's own parameters, checked by the step module. */
  with: Record<string, unknown>;
  /** Where the step is written, `file:line`, for messages. */
  where: string;
}

export interface StepGroup {
  name: string;
  steps: Step[];
}

export interface Runbook {
  name: string;
  kind: RunbookKind;
  description: string;
  /** The site this runbook moves service to (failover: secondary; failback: primary; drill: secondary). */
  to: SiteName;
  /** Lock scope: one run at a time per scope. Default `site:<to>`. */
  scope: string;
  /** How many independent steps of a group may run at once. */
  parallel: number;
  groups: StepGroup[];
  /** The file as shown in messages. */
  file: string;
}

/** A step with the inventory hosts its targets resolved to. */
export interface PlannedStep {
  step: Step;
  group: string;
  /** The kind of the runbook the step belongs to: some types act differently in drills. */
  kind: RunbookKind;
  hosts: SiteHost[];
}
