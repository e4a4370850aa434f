import { LockedError, acquireLock } from "../util/lock.js";
import { EventSpool, type Cursors, type SpooledEvent } from "./event-spool.js";
import { failureLine } from "./secrets.js";
import type { CollectorSettings, SocConfig } from "./soc-config.js";
import { octetFrame, syslogMessage } from "./syslog.js";
import { sendBatch } from "./syslog-tls.js";

/**
 * Delivery from the spool (event-spool.ts) to each collector of the site's `soc:` section, in spool order: a batch
 * at a time on a connection of its own, the collector's cursor moved on only once the batch is confirmed (by the
 * collector's clean close: syslog-tls.ts). A collector that does not answer keeps its place; the others go on. One
 * sender at a time on a machine (the lock `send`): two would each send what the other is sending.
 */

/** Per connection: enough to catch up after a long outage in a few connections, small enough to resend cheaply. */
const BATCH_EVENTS = 500;
const BATCH_BYTES = 512 * 1024;
/** One connection's bound, within the pass's. */
const CONNECTION_TIMEOUT_MS = 10_000;

export interface CollectorDelivery {
  collector: string;
  /** Events this pass delivered. */
  sent: number;
  /** Events still waiting for it. */
  pending: number;
  /** When the oldest waiting event was emitted. */
  oldestPending?: string;
  /** Why it failed this time. */
  error?: string;
}

export interface DeliveryReport {
  /** Another sender held the spool: this pass sent nothing. */
  busy?: boolean;
  collectors: CollectorDelivery[];
  /** Lines of the spool that were no event (torn by a crash), skipped. */
  damaged: number;
}

export interface DeliveryOptions {
  /** The whole pass; a batch that cannot finish in time is not started. */
  timeoutMs: number;
  /** How long to wait for another sender; 0: leave it to that one. */
  lockWaitMs: number;
  signal?: AbortSignal;
}

/** Sends what each collector has not received yet, until it has all of it or the time is up. Never throws for a collector. */
export async function deliverEvents(stateDir: string, soc: SocConfig, o: DeliveryOptions): Promise<DeliveryReport> {
  const spool = new EventSpool(`${stateDir}/events`);
  const deadline = Date.now() + o.timeoutMs;
  let lock;
  try {
    lock = await acquireLock(spool.locksDir, "send", { mode: "exclusive", waitMs: o.lockWaitMs, what: "the event spool's sender" });
  } catch (e) {
    if (e instanceof LockedError) return { busy: true, collectors: [], damaged: 0 };
    throw e;
  }
  try {
    const cursors = spool.cursors();
    // Offsets into a spool that is gone (removed once all had it, or lost) count from the start of the one there now.
    const current = spool.id();
    if (cursors.spool !== current) {
      for (const s of Object.values(cursors.sinks)) s.offset = 0;
      if (current === undefined) delete cursors.spool;
      else cursors.spool = current;
    }
    let damaged = 0;
    const collectors = await Promise.all(
      soc.collectors.map(async (c) => {
        const r = await deliverTo(spool, cursors, c, soc, deadline, o.signal);
        damaged = Math.max(damaged, r.damaged);
        return r.report;
      }),
    );
    spool.compact(cursors, soc.collectors.map((c) => c.name));
    return { collectors, damaged };
  } finally {
    lock.release();
  }
}

async function deliverTo(spool: EventSpool, cursors: Cursors, c: CollectorSettings, soc: SocConfig, deadline: number, signal: AbortSignal | undefined): Promise<{ report: CollectorDelivery; damaged: number }> {
  let sent = 0;
  let error: string | undefined;
  let left: SpooledEvent[];
  let damaged: number;
  for (;;) {
    const mine = cursors.sinks[c.name] ?? { offset: 0, sent: 0 };
    const contents = spool.read({ ...(cursors.spool !== undefined ? { spool: cursors.spool } : {}), offset: mine.offset });
    damaged = contents.damaged;
    left = contents.events;
    // A spool made since the pass began: the offsets (all 0 then) are into it.
    if (contents.spool !== undefined) cursors.spool = contents.spool;
    if (left.length === 0) {
      // Nothing but skipped lines, or nothing: the cursor passes them, so they are not read again.
      if (contents.spool !== undefined && mine.offset !== contents.end) {
        cursors.sinks[c.name] = { ...mine, offset: contents.end };
        spool.saveCursors(cursors);
      }
      break;
    }
    const remaining = deadline - Date.now();
    if (remaining < 500 || signal?.aborted) break;
    const batch = take(left, soc);
    try {
      await sendBatch(c, batch.frames, { timeoutMs: Math.min(CONNECTION_TIMEOUT_MS, remaining), ...(signal ? { signal } : {}) });
    } catch (e) {
      error = failureLine(e);
      cursors.sinks[c.name] = { ...mine, lastFailedAt: new Date().toISOString(), lastError: error };
      spool.saveCursors(cursors);
      break;
    }
    sent += batch.count;
    cursors.sinks[c.name] = { offset: batch.end, sent: mine.sent + batch.count, lastSentAt: new Date().toISOString() };
    spool.saveCursors(cursors);
  }
  const oldest = left[0]?.event.at;
  return { report: { collector: c.name, sent, pending: left.length, ...(oldest ? { oldestPending: oldest } : {}), ...(error ? { error } : {}) }, damaged };
}

/** The next batch: whole events in order, bounded in count and bytes (at least one, however large). */
function take(events: SpooledEvent[], soc: SocConfig): { frames: Buffer[]; count: number; end: number } {
  const frames: Buffer[] = [];
  let bytes = 0;
  let end = events[0]?.offset ?? 0;
  for (const e of events) {
    const frame = octetFrame(syslogMessage(e.event, soc.facility));
    if (frames.length > 0 && (frames.length >= BATCH_EVENTS || bytes + frame.length > BATCH_BYTES)) break;
    frames.push(frame);
    bytes += frame.length;
    end = e.end;
  }
  return { frames, count: frames.length, end };
}

export interface CollectorStatus {
  collector: string;
  /** Events not yet confirmed by it, and when the oldest was emitted. */
  pending: number;
  oldestPending?: string;
  /** Events it confirmed in all, and when it last did. */
  sent: number;
  lastSentAt?: string;
  /** The last try that failed, since the last that succeeded. */
  lastFailedAt?: string;
  lastError?: string;
}

/** What waits for each collector, read from the spool and its cursors: touches nothing, sends nothing. */
export function feedStatus(stateDir: string, soc: SocConfig): { collectors: CollectorStatus[]; spoolFile: string; spooled: number; damaged: number } {
  const spool = new EventSpool(`${stateDir}/events`);
  const cursors = spool.cursors();
  const current = spool.id();
  const all = spool.read();
  const collectors = soc.collectors.map((c): CollectorStatus => {
    const mine = cursors.sinks[c.name];
    const offset = mine && cursors.spool === current ? mine.offset : 0;
    const left = all.events.filter((e) => e.offset >= offset);
    const oldest = left[0]?.event.at;
    return {
      collector: c.name,
      pending: left.length,
      ...(oldest ? { oldestPending: oldest } : {}),
      sent: mine?.sent ?? 0,
      ...(mine?.lastSentAt ? { lastSentAt: mine.lastSentAt } : {}),
      ...(mine?.lastFailedAt ? { lastFailedAt: mine.lastFailedAt } : {}),
      ...(mine?.lastError ? { lastError: mine.lastError } : {}),
    };
  });
  return { collectors, spoolFile: spool.file, spooled: all.events.length, damaged: all.damaged };
}
