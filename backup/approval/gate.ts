import { hostname } from "node:os";
import { DcctlError, InputError } from "../../util/errors.js";
import type { ApprovalSettings } from "./config.js";
import { currentOperator, type OperatorIdentity } from "./identity.js";
import { differences, newCode, normalCode, type ApprovalGrant, type ApprovalRecord, type ApprovalRequest, type ApprovalUse, type GatedAction } from "./request.js";
import { ApprovalStore, authorOf, type Owned } from "./store.js";
import { ApprovalRequiredError, type RefusalReason } from "./refusal.js";

/**
 * Four eyes: the one call a destructive action makes before it acts (requireApproval), the second operator's
 * approval (approveRequest) and the list of requests (listApprovals). See docs/operator/approvals.md.
 */

/** A clock a process of the same host may be ahead of by this much (a file written "in the future" past it is refused). */
const SKEW_MS = 60_000;

export interface GateOptions {
  /** The code the operator gave (--approval): the approved request this run claims to be. */
  code?: string;
  /** The command line after `dcctl`, for the request's "run again" command. */
  argv: readonly string[];
  now?: Date;
  env?: NodeJS.ProcessEnv;
}

/** What the folder holds for one code, judged now. */
export interface Inspection {
  code: string;
  request: ApprovalRequest;
  /** sha256 of the request file: what an approval covers. */
  requestSha256: string;
  /** The requester, as the request file's owner proves. */
  requestedBy: string;
  approval?: ApprovalGrant & { by: string };
  use?: ApprovalUse & { by: string };
  /** waiting: for an approval; approved: and not used yet; refused: a file in it is forged or does not match. */
  status: "waiting" | "approved" | "used" | "expired" | "refused";
  /** When it stops being usable (waiting: approvable; approved: usable). */
  expiresAt?: string;
  /** Why it is refused or expired, one line, and as a word. */
  problem?: string;
  reason?: RefusalReason;
}

function settingsOf(config: { approval?: ApprovalSettings }): ApprovalSettings | undefined {
  return config.approval?.required ? config.approval : undefined;
}

/**
 * The gate. Call it right before the destructive action, after the action's own confirmation (--yes or typed):
 * approval comes in addition to it, not instead. Returns undefined where the site does not require approvals, else the
 * record of the approval this run has now used (for the journal, the output and the SOC feed). Throws (exit 8)
 * otherwise: without a code, after writing a request (or finding this operator's own for exactly this action); with a
 * code that is not a valid approval of exactly this action for this operator, saying why.
 */
export function requireApproval(config: { approval?: ApprovalSettings }, action: GatedAction, opts: GateOptions): ApprovalRecord | undefined {
  const settings = settingsOf(config);
  if (!settings) return undefined;
  const now = opts.now ?? new Date();
  const me = currentOperator(opts.env);
  const store = ApprovalStore.open(settings.dir);
  if (opts.code === undefined) return request(store, settings, action, me, opts.argv, now);
  const code = normalCode(opts.code);
  if (!code) throw new InputError([`dcctl: --approval ${opts.code}: not an approval code (6 letters and digits, as the request printed it)`]);
  const seen = inspect(store, settings, code, now);
  if (!seen) throw new InputError([`dcctl: --approval ${code}: no such request in ${settings.dir} (see dcctl approvals)`]);
  if (seen.requestedBy !== me.name) throw new ApprovalRequiredError(`approval ${code} was asked for by ${seen.requestedBy}: only they can use it; ask for your own (run the command without --approval)`, "not-requester");
  const diff = differences(seen.request, action);
  if (diff.length) throw new ApprovalRequiredError(`approval ${code} is not for this: ${diff.join("; ")}; run the command without --approval to ask for this one`, "mismatch");
  if (seen.status === "refused" || seen.status === "expired") throw new ApprovalRequiredError(`approval ${code}: ${seen.problem ?? seen.status}; run the command without --approval to ask again`, seen.reason ?? "expired");
  if (seen.status === "used") throw new ApprovalRequiredError(`approval ${code} was already used by ${seen.use?.by ?? "?"} at ${seen.use?.usedAt ?? "?"}: an approval is good for one run; run the command without --approval to ask again`, "used");
  if (seen.status === "waiting" || !seen.approval) throw new ApprovalRequiredError(`request ${code} is not approved yet (waiting since ${seen.request.requestedAt}, until ${seen.expiresAt ?? "?"}): another operator runs dcctl approve ${code}`, "pending", seen.request);
  const use: ApprovalUse = { format: 1, code, usedBy: me.name, usedAt: now.toISOString(), host: hostname(), pid: process.pid };
  // The use is recorded before the action starts, and only once: of two runs with one approval, one gets it.
  if (!store.create(code, "used", use)) throw new ApprovalRequiredError(`approval ${code} was used by another run a moment ago: an approval is good for one run`, "used");
  return {
    code,
    action: seen.request.action,
    site: seen.request.site,
    target: seen.request.target,
    args: seen.request.args,
    requestedBy: seen.requestedBy,
    requestedAt: seen.request.requestedAt,
    approvedBy: seen.approval.by,
    approvedAt: seen.approval.approvedAt,
    usedAt: use.usedAt,
  };
}

