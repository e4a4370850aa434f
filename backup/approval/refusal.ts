import { DcctlError, ExitCode } from "../../util/errors.js";
import type { ApprovalRequest } from "./request.js";

/**
 * Why an action or an approval did not go ahead, as a word a program can act on (the SOC feed maps each to an event):
 * requested: a request was written now; pending: one was found, waiting or approved but not given (--approval);
 * the rest are refusals.
 */
export type RefusalReason = "requested" | "pending" | "self-approval" | "not-approver" | "not-requester" | "mismatch" | "expired" | "used" | "already-approved" | "changed" | "forged" | "unreadable";

/** The action was not done: it needs an approval it does not have (exit 8). Carries the request when one is known. */
export class ApprovalRequiredError extends DcctlError {
  constructor(
    message: string,
    readonly reason: RefusalReason,
    readonly request?: ApprovalRequest,
    /** Whether this run wrote the request (else it found one of the same operator for exactly this action). */
    readonly written = false,
  ) {
    super(message, ExitCode.approvalRequired);
  }
}
