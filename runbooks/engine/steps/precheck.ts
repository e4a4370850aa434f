import { drTierOf, type SiteHost } from "../../../inventory/index.js";
import { DcctlError } from "../../../util/errors.js";
import { defineStep, type StepContext } from "./types.js";
import { Params } from "./params.js";
import { hostText, onHosts } from "./on-hosts.js";

/**
 * `precheck`: before anything changes, the repository answers, each target's newest snapshot is no older than its
 * tier's RPO, and the secondary has room for what a failover brings up. Reads only.
 */
interface PrecheckParams {
  /** The repository to read, by its name in the backup config; default "secondary". */
  repository: string;
  /** A stale snapshot is a note rather than a failure (a failover must go on with the best data there is). */
  allowStale: boolean;
  /** The secondary cluster's free capacity; the sum of its standby and application hosts must fit. */
  capacity?: { cpus: number; memoryGb: number };
}

function siteOf(ctx: StepContext, host: SiteHost) {
  return ctx.sites[host.site];
}

export const precheckStep = defineStep<PrecheckParams>({
  type: "precheck",
  idempotent: true,
  parse(raw) {
    const p = new Params(raw);
    p.only("repository", "allowStale", "capacityCpus", "capacityMemoryGb");
    const repository = p.string("repository") ?? "secondary";
    const cpus = p.number("capacityCpus", 1);
    const memoryGb = p.number("capacityMemoryGb", 1);
    const capacity = cpus !== undefined && memoryGb !== undefined ? { cpus, memoryGb } : undefined;
    return p.result({ repository, allowStale: p.boolean("allowStale") ?? false, capacity });
  },
  plan(p, params) {
    const lines = p.hosts.map((h) => `newest snapshot of ${hostText(h)} in repository ${params.repository} must be younger than tier ${h.drTier}'s RPO`);
    lines.push(params.capacity ? `the secondary's standby and application hosts must fit in ${params.capacity.cpus} vCPU / ${params.capacity.memoryGb} GB` : "no capacity given: capacity not checked");
    return lines;
  },
  async run(p, params, ctx) {
    const catalog = ctx.services.snapshots;
    if (!catalog) throw new DcctlError("precheck: no snapshot catalog is configured (restic repository access)");
    const now = ctx.failedAt.getTime();
    const result = await onHosts(p, async (host) => {
      const newest = await catalog.newest(params.repository, host.name);
      if (!newest) {
        // A failover goes on with the best data there is: a replica may hold it all even when no backup was copied.
        if (params.allowStale) return [`no snapshot in ${params.repository}: STALE (none at all), going on (allowStale)`];
        throw new DcctlError(`no snapshot in ${params.repository}`);
      }
      // A snapshot newer than the reference time (taken by an earlier step of this run, e.g. a failback's backup of
      // the secondary) is 0 min old, not a negative age.
      const ageMin = Math.max(0, now - Date.parse(newest.time)) / 60_000;
      const rpo = drTierOf(siteOf(ctx, host), host).rpoMinutes;
      const line = `newest snapshot ${newest.id} is ${ageMin.toFixed(1)} min old (RPO ${rpo} min)`;
      if (ageMin > rpo && !params.allowStale) throw new DcctlError(`${line}: older than the RPO`);
      // The snapshots this site does not trust that claim to be newer, passed over: said beside the one chosen.
      return [ageMin > rpo ? `${line}: STALE, going on (allowStale)` : line, ...(newest.notes ?? [])];
    });
    if (params.capacity) {
      const needed = ctx.sites.secondary.hosts.filter((h) => h.activeOnly || h.standbyFor !== undefined);
      const cpus = needed.reduce((n, h) => n + h.cpus, 0);
      const mem = needed.reduce((n, h) => n + h.memoryGb, 0);
      const line = `secondary needs ${cpus} vCPU / ${mem} GB of ${params.capacity.cpus} / ${params.capacity.memoryGb}`;
      if (cpus > params.capacity.cpus || mem > params.capacity.memoryGb) throw new DcctlError(`${line}: not enough capacity`);
      result.notes.push(line);
    }
    return result;
  },
});