/** Without a code: this operator's waiting request for exactly this action, else a new one; the run stops either way. */
function request(store: ApprovalStore, settings: ApprovalSettings, action: GatedAction, me: OperatorIdentity, argv: readonly string[], now: Date): never {
  for (const code of store.codes()) {
    const seen = safeInspect(store, settings, code, now);
    if (!seen || (seen.status !== "waiting" && seen.status !== "approved") || seen.requestedBy !== me.name || differences(seen.request, action).length) continue;
    if (seen.status === "approved") throw new ApprovalRequiredError(`request ${code} for exactly this was approved by ${seen.approval?.by ?? "?"} at ${seen.approval?.approvedAt ?? "?"}: run it again with --approval ${code}`, "pending", seen.request);
    if (seen.status === "waiting") throw new ApprovalRequiredError(`request ${code} for exactly this is waiting for another operator since ${seen.request.requestedAt}: dcctl approve ${code}`, "pending", seen.request);
  }
  const command = ["dcctl", ...withoutApproval(argv)];
  for (let attempt = 0; attempt < 5; attempt++) {
    const code = newCode();
    const req: ApprovalRequest = { format: 1, code, ...action, requestedBy: me.name, requestedAt: now.toISOString(), host: hostname(), command: [...command, "--approval", code] };
    if (store.create(code, "request", req)) {
      const until = new Date(now.getTime() + settings.ttlMs).toISOString();
      throw new ApprovalRequiredError(`approval required: request ${code} (${action.action}, ${action.target}) waits for another operator until ${until}: dcctl approve ${code}, then run again with --approval ${code}`, "requested", req, true);
    }
  }
  throw new DcctlError(`could not find a free request code in ${store.dir}`);
}

/** The command line without a --approval given to it (the request adds its own). */
function withoutApproval(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? "";
    if (a === "--approval") i++;
    else if (!a.startsWith("--approval=")) out.push(a);
  }
  return out;
}

export interface ApproveOptions {
  now?: Date;
  env?: NodeJS.ProcessEnv;
  /** Shows the request and asks (or takes --yes); throws to stop. Called after every check passed. */
  confirm: (seen: Inspection) => Promise<void>;
}

