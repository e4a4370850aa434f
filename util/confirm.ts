import { createInterface } from "node:readline/promises";
import { DcctlError, ExitCode } from "./errors.js";

export interface ConfirmOptions {
  /** --yes was given: proceed without asking. */
  yes: boolean;
  /** What will be changed, named in the question and in the refusal, e.g. "destroy every VM of stack primary". */
  action: string;
  /** The word the operator must type to go ahead (a stack or host name); default "yes". */
  expect?: string;
}

/**
 * Asks before a destructive action. Without --yes and without a terminal there is nobody to ask: refuse (exit 5)
 * rather than guess. The operator must type the expected word; anything else stops.
 */
export async function confirmAction(opts: ConfirmOptions): Promise<void> {
  if (opts.yes) return;
  const expect = opts.expect ?? "yes";
  if (!process.stdin.isTTY) {
    throw new DcctlError(`refusing to ${opts.action} without --yes: no terminal to ask for confirmation`, ExitCode.notConfirmed);
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = (await rl.question(`About to ${opts.action}.\nType "${expect}" to go ahead: `)).trim();
    if (answer !== expect) throw new DcctlError(`not confirmed: ${opts.action} was not done`, ExitCode.notConfirmed);
  } finally {
    rl.close();
  }
}
