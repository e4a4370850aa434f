import type { SiteName } from "../../inventory/index.js";
import type { Lang } from "../../util/i18n.js";
import type { FailureFrom } from "./failure.js";
import type { MissedTarget } from "./journal.js";
import type { Measurement } from "./measure.js";
import type { CheckOutcome } from "./steps/verify.js";
import type { PointInTimeRecovered, RecoveredHost, RestoredDatabase } from "./steps/types.js";
import type { ApprovalRecord } from "../../backup/approval/request.js";

/*
 * What a DR run's report holds, as types only: the report's builder (report.ts), its renderers (report-doc.ts,
 * report-html.ts, report-texts.ts) and the end-of-run notice (steps/notify.ts) all read it, and none of them needs
 * the others to know its shape.
 */

/**
 * report.json: everything report.md and report.html say, for machines, in no language (report.md and report.html are
 * rendered from it, in the run's language). Built from the journal only (with the runbook and inventory copies kept
 * beside it), so that `dcctl dr verify-report` can rebuild it byte for byte.
 */
export interface RunReport {
  /** 2: with journalHead, evidence and the run's language. Reports without it were written before dcctl 0.2.0. */
  format: 2;
  runId: string;
  runbook: string;
  kind: string;
  to: string;
  file: string;
  operator: string;
  confirmedBy: string;
  /** The second operator's approval of the run (four eyes), as the run-start record holds it. */
  approval?: ApprovalRecord;
  host: string;
  startedAt: string;
  /** The moment RPO is counted from (failure.ts). */
  failedAt: string;
  /** Where failedAt comes from, and the host whose probe went unanswered; absent for runs before it was recorded. */
  failure?: { from: FailureFrom; host?: string };
  endedAt?: string;
  /** missed: every step ended well, but an RPO or RTO target was missed (targetsMissed). */
  status: "ok" | "failed" | "interrupted" | "missed";
  /** The targets a run that ended well missed, as its run-end record lists them. */
  targetsMissed?: MissedTarget[];
  message?: string;
  /** The language report.md and report.html are written in (the run-start record's). */
  lang: Lang;
  /** A planned switchover: when the fence stopped the writes, and for how long until service was verified again. */
  planned?: { writesStoppedAt?: string; writesStoppedMs?: number };
  resumes: number;
  /** Who resumed the run, when, and how it was confirmed. */
  resumedBy: { at: string; operator: string; confirmedBy: string; approval?: ApprovalRecord }[];
  steps: StepReport[];
  checks: (CheckOutcome & { step: string })[];
  restored: RestoredDatabase[];
  /** How each standby came up (promote steps): promoted replica or restored from the repository, and why. */
  recovered: RecoveredHost[];
  measurements: { overall: Measurement; services: Measurement[] };
  /** Servers recovered from a point-in-time archive (restore-pitr steps that ended well): the point asked and reached. */
  pointInTime?: PointInTimeReport[];
  cleanup: { step: string; status: string; notes: string[]; message?: string }[];
  /** The deviations from the plan, in English (report.md and report.html say them in the run's language). */
  deviations: string[];
  /** Notes of the engine about the run as a whole (a lock taken over), as the journal has them. */
  runNotes: string[];
  /** Drills: steps whose targets include a primary host (precheck only reads the repository about them). */
  primaryTouchedBy?: string[];
  /** What this run shows for the controls of ISO/IEC 27001:2022 an auditor asks about. */
  evidence: Evidence;
  journal: string;
  /** How many journal records the report was built from. */
  journalRecords: number;
  /** The last of them: its seq and chain hash. Absent when the journal is not chained (written before dcctl 0.2.0). */
  journalHead?: { seq: number; hash: string };
  /** sha256 of the runbook copy and of the inventory the run planned with, as the journal recorded them. */
  runbookSha256?: string;
  inventorySha256?: string;
}

export interface StepReport {
  id: string;
  type: string;
  group: string;
  service?: string;
  hosts: string[];
  status: "ok" | "failed" | "skipped" | "cut-off" | "not run";
  attempts: number;
  startedAt?: string;
  endedAt?: string;
  durationMs?: number;
  notes: string[];
  message?: string;
  /** An operator's (or the resume rule's) answer about the step after a crash. */
  decision?: { decision: "rerun" | "skip"; reason: string; by: string };
}

/** A point-in-time recovery as the report shows it: the gap judged against the RPO of the source host's tier. */
export type PointInTimeReport = PointInTimeRecovered & { step: string; service?: string; tier?: number; rpoTargetMinutes?: number; rpoMet?: boolean };

/** A snapshot restored by a step that ended well, with the repository it came from. */
export type RestoredSnapshot = RestoredDatabase & { step: string; repository: string; at: string };

/**
 * Facts of the journal for ISO/IEC 27001:2022, language-neutral. Each part holds only what the journal proves; the
 * report says "not shown by this run" for whatever is missing.
 */
export interface Evidence {
  standard: "ISO/IEC 27001:2022";
  /** A.5.30 ICT readiness for business continuity: RPO/RTO against targets, deviations, who ran and confirmed it. */
  continuity: {
    control: "A.5.30";
    /** Targets compared (service × RPO/RTO) and the ones missed. */
    targetsCompared: number;
    targetsMissed: { service: string; measure: "RPO" | "RTO" }[];
    deviations: number;
  };
  /** A.8.13 Information backup: the snapshots used, the repositories read, the sites they are at, a drill's restore test. */
  backup: {
    control: "A.8.13";
    restored: RestoredSnapshot[];
    prechecked: { step: string; repository: string; at: string; stale: boolean }[];
    /** Sites whose backup copies this run read: both, or which one. */
    sites: SiteName[];
    restoreTest?: { at: string; result: "ok" | "failed"; checksPassed: number; checksTotal: number };
  };
  /** A.8.14 Redundancy: standbys that took over (see `recovered`) and checks that passed at the site that took over. */
  redundancy: {
    control: "A.8.14";
    promoted: number;
    served?: { site: SiteName; hosts: string[]; steps: string[]; checks: number; at: string };
  };
}

/** A deviation from the plan: a text key of report-texts.ts and its values, so it can be said in either language. */
export interface Deviation {
  key: string;
  vars: Record<string, string | number>;
}

