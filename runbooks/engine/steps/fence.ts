import type { SiteHost } from "../../../inventory/index.js";
import { DcctlError, errorMessage } from "../../../util/errors.js";
import { ENGINES, enginesOf, isDbEngine } from "../../../databases/registry.js";
import { defineStep, StepFailure, type DbEngine } from "./types.js";
import type { UnansweredProbe } from "../failure.js";
import { Params } from "./params.js";
import { hostText, onHosts, runOn, shown } from "./on-hosts.js";

/**
 * `fence`: stops writes at the primary so that it cannot diverge from the secondary once that takes over.
 * A host that does not answer is already not writing for us: it is skipped with a note (the primary may be the
 * site that burned down), never a reason to stop a failover.
 */
interface FenceParams {
  /** Commands per host; default derived from the host's services. */
  commands?: string[][];
  /** Seconds to wait for a host to answer before counting it unreachable. */
  probeTimeout: number;
}

/** Other services are stopped. */
function stopCommands(host: SiteHost): string[][] {
  return host.services.filter((s) => !isDbEngine(s)).map((s) => ["systemctl", "stop", s]);
}

const engines = (host: SiteHost): DbEngine[] => enginesOf(host.services);

export const fenceStep = defineStep<FenceParams>({
  type: "fence",
  idempotent: true,
  parse(raw) {
    const p = new Params(raw);
    p.only("commands", "probeTimeout");
    return p.result({ commands: p.argvList("commands"), probeTimeout: p.number("probeTimeout", 1) ?? 10 });
  },
  confirm: {
    texts: { en: { change: "stop writes on {{hosts}}" }, vi: { change: "dừng ghi dữ liệu trên {{hosts}}" } },
    change: (p, _params, t) => t("change", { hosts: p.hosts.map((h) => h.name).join(", ") }),
  },
  plan(p, params) {
    return p.hosts.map((h) => {
      const actions = params.commands
        ? params.commands.map((c) => `\`${shown(c)}\``)
        : [...engines(h).map((e) => `${e} read-only (${ENGINES[e].readOnlySql.trim().replaceAll("\n", " ")})`), ...stopCommands(h).map((c) => `\`${shown(c)}\``)];
      return `if ${hostText(h)} answers within ${params.probeTimeout}s, stop its writes: ${actions.join("; ") || "nothing to stop"}`;
    });
  },
  async run(p, params, ctx) {
    // The moments hosts did not answer: the reference RPO is counted from when the operator gave none (failure.ts).
    const unanswered: UnansweredProbe[] = [];
    const result = await onHosts(p, async (host) => {
      const asked = ctx.services.now();
      try {
        await ctx.services.executorFor(host).run(["true"], { timeoutMs: params.probeTimeout * 1000 });
      } catch (err) {
        unanswered.push({ host: host.name, at: asked.toISOString() });
        // A switchover promises no loss: it cannot go on without having stopped the writes.
        if (ctx.planned) throw new DcctlError(`unreachable (${errorMessage(err)}): a planned switchover must stop its writes first; if the site is lost, fail over without --planned`);
        return [`unreachable (${errorMessage(err)}): fencing skipped, the host is not taking writes from us`];
      }
      const done: string[] = [];
      if (!params.commands) {
        for (const e of engines(host)) {
          if (!ctx.services.sql) throw new DcctlError("no SQL client is configured (backup config databases)");
          await ctx.services.sql.query(host, e, ENGINES[e].serverDatabase, ENGINES[e].readOnlySql);
          done.push(`${e} read-only`);
        }
      }
      for (const argv of params.commands ?? stopCommands(host)) {
        await runOn(ctx, p, host, argv);
        done.push(shown(argv));
      }
      return [`writes stopped: ${done.join("; ") || "nothing to stop"}`];
    }).catch((err: unknown) => {
      throw new StepFailure(errorMessage(err), unanswered.length ? { unanswered } : {});
    });
    return unanswered.length ? { ...result, data: { ...result.data, unanswered } } : result;
  },
});
