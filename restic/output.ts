import type { Watchdog } from "../util/watchdog.js";
import { ResticAppendOnlyError, ResticError, ResticStalledError, errorForExit } from "./errors.js";
import type { BackupProgress } from "./options.js";
import { oneLine, redactRepo } from "./redact.js";
import type { BackupSummary } from "./types.js";

/**
 * Reading what restic prints: its JSON lines and summaries, its progress (which touches the stall watchdog), and its
 * errors, turned into the typed ResticError of the failure (credentials removed).
 */

/** What a finished restic process left: its exit code, output, and why a watchdog stopped it if one did. */
export interface RawResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Set when a watchdog killed restic: where it stood. */
  stalled?: string;
}

/** The typed error of a failed run of `command` on the repository at `url` (credentials removed from the message). */
export function resticFailure(command: string, res: RawResult, url: string): ResticError {
  if (res.stalled) return new ResticStalledError(`stalled: ${res.stalled}; restic ${command} stopped${command === "backup" ? ", nothing saved" : ""}`, command, res.code);
  const detail = resticDetail(res.stderr);
  if (refusedDelete(res.stderr)) {
    return new ResticAppendOnlyError(`repository ${redactRepo(url)} refused to delete data (append-only): restic ${command} removed nothing`, command, res.code);
  }
  return errorForExit(command, res.code, url, detail);
}

/** restic's error when its producer (our relay) failed: the stream ended without dcctl's completion marker. */
export function isRelayFailure(stderr: string): boolean {
  return /command failed/i.test(stderr);
}

/**
 * What a line of restic's plain output says, without the elapsed time that starts a progress line ("[0:35] 40.00%  2 /
 * 5 packs copied") or an ETA: restic repeats a progress line every few seconds (RESTIC_PROGRESS_FPS), so only a line
 * that says something new is progress.
 */
export function progressKey(line: string): string {
  return line
    .replace(/^\[[\d:]+\]\s*/, "")
    .replace(/\s*ETA\s+[\d:]+\s*$/, "")
    .trim();
}

/** Reads restic backup's JSON status lines: progress touches the watchdog and is reported. */
export function statusReader(watchdog: Watchdog | undefined, onProgress: ((p: BackupProgress) => void) | undefined): (line: string) => void {
  let last = "";
  return (line) => {
    if (!line.startsWith('{"message_type":"status"')) return;
    try {
      const m = JSON.parse(line) as { bytes_done?: number; files_done?: number; total_bytes?: number };
      const p: BackupProgress = { bytesDone: m.bytes_done ?? 0, filesDone: m.files_done ?? 0, totalBytes: m.total_bytes };
      const key = `${p.bytesDone}/${p.filesDone}`;
      if (key !== last) watchdog?.touch();
      last = key;
      onProgress?.(p);
    } catch {
      // A status line cut short: the next one will do.
    }
  };
}

/** rest-server --append-only answers a delete with 403; restic reports it per file. */
export function refusedDelete(stderr: string): boolean {
  return /unexpected HTTP response \(403\)/.test(stderr);
}

export function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new ResticError(`restic ${what} printed output that is not JSON: ${oneLine(text).slice(0, 200)}`, what, 0);
  }
}

/** The JSON objects among restic's output lines (it mixes them with plain text in some modes). */
export function jsonLines(text: string): Record<string, unknown>[] {
  const msgs: Record<string, unknown>[] = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      const v = JSON.parse(line) as unknown;
      if (v && typeof v === "object" && !Array.isArray(v)) msgs.push(v as Record<string, unknown>);
    } catch {
      // A progress line cut in half; not ours to read.
    }
  }
  return msgs;
}

export function backupSummary(stdout: string): BackupSummary | undefined {
  const msg = lastOf(jsonLines(stdout), (m) => m.message_type === "summary");
  return msg as unknown as BackupSummary | undefined;
}

export function backupWarnings(stderr: string): string[] {
  const warnings: string[] = [];
  for (const line of stderr.split("\n").map((l) => l.trim())) {
    if (!line) continue;
    if (!line.startsWith("{")) {
      warnings.push(redactRepo(line));
      continue;
    }
    try {
      const msg = JSON.parse(line) as { message_type?: string; error?: { message?: string }; item?: string };
      if (msg.message_type === "error") warnings.push(redactRepo(`${msg.item ?? ""}: ${msg.error?.message ?? ""}`));
    } catch {
      // Not one of restic's messages.
    }
  }
  return warnings;
}

/** restic's own explanation: the exit_error message in JSON mode, else the last line of stderr (credentials removed). */
export function resticDetail(stderr: string): string {
  const exit = lastOf(jsonLines(stderr), (m) => m.message_type === "exit_error");
  if (exit && typeof exit.message === "string") return redactRepo(oneLine(exit.message.split("\n")[0] ?? ""));
  const lines = stderr
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("{"));
  return redactRepo(oneLine(lines[lines.length - 1] ?? ""));
}

export function lastLines(text: string, n: number): string {
  return text.split("\n").filter((l) => l.trim()).slice(-n).join("\n");
}

function lastOf<T>(items: T[], pred: (item: T) => boolean): T | undefined {
  for (let i = items.length - 1; i >= 0; i--) {
    const item = items[i] as T;
    if (pred(item)) return item;
  }
  return undefined;
}

export function requireSummary(summary: BackupSummary | undefined, where: string): BackupSummary {
  if (!summary) throw new ResticError(`restic backup to ${where} printed no summary`, "backup", 0);
  return summary;
}
