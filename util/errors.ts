/**
 * The exit codes of the CLI contract (see docs/operator/exit-codes.md), and the errors that carry them.
 * Library code throws these; only cli/main.ts turns them into a line on stderr and an exit code.
 */
export const ExitCode = {
  ok: 0,
  failed: 1,
  badInput: 2,
  /** Another run holds the lock of the same job, host, repository or DR scope. */
  locked: 3,
  /** Some jobs of a multi-job run failed while others succeeded. */
  partial: 4,
  /** A destructive action was not confirmed (no --yes and no terminal, or the operator said no). */
  notConfirmed: 5,
  /** A DR drill or failover whose every step ended well, but that missed an RPO or RTO target of its tiers. */
  targetsMissed: 6,
  /** Another site does not answer: the view judged what this site holds, and says since when that site is lost. */
  siteUnreachable: 7,
  /**
   * A destructive action needs a second operator's approval (the site's `approval:`) and has none that is valid: a
   * request was written, or the approval given is not approved yet, expired, used, someone else's or for another action.
   */
  approvalRequired: 8,
  /** A repository holds snapshots this site does not trust (implausible or suspicious): kept, not counted, reported. */
  distrusted: 9,
  /** Stopped by Ctrl-C (SIGINT) or by SIGTERM (systemd stopping the unit): 128 + the signal, as a shell says. */
  interrupted: 130,
  terminated: 143,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** An error whose message is fit to show to the user as it is, with the exit code it should end with. */
export class DcctlError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode = ExitCode.failed,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Bad input: a flag, a YAML file, an argument. `problems` holds every problem found, one line each. */
export class InputError extends DcctlError {
  constructor(
    readonly problems: string[],
    summary?: string,
  ) {
    super(summary ?? problems.join("\n"), ExitCode.badInput);
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
