import { MAX_DURATION_TEXT, parseDuration } from "../../util/duration.js";

/**
 * Four eyes on destructive actions at a site: the `approval:` section of the repositories file
 * (backup/repositories.ts). Absent, or `required: false`: the actions run on one operator's word (--yes or a typed
 * confirmation), as before. With `required: true` each gated action (backup/approval/gate.ts) also needs a second
 * operator's approval of exactly that action; see docs/operator/approvals.md.
 */
export interface ApprovalSettings {
  required: boolean;
  /** How long a request waits for its approval, and an approval for its use. */
  ttlMs: number;
  /** The folder of requests and approvals, shared by the operators' group (store.ts checks its mode). */
  dir: string;
  /** Only these may approve, when given; otherwise any operator other than the requester. */
  approvers?: string[];
}

export interface RawApproval {
  required?: boolean;
  ttl?: string | number;
  dir?: string;
  approvers?: string[];
}

export const DEFAULT_TTL = "30m";

/** An operator's name as the OS knows it: what POSIX allows in a portable user name. */
const USER_NAME = "^[A-Za-z0-9_][A-Za-z0-9_.-]*[$]?$";

export const APPROVAL_SCHEMA = {
  type: "object",
  additionalProperties: false,
  description: "Four eyes on destructive actions (failover, failback, their resume, unlock --remove-all, a restore over an existing database): a second operator approves each (docs/operator/approvals.md).",
  properties: {
    required: { type: "boolean", default: false, description: "Whether the gated actions need a second operator's approval at this site." },
    ttl: { type: ["string", "number"], default: DEFAULT_TTL, description: "How long a request waits for its approval, and an approval for its use: a duration (90s, 30m, 2h) or seconds." },
    dir: { type: "string", minLength: 1, description: "The folder of requests and approvals, shared by the operators' group, mode 3770 (default <stateDir>/approvals)." },
    approvers: { type: "array", minItems: 1, uniqueItems: true, items: { type: "string", pattern: USER_NAME }, description: "The OS users who may approve (default: any operator but the one who asked)." },
  },
} as const;

/** The section with its defaults, or the problems of its values (each with its path, for a file:line). */
export function approvalSettings(raw: RawApproval | undefined, defaultDir: string, abs: (p: string) => string): { value?: ApprovalSettings; problems: { path: string[]; message: string }[] } {
  if (raw === undefined) return { problems: [] };
  const ttlMs = parseDuration(raw.ttl ?? DEFAULT_TTL);
  if (ttlMs === undefined) return { problems: [{ path: ["approval", "ttl"], message: `approval.ttl: "${String(raw.ttl)}" is not a duration (e.g. 90s, 30m, 2h; at most ${MAX_DURATION_TEXT})` }] };
  return {
    value: { required: raw.required ?? false, ttlMs, dir: raw.dir ? abs(raw.dir) : defaultDir, ...(raw.approvers ? { approvers: [...raw.approvers] } : {}) },
    problems: [],
  };
}
