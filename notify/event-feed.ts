import { randomUUID } from "node:crypto";
import { hostname, userInfo } from "node:os";
import { DcctlError, ExitCode, errorMessage } from "../util/errors.js";
import { atCommandEnd } from "../util/command-end.js";
import { dcctlVersion } from "../util/tools.js";
import type { DeliveryReport } from "./event-delivery.js";
import { EventSpool } from "./event-spool.js";
import { CATALOGUE, severityOf, type EventKind, type FeedEvent, type Outcome } from "./events.js";
import { sendToJournal, underSystemd } from "./journald.js";
import type { SocConfig } from "./soc-config.js";

/**
 * The one call that tells the SOC of an action: `emitEvent(feed, kind, {...})`. It never blocks the action and never
 * fails it. The event is appended to the site's spool (event-spool.ts), fsynced, before the call returns; delivery to
 * the collectors happens from the spool: at once in the background of this process, briefly at the end of the
 * command (flushEvents, from cli/main.ts), and every minute by `dcctl events send` (the schedule's dcctl-events-send
 * unit) or by `dcctl serve`. Under systemd each event also goes to journald as it is emitted (journald.ts): the
 * entry lands in the unit's own journal, which is where a reader of that unit looks.
 */

/** Where a site's feed goes: its state folder (the spool) and its `soc:` section. BackupConfig is one. */
export interface EventFeed {
  stateDir: string;
  site: string;
  soc?: SocConfig;
}

export interface EventInput {
  /** What it was done to. */
  target: string;
  outcome: Outcome;
  /** One line for a person; default: the kind's title, target and outcome. */
  message?: string;
  run?: string;
  /** The second operator who approved the action (four eyes). */
  approver?: string;
  /** DR runs: the journal's record count and chain head (hex) when the event is emitted. */
  chain?: { seq: number; hash: string };
  /** The kind's own fields (see the catalogue); undefined ones are left out. */
  data?: Record<string, string | number | boolean | undefined>;
}

/** How long the end of a command gives delivery and journald, at most: a collector that is down costs this, once. */
export const FLUSH_TIMEOUT_MS = 3_000;
/** A background pass in a process that goes on (a DR run, `dcctl serve`). */
const BACKGROUND_PASS_MS = 10_000;

interface FeedState {
  feed: EventFeed & { soc: SocConfig };
  /** The pass running now, and whether events came after it began. */
  running?: Promise<DeliveryReport | undefined>;
  again: boolean;
  last?: DeliveryReport;
}

/** The delivery (TLS and all) loads when there is something to deliver: most commands emit nothing. */
async function deliverEvents(...args: Parameters<typeof import("./event-delivery.js").deliverEvents>): Promise<DeliveryReport> {
  const { deliverEvents: deliver } = await import("./event-delivery.js");
  return deliver(...args);
}

/** The spool of a site: `<stateDir>/events`. */
export function spoolOf(stateDir: string): EventSpool {
  return new EventSpool(`${stateDir}/events`);
}

/** The feeds this process emitted into (one per state folder), and its journald writes still on their way. */
const feeds = new Map<string, FeedState>();
const journalWrites = new Set<Promise<void>>();
/** Aborted when the command's time is up: a pass still connecting then gives up, so that the process can exit. */
let stop = new AbortController();
/** Lines for the operator that emitting produced (a spool that could not be written, journald that failed). */
const notes: string[] = [];
/** Whether this process emitted an event whose outcome is "refused" (cli/main.ts then adds no DCCTL-3101 of its own). */
let refusalTold = false;
let flushRegistered = false;

/** Whether an event of this process already told the SOC of a refusal. */
export function refusalEmitted(): boolean {
  return refusalTold;
}

/** The command's end gives the feed its bounded chance (util/command-end.ts), once something was emitted. */
function flushAtEnd(): void {
  if (flushRegistered) return;
  flushRegistered = true;
  atCommandEnd(async () => {
    flushRegistered = false;
    return (await flushEvents()).notes;
  });
}

/** Who runs dcctl: the OS user, and the one behind sudo. */
function who(env: NodeJS.ProcessEnv): { user: string; sudoUser?: string } {
  let user: string;
  try {
    user = userInfo().username;
  } catch {
    user = `uid ${process.getuid?.() ?? "?"}`;
  }
  return { user, ...(env.SUDO_USER ? { sudoUser: env.SUDO_USER } : {}) };
}

