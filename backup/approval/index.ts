/** Four eyes on destructive actions: the gate every such action calls, the approval, the list (docs/operator/approvals.md). */
export { requireApproval, approveRequest, listApprovals, ApprovalRequiredError, ttlText, type GateOptions, type Inspection } from "./gate.js";
export { currentOperator, operatorName, type OperatorIdentity } from "./identity.js";
export { argsText, differences, type ApprovalRecord, type ApprovalRequest, type GatedAction, type ArgValue } from "./request.js";
export type { ApprovalSettings } from "./config.js";
