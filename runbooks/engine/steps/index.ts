import type { StepType } from "../model.js";
import { commandStep } from "./command.js";
import { dataLossStep } from "./data-loss.js";
import { dnsStep } from "./dns.js";
import { fenceStep } from "./fence.js";
import { infraStep } from "./infra.js";
import { notifyStep } from "./notify.js";
import { precheckStep } from "./precheck.js";
import { promoteStep } from "./promote.js";
import { reportStep } from "./report.js";
import { reprotectStep } from "./reprotect.js";
import { restoreDbStep } from "./restore-db.js";
import { restorePitrStep } from "./restore-pitr.js";
import type { AnyStepModule } from "./types.js";
import { verifyStep } from "./verify.js";

/** Every step type, one module each. */
export const stepModules: Record<StepType, AnyStepModule> = {
  precheck: precheckStep,
  fence: fenceStep,
  "restore-db": restoreDbStep,
  "restore-pitr": restorePitrStep,
  promote: promoteStep,
  reprotect: reprotectStep,
  infra: infraStep,
  dns: dnsStep,
  verify: verifyStep,
  "data-loss": dataLossStep,
  command: commandStep,
  notify: notifyStep,
  report: reportStep,
};

/** Types that change production and so have no place in a drill. */
export const DISRUPTIVE_TYPES: readonly StepType[] = ["fence", "promote", "reprotect", "dns"];

export * from "./types.js";
