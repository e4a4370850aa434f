/** The DR engine: runbook loading and checks, plans, runs with a journal, resume, reports and history. */
export * from "./model.js";
export { forService, loadRunbook, parseRunbook, runbookPath, runbooksDir } from "./load.js";
export { planRunbook, planEntries, planText, isIdempotent, type PlanEntry } from "./plan.js";
export { startRun, resumeRun, loadRun, type EngineOptions, type StartOptions, type ResumeOptions, type RunOutcome } from "./runner.js";
export { readJournal, Journal, type JournalRecord, type JournalBody } from "./journal.js";
export { replay, type Replay, type StepState } from "./replay.js";
export { buildReport, reportMarkdown, writeReport } from "./report.js";
export type { Evidence, RunReport } from "./report-model.js";
export { reportHtml, runReportHtml, reportPdf } from "./report-html.js";
export { verifyReport, verifyChain, verifyLines, type VerifyOutcome, type VerifyCheck } from "./verify-report.js";
export { listRuns, type RunSummary } from "./history.js";
export { acquireLock, lockPath } from "./lock.js";
export { progressFor, plainProgress, silentProgress, type Progress } from "./progress.js";
export { stateDir, runsDir, runDir, locksDir } from "./state.js";
export { stepModules, type DrServices, type DatabaseRestorer, type SnapshotCatalog, type InfraDriver, type StepResult, type RestoredDatabase } from "./steps/index.js";
