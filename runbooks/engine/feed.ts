import { emitEvent, withEvents, type EventFeed } from "../../notify/event-feed.js";
import type { EventKind, Outcome } from "../../notify/events.js";
import type { Runbook, RunbookKind } from "./model.js";
import type { DrServices } from "./steps/types.js";

/**
 * What a DR run tells the SOC (notify/event-feed.ts): its start (or resume) and its end, each with the journal's chain
 * head at that moment, so that the SOC holds an anchor the journal must contain (`dcctl dr verify-report --head`);
 * and the promotions and replica set-ups its steps make, with the run's id. The run's own outcome is never changed
 * by the feed: emitting cannot fail.
 */

const STARTED: Record<RunbookKind, EventKind> = { drill: "dr.drill.started", failover: "dr.failover.started", failback: "dr.failback.started", recover: "dr.recover.started" };
const ENDED: Record<RunbookKind, EventKind> = { drill: "dr.drill.ended", failover: "dr.failover.ended", failback: "dr.failback.ended", recover: "dr.recover.ended" };

interface RunFacts {
  runbook: Runbook;
  runId: string;
  chain: { seq: number; hash: string };
}

function common(r: RunFacts): Record<string, string> {
  return { kind: r.runbook.kind, runbook: r.runbook.name, to: r.runbook.to };
}

export function emitRunStarted(feed: EventFeed | undefined, r: RunFacts & { resumed: boolean; confirmedBy: string; approver?: string }): void {
  emitEvent(feed, STARTED[r.runbook.kind], {
    target: r.runbook.scope,
    outcome: "started",
    run: r.runId,
    ...(r.approver ? { approver: r.approver } : {}),
    chain: r.chain,
    message: `${r.runbook.kind} ${r.runId} ${r.resumed ? "resumed" : "started"}: runbook ${r.runbook.name}, to ${r.runbook.to}, scope ${r.runbook.scope}`,
    data: { ...common(r), ...(r.resumed ? { resumed: true } : {}), confirmedBy: r.confirmedBy },
  });
}

export function emitRunEnded(feed: EventFeed | undefined, r: RunFacts & { status: "ok" | "failed" | "missed"; message?: string; reportFile?: string; approver?: string }): void {
  const outcome: Outcome = r.status;
  emitEvent(feed, ENDED[r.runbook.kind], {
    target: r.runbook.scope,
    outcome,
    run: r.runId,
    ...(r.approver ? { approver: r.approver } : {}),
    chain: r.chain,
    message: `${r.runbook.kind} ${r.runId} ${r.status === "ok" ? "completed" : r.status === "missed" ? "completed, targets missed" : "FAILED"}${r.message ? `: ${r.message}` : ""}; journal chain head sha256:${r.chain.hash} (${r.chain.seq} records)`,
    data: { ...common(r), message: r.message, reportFile: r.reportFile },
  });
}

/**
 * The run's services with its promotions and replica set-ups told to the SOC, with the run's id: the one place every
 * step's promote and reprotect goes through.
 */
export function servicesWithFeed(services: DrServices, runId: string): DrServices {
  const replicas = services.replicas;
  const feed = services.feed;
  if (!replicas || !feed?.soc) return services;
  return {
    ...services,
    replicas: {
      status: (pair) => replicas.status(pair),
      promote: (pair) =>
        withEvents(feed, { ended: "replication.promote" }, { target: pair.standby.name, run: runId, data: { pair: pair.name, engine: pair.engine } }, () => replicas.promote(pair), (notes) => ({ result: notes.join("; ") || undefined })),
      setup: (pair, o) =>
        withEvents(feed, { ended: "replication.setup" }, { target: pair.standby.name, run: runId, data: { primary: pair.primary.name, standby: pair.standby.name, engine: pair.engine } }, () => replicas.setup(pair, o), (r) => ({ result: r.action })),
    },
  };
}
