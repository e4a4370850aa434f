/** Four eyes on destructive actions: the gate every such action calls, the approval, the list (docs/operator/approvals.md). */
export { requireApproval, approveRequest, listApprovals, ttlText, type GateOptions, type Inspection } from "./gate.js";
export { ApprovalRequiredError, type RefusalReason } from "./refusal.js";
export { currentOperator, operatorName, type OperatorIdentity } from "./identity.js";
export { argsText, differences, type ApprovalRecord, type ApprovalRequest, type GatedAction, type ArgValue } from "./request.js";
export type { ApprovalSettings } from "./config.js";
