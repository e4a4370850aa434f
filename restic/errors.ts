import { DcctlError, ExitCode } from "../util/errors.js";
import { redactRepo } from "./redact.js";

/**
 * restic's documented exit codes (restic 0.17+). Anything else is treated as fatal.
 * 3 means a snapshot WAS written but some source files could not be read.
 */
export const ResticExit = {
  ok: 0,
  fatal: 1,
  incomplete: 3,
  noRepository: 10,
  locked: 11,
  wrongPassword: 12,
  interrupted: 130,
} as const;

/** A restic command failed. The message is one line, names the repository (credentials removed) and never a password. */
export class ResticError extends DcctlError {
  constructor(
    message: string,
    /** The restic subcommand, e.g. "backup". */
    readonly command: string,
    /** restic's exit code, or -1 when it could not be started or was killed by a signal. */
    readonly resticCode: number,
    exitCode: ExitCode = ExitCode.failed,
  ) {
    super(message, exitCode);
  }
}

export class ResticRepoMissingError extends ResticError {}
export class ResticLockedError extends ResticError {}
export class ResticWrongPasswordError extends ResticError {}
export class ResticInterruptedError extends ResticError {}

/**
 * The repository refused to delete data (rest-server --append-only answers 403). restic forget reports this
 * on stderr but still exits 0, so the wrapper has to look for it.
 */
export class ResticAppendOnlyError extends ResticError {}

/** A backup wrote a snapshot that lacks some files (exit 3). The snapshot id is kept so the caller can forget it. */
export class ResticIncompleteError extends ResticError {
  constructor(
    message: string,
    readonly snapshotId: string | undefined,
  ) {
    super(message, "backup", ResticExit.incomplete);
  }
}

/** A backup whose source (a dump command or stream) failed; no snapshot of it is left in the repository. */
export class BackupSourceError extends ResticError {}

/** Builds the typed error for a non-zero exit; `detail` is restic's own last error line (already one line). */
export function errorForExit(command: string, code: number, repo: string, detail: string): ResticError {
  const where = redactRepo(repo);
  const why = detail ? `: ${redactRepo(detail)}` : "";
  switch (code) {
    case ResticExit.noRepository:
      return new ResticRepoMissingError(`no restic repository at ${where}`, command, code);
    case ResticExit.locked:
      return new ResticLockedError(`restic repository ${where} is locked by another process${why} (if that process is gone: dcctl backup unlock)`, command, code, ExitCode.locked);
    case ResticExit.wrongPassword:
      return new ResticWrongPasswordError(`wrong password for repository ${where}`, command, code);
    case ResticExit.interrupted:
      return new ResticInterruptedError(`restic ${command} on ${where} was interrupted`, command, code);
    default:
      return new ResticError(`restic ${command} failed for repository ${where}${why || ` (exit code ${code})`}`, command, code);
  }
}

/** restic made no progress (or a repository did not answer) within the stall limit, and was stopped. */
export class ResticStalledError extends ResticError {}