/** The second operator's approval of a request, checked as the gate will check it; returns what was approved. */
export async function approveRequest(config: { approval?: ApprovalSettings }, typed: string, opts: ApproveOptions): Promise<{ seen: Inspection; grant: ApprovalGrant }> {
  const settings = settingsOf(config);
  if (!settings) throw new DcctlError("this site does not require approvals (approval.required in the repositories file): nothing to approve");
  const code = normalCode(typed);
  if (!code) throw new InputError([`dcctl approve: ${typed}: not an approval code (6 letters and digits, as the request printed it)`]);
  const now = opts.now ?? new Date();
  const me = currentOperator(opts.env);
  const store = ApprovalStore.open(settings.dir, false);
  const seen = store && inspect(store, settings, code, now);
  if (!store || !seen) throw new InputError([`dcctl approve: no request ${code} in ${settings.dir} (see dcctl approvals)`]);
  if (seen.requestedBy === me.name) throw new ApprovalRequiredError(`request ${code} was made by you (${me.name}): another operator must approve it`, "self-approval");
  if (settings.approvers && !settings.approvers.includes(me.name)) throw new ApprovalRequiredError(`${me.name} is not one of the approvers of this site (approval.approvers: ${settings.approvers.join(", ")})`, "not-approver");
  if (seen.status === "refused" || seen.status === "expired") throw new ApprovalRequiredError(`request ${code}: ${seen.problem ?? seen.status}; the operator asks again`, seen.reason ?? "expired");
  if (seen.status === "approved" || seen.status === "used") throw new ApprovalRequiredError(`request ${code} is already approved by ${seen.approval?.by ?? "?"} at ${seen.approval?.approvedAt ?? "?"}`, "already-approved");
  await opts.confirm(seen);
  // The time of the answer, which may come minutes after the question.
  const at = opts.now ?? new Date();
  const grant: ApprovalGrant = { format: 1, code, requestSha256: requestDigest(store, code), approvedBy: me.name, approvedAt: at.toISOString(), host: hostname() };
  // Checked again as it was confirmed: the request may have changed, expired or been approved meanwhile.
  if (grant.requestSha256 !== seen.requestSha256) throw new ApprovalRequiredError(`request ${code} changed while you read it: refused; look at it again`, "changed");
  if (at.getTime() > Date.parse(seen.request.requestedAt) + settings.ttlMs) throw new ApprovalRequiredError(`request ${code} expired while you read it: the operator asks again`, "expired");
  if (!store.create(code, "approval", grant)) throw new ApprovalRequiredError(`request ${code} was approved by another operator a moment ago`, "already-approved");
  return { seen: { ...seen, status: "approved", approval: { ...grant, by: me.name }, expiresAt: new Date(at.getTime() + settings.ttlMs).toISOString() }, grant };
}

function requestDigest(store: ApprovalStore, code: string): string {
  const r = store.read<ApprovalRequest>(code, "request");
  if (!r) throw new ApprovalRequiredError(`request ${code} was removed`, "unreadable");
  return r.sha256;
}

/** Every request of the folder, judged now, newest first; `all`: also the used, expired and refused ones. */
export function listApprovals(config: { approval?: ApprovalSettings }, opts: { all?: boolean; now?: Date } = {}): Inspection[] {
  const settings = settingsOf(config);
  if (!settings) throw new DcctlError("this site does not require approvals (approval.required in the repositories file)");
  const store = ApprovalStore.open(settings.dir, false);
  if (!store) return [];
  const now = opts.now ?? new Date();
  const seen = store.codes().flatMap((code) => {
    const s = safeInspect(store, settings, code, now);
    return s ? [s] : [];
  });
  return seen.filter((s) => opts.all || s.status === "waiting" || s.status === "approved").sort((a, b) => String(b.request.requestedAt).localeCompare(String(a.request.requestedAt)));
}

/** inspect, with a file that cannot be read or is forged shown as refused (a list must not stop at one bad file). */
function safeInspect(store: ApprovalStore, settings: ApprovalSettings, code: string, now: Date): Inspection | undefined {
  try {
    return inspect(store, settings, code, now);
  } catch (e) {
    const raw = (() => {
      try {
        return store.read<ApprovalRequest>(code, "request")?.value;
      } catch {
        return undefined;
      }
    })();
    if (!raw || typeof raw !== "object") return undefined;
    return { code, request: raw, requestSha256: "", requestedBy: String(raw.requestedBy), status: "refused", reason: e instanceof ApprovalRequiredError ? e.reason : "unreadable", problem: e instanceof Error ? e.message : String(e) };
  }
}

