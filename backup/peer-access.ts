import { isAbsolute } from "node:path";
import { quoteArgv } from "../hosts/quote.js";
import { DcctlError, ExitCode, InputError } from "../util/errors.js";
import { readSmallFile } from "../util/files.js";
import { REPOSITORY_NAMES, type RepositoryName } from "./policies.js";
import { runReportFile } from "./report.js";
import { RUN_ID, runLedgerFile } from "./run-ledger.js";
import { backupStatePaths } from "./state-paths.js";
import { verifyRecordPath } from "./verify-record.js";

/**
 * What one site may read of the other's control plane, and nothing more. Each site reads the other's last runs,
 * verifies and run records from that site's management host over SSH (peer-records.ts) with its `ssh.keyFile` — a key
 * that whoever takes the site over holds too. On the other site's management host that key is therefore no login:
 * its authorized_keys entry is `restrict,command="dcctl peer-records serve --state-dir DIR"`, so sshd runs that
 * command whatever the client asks, and `restrict` refuses port, agent and X11 forwarding and a terminal. The command
 * reads the client's request from SSH_ORIGINAL_COMMAND, answers the two requests below from the files under DIR
 * (reading only: the state folder's format mark is not even touched), and refuses anything else — a shell, `rm -rf`,
 * a path, a run id that is not one — with one line and exit 1. The other site's clock, arrival ledger and repository
 * disk, on which its judgement of what the first site sends rests (docs/operator/threat-model.md), stay out of reach.
 */

export type PeerRequest = { kind: "records" } | { kind: "runs"; runIds: string[] };

/** What the client sends: the same words run `dcctl peer-records …` on a host where the key is a login. */
const PEER_COMMAND = ["dcctl", "peer-records"] as const;

/** The most run ids one request carries (the client asks in batches of this many). */
export const MAX_RUNS_PER_REQUEST = 100;

/** The most bytes read of one record: the records are small, and an answer has to cross the WAN. */
const MAX_RECORD_BYTES = 8 * 1024 * 1024;

/** The argv the client runs on the other site's management host for a request. */
export function peerRequestArgv(req: PeerRequest): string[] {
  return req.kind === "records" ? [...PEER_COMMAND, "records"] : [...PEER_COMMAND, "runs", ...req.runIds];
}

/** A request the forced command does not answer (exit 1, one line). */
export class PeerRequestRefused extends DcctlError {
  constructor(detail: string) {
    super(`peer-records: refused ${detail}: this key only reads the site's records (dcctl peer-records records | runs RUN_ID…)`, ExitCode.failed);
  }
}

/**
 * The request in a command line as sshd hands it over (SSH_ORIGINAL_COMMAND; the client's executor prefixes `exec`).
 * Only the exact words peerRequestArgv makes pass: no quoting, no options, no paths, nothing a shell would read.
 */
export function parsePeerRequest(original: string | undefined): PeerRequest {
  if (original === undefined || original.trim() === "") throw new PeerRequestRefused("a login without a command (no shell)");
  const shown = JSON.stringify(original.length > 120 ? `${original.slice(0, 120)}…` : original);
  const words = original.trim().split(/ +/);
  if (words[0] === "exec") words.shift();
  const [dcctl, group, kind, ...rest] = words;
  if (dcctl !== PEER_COMMAND[0] || group !== PEER_COMMAND[1]) throw new PeerRequestRefused(shown);
  if (kind === "records" && rest.length === 0) return { kind: "records" };
  if (kind === "runs" && rest.length > 0 && rest.length <= MAX_RUNS_PER_REQUEST && rest.every((id) => RUN_ID.test(id))) return { kind: "runs", runIds: rest };
  throw new PeerRequestRefused(shown);
}

/** What the records request answers: each file's text as it is (the reader judges it), null when there is none. */
export interface RecordsAnswer {
  jobState: string | null;
  verify: Partial<Record<RepositoryName, string | null>>;
}

/** What the runs request answers: each run's report and ledger, one after the other, "" when it has neither. */
export type RunsAnswer = Record<string, string>;

/**
 * A record's text, opened read-only and never blocking (a FIFO planted in the state folder is refused unread); null
 * when it is not there, not a file, larger than the limit, or cannot be read.
 */
function readRecord(path: string): string | null {
  try {
    return readSmallFile(path, MAX_RECORD_BYTES, "a peer record");
  } catch {
    return null;
  }
}

/** The answer to a request, from a site's state folder. */
export function answerPeerRequest(stateDir: string, req: { kind: "records" }): RecordsAnswer;
export function answerPeerRequest(stateDir: string, req: { kind: "runs"; runIds: string[] }): RunsAnswer;
export function answerPeerRequest(stateDir: string, req: PeerRequest): RecordsAnswer | RunsAnswer;
export function answerPeerRequest(stateDir: string, req: PeerRequest): RecordsAnswer | RunsAnswer {
  const dir = { stateDir };
  if (req.kind === "records") {
    const verify: RecordsAnswer["verify"] = {};
    for (const name of REPOSITORY_NAMES) verify[name] = readRecord(verifyRecordPath(dir, name));
    return { jobState: readRecord(backupStatePaths({ stateDir, metricsFile: "" }).stateFile), verify };
  }
  const out: RunsAnswer = {};
  const reports = backupStatePaths({ stateDir, metricsFile: "" }).reportsDir;
  for (const run of req.runIds) {
    if (!RUN_ID.test(run)) continue;
    out[run] = [readRecord(runReportFile(reports, run)), readRecord(runLedgerFile(dir, run))].filter((t): t is string => t !== null).join("\n");
  }
  return out;
}

/** The single line the forced command prints: the answer as JSON. */
export function servePeerRequest(stateDir: string, original: string | undefined): string {
  return JSON.stringify(answerPeerRequest(stateDir, parsePeerRequest(original))) + "\n";
}

/**
 * The authorized_keys line that lets another site's key read this site's records and do nothing else. `dcctl`: how
 * this host runs dcctl (an absolute path, or node and its main.js); `from`: the addresses the other site's
 * management host connects from (sshd's from= patterns), when known.
 */
export function authorizedKeyLine(publicKey: string, o: { dcctl: readonly string[]; stateDir: string; from?: string; source?: string }): string {
  const where = o.source ?? "the public key";
  const key = publicKey.trim();
  if (!/^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+=*( [^\n]*)?$/.test(key)) {
    throw new InputError([`${where}: not one OpenSSH public key line ("ssh-ed25519 AAAA… comment"); give the other site's ssh.keyFile with .pub`]);
  }
  if (!isAbsolute(o.stateDir)) throw new InputError([`the state folder ${o.stateDir} is not an absolute path`]);
  const command = quoteArgv([...o.dcctl, "peer-records", "serve", "--state-dir", o.stateDir]);
  // Inside command="…" a double quote ends the option and a backslash escapes; no path of ours needs either.
  const bad = [command, o.from ?? ""].find((s) => /["\\\n]/.test(s));
  if (bad !== undefined) throw new InputError([`cannot write an authorized_keys line for ${JSON.stringify(bad)}: it holds a double quote, backslash or newline`]);
  const from = o.from ? `from="${o.from}",` : "";
  return `${from}restrict,command="${command}" ${key}`;
}