/** The event as it is spooled and sent. */
export function feedEvent(feed: Pick<EventFeed, "site">, kind: EventKind, input: EventInput, env: NodeJS.ProcessEnv = process.env, now = new Date()): FeedEvent {
  const entry = CATALOGUE[kind];
  const data = Object.fromEntries(Object.entries(input.data ?? {}).flatMap(([k, v]) => (v === undefined ? [] : [[k, String(v)]])));
  return {
    v: 1,
    uid: randomUUID(),
    id: entry.id,
    kind,
    at: now.toISOString(),
    severity: severityOf(kind, input.outcome),
    site: feed.site,
    host: hostname(),
    pid: process.pid,
    version: dcctlVersion(),
    ...who(env),
    ...(input.approver ? { approver: input.approver } : {}),
    action: entry.title,
    target: input.target,
    ...(input.run ? { run: input.run } : {}),
    outcome: input.outcome,
    message: input.message ?? `${entry.title}: ${input.target}: ${input.outcome}`,
    ...(input.chain ? { chain: input.chain } : {}),
    ...(Object.keys(data).length ? { data } : {}),
  };
}

/**
 * Tells the SOC: spools the event for the site's collectors (durably, before returning) and, under systemd, writes it
 * to journald. A site without a `soc:` section has no feed: nothing happens. Never throws: a spool that cannot be
 * written is a line on stderr at the command's end, and the action goes on.
 */
export function emitEvent(feed: EventFeed | undefined, kind: EventKind, input: EventInput): void {
  const soc = feed?.soc;
  if (!feed || !soc) return;
  if (input.outcome === "refused") refusalTold = true;
  flushAtEnd();
  const what = `event ${CATALOGUE[kind].id} (${CATALOGUE[kind].title}, ${input.target})`;
  let event: FeedEvent;
  try {
    event = feedEvent(feed, kind, input);
  } catch (e) {
    notes.push(`${what} could not be made: ${errorMessage(e)}`);
    return;
  }
  // The journal and the spool each on their own: one that fails does not cost the other its event.
  if (soc.journald && underSystemd()) {
    const write: Promise<void> = sendToJournal(event, soc.facility)
      .catch((e: unknown) => void notes.push(`${what} not written to journald: ${errorMessage(e)}`))
      .finally(() => journalWrites.delete(write));
    journalWrites.add(write);
  }
  if (!soc.collectors.length) return;
  try {
    spoolOf(feed.stateDir).append(event);
  } catch (e) {
    notes.push(`${what} could not be spooled for the SOC's collectors: ${errorMessage(e)}`);
    return;
  }
  kick({ ...feed, soc });
}

/** How an action that threw ended, for its event: refused (exit 5, 8), locked (exit 3), stopped by a signal, or failed. */
export function failedOutcome(e: unknown): Outcome {
  if (e instanceof DcctlError) {
    if (e.exitCode === ExitCode.notConfirmed || e.exitCode === ExitCode.approvalRequired) return "refused";
    if (e.exitCode === ExitCode.locked) return "locked";
    if (e.exitCode === ExitCode.interrupted || e.exitCode === ExitCode.terminated) return "stopped";
  }
  return "failed";
}

/**
 * Runs an action between its events: `started` (when the kind has one) before, `ended` after with its outcome and
 * what `describe` says of its result; a failure's event carries its error, and the error goes on to the caller.
 */
export async function withEvents<T>(
  feed: EventFeed | undefined,
  kinds: { started?: EventKind; ended: EventKind },
  input: Omit<EventInput, "outcome">,
  work: () => Promise<T>,
  describe: (result: T) => EventInput["data"] = () => ({}),
  /** The second operator who approved it (four eyes), when the result names one. */
  approverOf: (result: T) => string | undefined = () => undefined,
): Promise<T> {
  if (kinds.started) emitEvent(feed, kinds.started, { ...input, outcome: "started" });
  let result: T;
  try {
    result = await work();
  } catch (e) {
    emitEvent(feed, kinds.ended, { ...input, outcome: failedOutcome(e), message: `${CATALOGUE[kinds.ended].title}: ${input.target}: ${errorMessage(e)}`, data: { ...input.data, error: errorMessage(e) } });
    throw e;
  }
  const approver = approverOf(result) ?? input.approver;
  emitEvent(feed, kinds.ended, { ...input, outcome: "ok", ...(approver ? { approver } : {}), data: { ...input.data, ...describe(result) } });
  return result;
}

