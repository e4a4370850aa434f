import type { Argv, CommandModule } from "yargs";
import { loadBackupConfig } from "../backup/repositories.js";
import { ApprovalRequiredError, approveRequest, argsText, listApprovals, requireApproval, type ApprovalRecord, type ApprovalRequest, type GatedAction, type Inspection } from "../backup/approval/index.js";
import { confirmAction } from "../util/confirm.js";
import { textTable } from "../util/table.js";
import { print, printJson } from "./print.js";
import { operatorLang } from "./lang.js";
import { emitEvent, failedOutcome, type EventFeed } from "../notify/event-feed.js";
import { errorMessage } from "../util/errors.js";

/**
 * `dcctl approve CODE` and `dcctl approvals`: the second operator's side of four eyes (backup/approval/), and the
 * gate the destructive commands call (`gate`), which prints a request as the operator needs to pass it on.
 */

/** A command line as a shell reads it back: a word that needs quoting is quoted. */
export function shellLine(argv: readonly string[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(" ");
}

/** The request in lines, for the operator who made it and the one who approves it. */
export function requestLines(r: ApprovalRequest): string[] {
  const args = argsText(r.args);
  return [
    `  action:    ${r.action}${args ? `  ${args}` : ""}`,
    `  target:    ${r.target}, at site ${r.site}`,
    `  changes:   ${r.change}`,
    `  asked by:  ${r.requestedBy} on ${r.host} at ${r.requestedAt}`,
  ];
}

/**
 * The gate as a command calls it (backup/approval/gate.ts: requireApproval), after the command's own confirmation.
 * Without a valid approval the request is printed (stdout; --json: as JSON) and the run stops with exit 8.
 */
export function gate(config: Parameters<typeof requireApproval>[0] & Partial<EventFeed>, action: GatedAction, args: { approval?: string; json?: boolean }): ApprovalRecord | undefined {
  try {
    const record = requireApproval(config, action, { ...(args.approval !== undefined ? { code: args.approval } : {}), argv: process.argv.slice(2) });
    if (!record && args.approval !== undefined) process.stderr.write("note: this site does not require approvals; --approval is not needed\n");
    return record;
  } catch (e) {
    tellGate(config, action, e);
    if (e instanceof ApprovalRequiredError && e.request) {
      const r = e.request;
      if (args.json) printJson({ approvalRequired: true, request: r });
      else if (args.approval === undefined) {
        print([`approval required: ${e.written ? "request" : "your request"} ${r.code}`, ...requestLines(r), `  approve:   dcctl approve ${r.code}   (another operator)`, `  then:      ${shellLine(r.command)}`].join("\n"));
      }
    }
    throw e;
  }
}

/** The feed of a config that has one (a test may hand the gate its approval settings alone). */
function feedOf(config: Partial<EventFeed>): EventFeed | undefined {
  return config.stateDir !== undefined && config.site !== undefined ? { stateDir: config.stateDir, site: config.site, ...(config.soc ? { soc: config.soc } : {}) } : undefined;
}

function requestData(r: ApprovalRequest | undefined, ttlMs: number | undefined): Record<string, string | undefined> {
  if (!r) return {};
  return { code: r.code, request: `${r.action}${argsText(r.args) ? ` ${argsText(r.args)}` : ""}`, requestedBy: r.requestedBy, expires: ttlMs === undefined ? undefined : new Date(Date.parse(r.requestedAt) + ttlMs).toISOString() };
}

/**
 * What the SOC hears of a gate that stopped an action (notify/events.ts): a request written now is DCCTL-3001; any
 * other stop (waiting, expired, not for this, used, forged) is DCCTL-3101 with the guard and its reason in a word.
 */
function tellGate(config: Parameters<typeof requireApproval>[0] & Partial<EventFeed>, action: GatedAction, e: unknown): void {
  if (!(e instanceof ApprovalRequiredError)) return;
  const feed = feedOf(config);
  const data = requestData(e.request, config.approval?.ttlMs);
  if (e.reason === "requested") {
    emitEvent(feed, "approval.requested", { target: action.target, outcome: "requested", message: `approval requested: ${action.action} on ${action.target}: ${errorMessage(e)}`, data: { ...data, change: action.change } });
    return;
  }
  emitEvent(feed, "action.refused", { target: action.target, outcome: "refused", message: `refused by four eyes (${e.reason}): ${action.action} on ${action.target}: ${errorMessage(e)}`, data: { ...data, command: action.action, guard: "four eyes", reason: e.reason } });
}

/** The line a gated action prints once it ran, naming both people. */
export function approvalLine(a: ApprovalRecord): string {
  return `approval ${a.code}: asked by ${a.requestedBy} at ${a.requestedAt}, approved by ${a.approvedBy} at ${a.approvedAt}`;
}

interface ApproveArgs {
  code: string;
  yes: boolean;
  json: boolean;
  lang?: string;
}

export const approveCommand: CommandModule<object, ApproveArgs> = {
  builder: (y: Argv<object>): Argv<ApproveArgs> =>
    y
      .positional("code", { type: "string", demandOption: true, describe: "the code the request printed" })
      .option("yes", { type: "boolean", default: false, describe: "do not ask" })
      .option("json", { type: "boolean", default: false }) as unknown as Argv<ApproveArgs>,
  handler: async (args) => {
    const config = loadBackupConfig();
    const lang = operatorLang(args.lang, config);
    let shown: Inspection | undefined;
    let seen: Inspection;
    try {
      ({ seen } = await approveRequest(config, String(args.code), {
        confirm: async (s) => {
          shown = s;
          if (!args.json) print([`request ${s.code}, waiting until ${s.expiresAt ?? "?"}:`, ...requestLines(s.request)].join("\n"));
          await confirmAction({ yes: args.yes, action: `approve request ${s.code} of ${s.requestedBy}: ${s.request.action} on ${s.request.target}`, expect: s.code, lang });
        },
      }));
    } catch (e) {
      // Refused: a self-approval, an expired request, one not this operator's to approve, or the approver said no.
      const reason = e instanceof ApprovalRequiredError ? e.reason : failedOutcome(e) === "refused" ? "declined" : undefined;
      if (reason) {
        const r = e instanceof ApprovalRequiredError ? (e.request ?? shown?.request) : shown?.request;
        emitEvent(config, "approval.refused", { target: r ? String(r.target) : String(args.code), outcome: "refused", message: `approval of ${String(args.code)} refused (${reason}): ${errorMessage(e)}`, data: { ...requestData(r, config.approval?.ttlMs), code: String(args.code), reason } });
      }
      throw e;
    }
    emitEvent(config, "approval.granted", {
      target: String(seen.request.target),
      outcome: "granted",
      ...(seen.approval?.by ? { approver: seen.approval.by } : {}),
      message: `approval ${seen.code} granted by ${seen.approval?.by ?? "?"}: ${String(seen.request.action)} on ${String(seen.request.target)}, asked by ${seen.requestedBy}`,
      data: { ...requestData(seen.request, config.approval?.ttlMs), expires: seen.expiresAt },
    });
    if (args.json) return printJson(seen);
    print(`approved ${seen.code} as ${seen.approval?.by ?? "?"}: ${seen.requestedBy} may run it once until ${seen.expiresAt ?? "?"}: ${shellLine(seen.request.command)}`);
  },
};

interface ListArgs {
  all: boolean;
  json: boolean;
}

function whoApproved(s: Inspection): string {
  return s.approval ? `${s.approval.by} ${s.approval.approvedAt.replace(/\.\d+/, "")}` : "-";
}

export const approvalsCommand: CommandModule<object, ListArgs> = {
  builder: (y: Argv<object>): Argv<ListArgs> =>
    y.option("all", { type: "boolean", default: false, describe: "also the used, expired and refused ones" }).option("json", { type: "boolean", default: false }),
  handler: (args) => {
    const list = listApprovals(loadBackupConfig(), { all: args.all });
    if (args.json) return printJson(list);
    if (!list.length) return print(args.all ? "no requests" : "no request waits for an approval or its use (--all: every request)");
    print(
      textTable(
        ["CODE", "STATUS", "ACTION", "TARGET", "ASKED BY", "ASKED AT", "APPROVED BY", "UNTIL / WHY"],
        // A refused request is shown as its file says, whatever that holds.
        list.map((s) => [s.code, s.status, String(s.request.action), String(s.request.target), s.requestedBy, String(s.request.requestedAt).replace(/\.\d+/, ""), whoApproved(s), s.problem ?? (s.status === "used" ? `used ${s.use?.usedAt ?? ""}` : (s.expiresAt ?? "-"))]),
      ),
    );
  },
};