/**
 * What the folder says about a code, each file believed only as far as its owner proves (store.ts: authorOf). Throws
 * when the request itself is unreadable or forged; a forged or mismatched approval or use makes it "refused".
 */
export function inspect(store: ApprovalStore, settings: ApprovalSettings, code: string, now: Date): Inspection | undefined {
  const req = store.read<ApprovalRequest>(code, "request");
  if (!req) return undefined;
  const r = req.value;
  if (r?.format !== 1 || r.code !== code || typeof r.requestedBy !== "string" || typeof r.requestedAt !== "string" || !r.args || typeof r.args !== "object") {
    throw new ApprovalRequiredError(`${store.path(code, "request")}: not a request of this dcctl; refused`, "unreadable");
  }
  const requestedBy = authorOf(req, r.requestedBy, `request ${code}`);
  const base = { code, request: r, requestSha256: req.sha256, requestedBy };
  const requestedAt = Date.parse(r.requestedAt);
  if (!Number.isFinite(requestedAt) || requestedAt > now.getTime() + SKEW_MS) return { ...base, status: "refused", reason: "forged", problem: `request ${code} says it was made at ${r.requestedAt}, which is not a time before now` };
  const grantFile = store.read<ApprovalGrant>(code, "approval");
  const useFile = store.read<ApprovalUse>(code, "used");
  const use = useFile ? { ...useFile.value, by: authorOf(useFile, String(useFile.value?.usedBy), `the use record of ${code}`) } : undefined;
  if (!grantFile) {
    const until = requestedAt + settings.ttlMs;
    if (now.getTime() > until) return { ...base, status: "expired", reason: "expired", expiresAt: new Date(until).toISOString(), problem: `request ${code} expired at ${new Date(until).toISOString()} without an approval (ttl ${ttlText(settings.ttlMs)})` };
    return { ...base, status: "waiting", expiresAt: new Date(until).toISOString(), ...(use ? { use } : {}) };
  }
  const g = grantFile.value;
  const approvedBy = authorOf(grantFile, String(g?.approvedBy), `the approval of ${code}`);
  const approval = { ...g, by: approvedBy };
  const withGrant = { ...base, approval, ...(use ? { use } : {}) };
  if (g.code !== code) return { ...withGrant, status: "refused", reason: "forged", problem: `the approval file of ${code} is for ${String(g.code)}` };
  if (approvedBy === requestedBy) return { ...withGrant, status: "refused", reason: "self-approval", problem: `request ${code} was approved by its own requester ${requestedBy}: four eyes need two people` };
  if (settings.approvers && !settings.approvers.includes(approvedBy)) return { ...withGrant, status: "refused", reason: "not-approver", problem: `${approvedBy}, who approved ${code}, is not one of approval.approvers (${settings.approvers.join(", ")})` };
  if (g.requestSha256 !== req.sha256) return { ...withGrant, status: "refused", reason: "changed", problem: `request ${code} was changed after ${approvedBy} approved it` };
  const approvedAt = Date.parse(g.approvedAt);
  if (!Number.isFinite(approvedAt) || approvedAt > now.getTime() + SKEW_MS || approvedAt < requestedAt - SKEW_MS) return { ...withGrant, status: "refused", reason: "forged", problem: `the approval of ${code} has a time (${String(g.approvedAt)}) outside the request's life` };
  if (approvedAt > requestedAt + settings.ttlMs) return { ...withGrant, status: "refused", reason: "expired", problem: `${code} was approved after the request had expired` };
  if (use) return { ...withGrant, status: "used" };
  const until = approvedAt + settings.ttlMs;
  if (now.getTime() > until) return { ...withGrant, status: "expired", reason: "expired", expiresAt: new Date(until).toISOString(), problem: `the approval of ${code} by ${approvedBy} expired at ${new Date(until).toISOString()} (ttl ${ttlText(settings.ttlMs)}), unused` };
  return { ...withGrant, status: "approved", expiresAt: new Date(until).toISOString() };
}

export function ttlText(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${Math.round(ms / 1000)}s`;
}

export type { Owned };