/** Starts a delivery pass in the background, or asks the running one to go round again. */
function kick(feed: EventFeed & { soc: SocConfig }): void {
  const state = feeds.get(feed.stateDir) ?? { feed, again: false };
  feeds.set(feed.stateDir, state);
  if (state.running) {
    state.again = true;
    return;
  }
  const pass = async (): Promise<DeliveryReport | undefined> => {
    let report: DeliveryReport | undefined;
    do {
      state.again = false;
      report = await deliverEvents(feed.stateDir, feed.soc, { timeoutMs: BACKGROUND_PASS_MS, lockWaitMs: 0, signal: stop.signal }).catch((e: unknown) => {
        notes.push(`the SOC feed: ${errorMessage(e)}`);
        return undefined;
      });
      if (report) state.last = report;
    } while (state.again && !stop.signal.aborted);
    return report;
  };
  // Not awaited: the action goes on; flushEvents or the process's end picks it up.
  state.running = pass().finally(() => {
    state.running = undefined;
  });
}

/**
 * For a process that runs on (`dcctl serve`): delivers the spool every `everyMs` in the background, as the schedule's
 * `events send` does, so that a site without that unit still drains. Returns what stops it.
 */
export function drainPeriodically(feed: EventFeed, everyMs = 60_000): () => void {
  const soc = feed.soc;
  if (!soc?.collectors.length) return () => undefined;
  const timer = setInterval(() => kick({ ...feed, soc }), everyMs);
  timer.unref();
  kick({ ...feed, soc });
  return () => clearInterval(timer);
}

export interface FlushResult {
  /** Per collector, after the last pass of this process. */
  collectors: DeliveryReport["collectors"];
  /** Lines for the operator: what could not be spooled or written, and what waits in the spool. */
  notes: string[];
}

/**
 * The end of a command: gives delivery and journald at most `timeoutMs` to finish what this process emitted, then
 * stops them (a collector that does not answer must not hold the process); what was not sent waits in the spool for
 * `dcctl events send`. Nothing when this process emitted nothing.
 */
export async function flushEvents(timeoutMs = FLUSH_TIMEOUT_MS): Promise<FlushResult> {
  if (feeds.size === 0 && journalWrites.size === 0 && notes.length === 0) return { collectors: [], notes: [] };
  const deadline = Date.now() + timeoutMs;
  let timer: NodeJS.Timeout | undefined;
  const timeUp = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, timeoutMs);
  });
  const work = (async () => {
    await Promise.all([...journalWrites]);
    for (const state of feeds.values()) {
      await state.running;
      // A last pass that waits for another sender (the minute's `events send`) rather than leaving it all to it.
      const left = deadline - Date.now();
      if (left > 500 && !stop.signal.aborted && (state.last === undefined || state.last.busy || state.last.collectors.some((c) => c.pending > 0))) {
        const report = await deliverEvents(state.feed.stateDir, state.feed.soc, { timeoutMs: left, lockWaitMs: Math.min(left - 500, 2_000), signal: stop.signal }).catch(() => undefined);
        if (report) state.last = report;
      }
    }
  })();
  await Promise.race([work, timeUp]);
  clearTimeout(timer);
  stop.abort();
  await Promise.race([work.catch(() => undefined), new Promise((r) => setTimeout(r, 200))]);
  const collectors = [...feeds.values()].flatMap((s) => s.last?.collectors ?? []);
  const out = [...notes];
  for (const c of collectors) if (c.pending > 0) out.push(`the SOC feed: ${c.pending} event${c.pending === 1 ? " waits" : "s wait"} in the spool for collector ${c.collector}${c.error ? ` (${c.error})` : ""}; \`dcctl events send\` (every minute from the schedule) sends them`);
  for (const s of feeds.values()) if (s.last?.busy && !s.last.collectors.length) out.push("the SOC feed: another `dcctl events send` is sending; it takes this command's events too");
  feeds.clear();
  notes.length = 0;
  stop = new AbortController();
  return { collectors, notes: out };
}
