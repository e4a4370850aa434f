import { drTierOf, type Sites, type SiteHost } from "../../inventory/index.js";
import { enginesOf, type DbEngine } from "../../databases/registry.js";

/** A standby of the secondary and the primary host it replicates, from the inventory's `standbyFor`. */
export interface ReplicationPair {
  /** The standby's host name: how `--pair` names it. */
  name: string;
  engine: DbEngine;
  primary: SiteHost;
  standby: SiteHost;
  tier: number;
  /** The primary's DR tier's RPO: what the lag is judged against. */
  rpoSeconds: number;
}

/**
 * The pair the other way round: the primary host following its standby, as after a failover (reprotect) until the
 * switchover back. Named after the host that follows.
 */
export function reversed(pair: ReplicationPair): ReplicationPair {
  return { ...pair, name: pair.primary.name, primary: pair.standby, standby: pair.primary };
}

/**
 * Every replication pair of the inventory: a secondary host with `standbyFor` whose database engine its primary runs
 * too. A standby that shares no engine with its primary has nothing to replicate (it is restored from backups).
 */
export function replicationPairs(sites: Sites): ReplicationPair[] {
  return sites.secondary.hosts.flatMap((h): ReplicationPair[] => {
    const primary = h.standbyFor === undefined ? undefined : sites.primary.hosts.find((p) => p.name === h.standbyFor);
    if (!primary) return [];
    const engine = enginesOf(h.services).find((e) => primary.services.includes(e));
    if (!engine) return [];
    const tier = drTierOf(sites.primary, primary);
    return [{ name: h.name, engine, primary: { ...primary, site: "primary" }, standby: { ...h, site: "secondary" }, tier: primary.drTier, rpoSeconds: tier.rpoMinutes * 60 }];
  });
}

/**
 * The pair in which `host` is the one that follows: a standby follows its primary; a primary host follows its standby
 * the other way round (after a failover, until the switchover back). Undefined for a host of no pair.
 */
export function pairFollowedBy(pairs: ReplicationPair[], host: string): ReplicationPair | undefined {
  const back = pairs.find((x) => x.primary.name === host);
  return pairs.find((x) => x.name === host) ?? (back && reversed(back));
}
