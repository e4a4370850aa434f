import { DcctlError } from "../util/errors.js";
import { freezerGroup, inFreezer } from "./freezer.js";
import { inNetns, type LabNetwork } from "./network.js";
import type { LabService } from "./topology.js";

/** The system account a lab database server runs as (lab/postgres.ts's serverAccount finds or makes it). */
export interface Account {
  name: string;
  uid: number;
  gid: number;
}

/** Where a lab server runs: its host's network namespace, and its site's freezer group (see freezer.ts). */
export interface Placement {
  netns: string;
  freezer: string;
}

/**
 * The command line that starts `cmd` in its place: joined to the freezer group, inside the namespace, and (when an
 * account is given) switched to that account last, since entering a namespace needs root. Without a place, as it is.
 */
export function placed(where: Placement | undefined, cmd: string, args: readonly string[], account?: Account): [string, string[]] {
  if (!where) return [cmd, [...args]];
  const asUser = account && account.uid !== process.getuid?.() ? ["setpriv", `--reuid=${account.uid}`, `--regid=${account.gid}`, "--clear-groups", "--", cmd, ...args] : [cmd, ...args];
  return inFreezer(where.freezer, ...inNetns(where.netns, asUser));
}

/** Test servers listen on loopback, or on an address inside a namespace the lab made: never anywhere else. */
export function checkListenAddress(what: string, host: string, where: Placement | undefined): void {
  if (!where && !host.startsWith("127.")) throw new DcctlError(`${what} listens on loopback or inside a lab namespace only, not ${host}`);
}

/** Where a lab service runs: its host's namespace (the site's vCenter namespace for vcsim) and its site's freezer. */
export function placementOf(net: LabNetwork, svc: LabService): Placement {
  const hostName = svc.host ?? "vcenter";
  const host = net.sites[svc.site].hosts.find((h) => h.name === hostName);
  if (!host) throw new DcctlError(`the lab's network has no namespace for ${svc.name}`);
  return { netns: host.netns, freezer: freezerGroup(net.id, svc.site) };
}
