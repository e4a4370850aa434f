import { leavesProduction, type RunbookKind } from "../model.js";
import { scratchName } from "./restore-db.js";

/**
 * Placeholders an operator's command may use, so that a script can act on what this run made:
 * `{run}` is the run's id; `{db:NAME}` is the database NAME as this run restored it (its scratch copy in a drill or a recover).
 */
export function expandArgv(argv: readonly string[], run: { runId: string; kind: RunbookKind }): string[] {
  return argv.map((arg) =>
    arg.replace(/\{run\}/g, run.runId).replace(/\{db:([A-Za-z0-9_]+)\}/g, (_, db: string) => (leavesProduction(run.kind) ? scratchName(run.runId, db) : db)),
  );
}
