import { createHash } from "node:crypto";
import { existsSync, readdirSync } from "node:fs";
import { drillNetwork, type Network, type Site, type SiteName, type Sites } from "../inventory/index.js";
import { DcctlError } from "../util/errors.js";
import { lastLine, run } from "../util/process.js";

/**
 * The lab's network: every lab host is a network namespace with its inventory address on its VLAN, each VLAN a bridge
 * inside its site's router namespace, the two routers joined by a rate-capped WAN veth. The namespaces have no default
 * route and the root namespace has no interface or route into them, so no lab address can reach the machine's real
 * network, and a command aimed at the lab from outside fails at once. Names carry a short id of the lab's folder, so a
 * test's lab runs beside a developer's with the same addresses.
 */

/** The WAN link's two ends, inside the routers only (never routed from a host). */
const WAN = { primary: "10.255.255.1", secondary: "10.255.255.2", prefix: 30 } as const;
export const DEFAULT_WAN_MBIT = 100;

export interface NetHost {
  /** Inventory host name, or "vcenter" for the site's vCenter. */
  name: string;
  site: SiteName;
  netns: string;
  address: string;
  prefix: number;
  gateway: string;
  bridge: string;
  /** This host's end of its veth inside the router namespace (unique per router, at most 15 characters). */
  port: string;
}

export interface NetSite {
  site: SiteName;
  router: string;
  networks: Network[];
  hosts: NetHost[];
}

export interface LabNetwork {
  id: string;
  sites: Record<SiteName, NetSite>;
}

/** A short, stable id of the lab's folder: namespace names must be unique on the machine, and short. */
export function labNetId(dir: string): string {
  return `dcl${createHash("sha256").update(dir).digest("hex").slice(0, 5)}`;
}

const prefixOf = (cidr: string) => Number(cidr.split("/")[1]);
const bridgeOf = (n: Network) => `br${n.vlan}`;

/** The address of the lab's vCenter of a site: .20 on the site's management network. */
export function vcenterAddress(site: Site): string {
  const mgmt = site.networks.find((n) => n.purpose === "management");
  if (!mgmt) throw new DcctlError(`site ${site.site} has no management network for the lab's vCenter`);
  return mgmt.cidr.split("/")[0]?.replace(/\.\d+$/, ".20") ?? "";
}

export function planNetwork(dir: string, sites: Sites): LabNetwork {
  const id = labNetId(dir);
  const plan = (site: Site): NetSite => {
    const netOf = (name: string) => {
      const n = site.networks.find((x) => x.name === name);
      if (!n) throw new DcctlError(`site ${site.site}: no network ${name}`);
      return n;
    };
    const mgmt = site.networks.find((n) => n.purpose === "management");
    if (!mgmt) throw new DcctlError(`site ${site.site} has no management network`);
    const hosts: NetHost[] = site.hosts.map((h, i) => {
      const n = netOf(h.network);
      return { name: h.name, site: site.site, netns: `${id}-${h.name}`, address: h.ip, prefix: prefixOf(n.cidr), gateway: n.gateway, bridge: bridgeOf(n), port: `h${i}` };
    });
    hosts.push({ name: "vcenter", site: site.site, netns: `${id}-${site.site}-vcenter`, address: vcenterAddress(site), prefix: prefixOf(mgmt.cidr), gateway: mgmt.gateway, bridge: bridgeOf(mgmt), port: "vc" });
    return { site: site.site, router: `${id}-${site.site}-router`, networks: site.networks, hosts };
  };
  return { id, sites: { primary: plan(sites.primary), secondary: plan(sites.secondary) } };
}

/** Every namespace of the lab, routers first. */
export function namespaces(net: LabNetwork): string[] {
  return Object.values(net.sites).flatMap((s) => [s.router, ...s.hosts.map((h) => h.netns)]);
}

/** The namespace of the management host of a site (its backup-role host), where dcctl runs for that site. */
export function managementNetns(net: LabNetwork, sites: Sites, site: SiteName): string {
  const host = sites[site].hosts.find((h) => h.role === "backup");
  const ns = net.sites[site].hosts.find((h) => h.name === host?.name)?.netns;
  if (!ns) throw new DcctlError(`site ${site} has no management (backup role) host`);
  return ns;
}

export function netnsOf(net: LabNetwork, host: string): string {
  const ns = Object.values(net.sites).flatMap((s) => s.hosts).find((h) => h.name === host)?.netns;
  if (!ns) throw new DcctlError(`the lab has no host ${host}`);
  return ns;
}

/**
 * The command line that runs `argv` in a lab namespace. nsenter enters the network namespace only: unlike `ip netns
 * exec` it leaves /sys alone, so the freezer groups under /sys/fs/cgroup stay visible to what runs there.
 */
export function inNetns(ns: string, argv: readonly string[]): [string, string[]] {
  return ["nsenter", [`--net=/run/netns/${ns}`, "--", ...argv]];
}

export function netnsExists(ns: string): boolean {
  return existsSync(`/run/netns/${ns}`);
}

/** The namespaces on this machine whose names carry this lab's id (also ones a crashed `lab up` left). */
function existingNamespaces(id: string): string[] {
  if (!existsSync("/run/netns")) return [];
  return readdirSync("/run/netns").filter((n) => n.startsWith(`${id}-`));
}

async function ip(args: string[], input?: string): Promise<void> {
  const res = await run("ip", args, input === undefined ? {} : { input });
  if (res.code !== 0) throw new DcctlError(`ip ${args.join(" ")} failed: ${lastLine(res.stderr) || `exit ${res.code}`}`);
}

/** Runs several `ip` commands in one namespace in one process (`ip -batch`). */
const batch = (ns: string, lines: string[]) => ip(["-n", ns, "-batch", "-"], lines.join("\n") + "\n");

const nonIsolated = (s: NetSite) => s.networks.filter((n) => !n.isolated);
const other = (site: SiteName): SiteName => (site === "primary" ? "secondary" : "primary");

/**
 * Creates the lab's namespaces, bridges, links and routes. Whatever a crashed earlier start left is removed first, so
 * the result is always the whole plan (and only it).
 */
export async function networkUp(net: LabNetwork, wanMbit: number): Promise<void> {
  await networkDown(net);
  const all = [...Object.values(net.sites).flatMap((s) => s.networks.map((n) => n.cidr))].filter((c, i, a) => a.indexOf(c) === i);
  const isolatedCidrs = new Set(Object.values(net.sites).flatMap((s) => s.networks.filter((n) => n.isolated).map((n) => n.cidr)));
  for (const ns of namespaces(net)) await ip(["netns", "add", ns]);
  for (const s of Object.values(net.sites)) {
    const lines = ["link set lo up"];
    for (const n of s.networks) {
      lines.push(`link add ${bridgeOf(n)} type bridge`, `link set ${bridgeOf(n)} up`);
      // The drill network's bridge has no address: the router cannot route into or out of it.
      if (!n.isolated) lines.push(`addr add ${n.gateway}/${prefixOf(n.cidr)} dev ${bridgeOf(n)}`);
    }
    await batch(s.router, lines);
    const sysctl = await run(...inNetns(s.router, ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]));
    if (sysctl.code !== 0) throw new DcctlError(`cannot enable forwarding in ${s.router}: ${lastLine(sysctl.stderr)}`);
    for (const h of s.hosts) {
      const local = s.networks.find((n) => bridgeOf(n) === h.bridge);
      await batch(h.netns, [
        "link set lo up",
        `link add eth0 type veth peer name ${h.port} netns ${s.router}`,
        `addr add ${h.address}/${h.prefix} dev eth0`,
        "link set eth0 up",
        // No default route: only the lab's own networks are reachable (not the drill network from production).
        ...all.filter((c) => c !== local?.cidr && !isolatedCidrs.has(c) && !local?.isolated).map((c) => `route add ${c} via ${h.gateway}`),
      ]);
      await batch(s.router, [`link set ${h.port} master ${h.bridge}`, `link set ${h.port} up`]);
    }
  }
  const p = net.sites.primary;
  const sec = net.sites.secondary;
  await batch(p.router, [`link add wan type veth peer name wan netns ${sec.router}`]);
  for (const s of [p, sec]) {
    const peer = WAN[other(s.site)];
    await batch(s.router, [
      `addr add ${WAN[s.site]}/${WAN.prefix} dev wan`,
      "link set wan up",
      ...nonIsolated(net.sites[other(s.site)]).map((n) => `route add ${n.cidr} via ${peer}`),
    ]);
    await setWanRate(s.router, wanMbit);
  }
}

/** The WAN's bandwidth cap of a running lab, each direction, changed in place (connections across it survive). */
export async function capWan(net: LabNetwork, mbit: number): Promise<void> {
  for (const s of Object.values(net.sites)) await setWanRate(s.router, mbit);
}

/** The WAN's bandwidth cap, each direction: a token bucket on each router's end. */
async function setWanRate(router: string, mbit: number): Promise<void> {
  // A burst of at least one tick's worth of data at the rate, or the bucket cannot pass full-size packets.
  const burstKb = Math.max(32, Math.ceil((mbit * 1000) / 8 / 100));
  const res = await run(...inNetns(router, ["tc", "qdisc", "replace", "dev", "wan", "root", "tbf", "rate", `${mbit}mbit`, "burst", `${burstKb}kb`, "latency", "100ms"]));
  if (res.code !== 0) throw new DcctlError(`cannot cap the lab's WAN at ${mbit} Mbit/s: ${lastLine(res.stderr)}`);
}

/** Removes every namespace of the lab; links and bridges inside them go with them. */
export async function networkDown(net: LabNetwork): Promise<string[]> {
  const present = existingNamespaces(net.id);
  for (const ns of present) await ip(["netns", "delete", ns]);
  return present;
}

/** The processes running inside one namespace. */
export async function pidsInNetns(ns: string): Promise<number[]> {
  const res = await run("ip", ["netns", "pids", ns]);
  return res.stdout.split(/\s+/).filter(Boolean).map(Number);
}

/** Processes still running inside any of the lab's namespaces (also ones started there by a runbook over SSH). */
export async function processesIn(net: LabNetwork): Promise<number[]> {
  const pids: number[] = [];
  for (const ns of existingNamespaces(net.id)) pids.push(...(await pidsInNetns(ns)));
  return pids;
}

/**
 * Cuts or restores a site's WAN link. Cut, each router drops (blackhole: silently, no ICMP) what is bound for the
 * other site, so a connection to the lost site hangs as it would in a real outage instead of being refused.
 */
export async function setWan(net: LabNetwork, state: "cut" | "up"): Promise<void> {
  for (const s of Object.values(net.sites)) {
    const peer = WAN[other(s.site)];
    const routes = nonIsolated(net.sites[other(s.site)]).map((n) => (state === "cut" ? `route replace blackhole ${n.cidr}` : `route replace ${n.cidr} via ${peer}`));
    if (state === "cut") await batch(s.router, [...routes, "link set wan down"]);
    else await batch(s.router, ["link set wan up", ...routes]);
  }
}

/**
 * The drill's hosts on the secondary's isolated drill network: a copy of the portal's database server (.11) and of
 * the portal's application host (.21). They exist only while a drill runs (lab/drill-net.ts makes and removes them).
 */
export function drillHosts(net: LabNetwork, sites: Sites): { db: NetHost; app: NetHost } {
  const n = drillNetwork(sites.secondary);
  if (!n) throw new DcctlError("the lab's secondary has no isolated drill network");
  const base = n.cidr.split("/")[0] ?? "";
  const host = (name: string, last: number, port: string): NetHost => ({
    name,
    site: "secondary",
    netns: `${net.id}-${name}`,
    address: base.replace(/\.\d+$/, `.${last}`),
    prefix: prefixOf(n.cidr),
    gateway: n.gateway,
    bridge: bridgeOf(n),
    port,
  });
  return { db: host("drill-db", 11, "d11"), app: host("drill-app", 21, "d21") };
}

/** Creates a drill host's namespace on the drill bridge: its own address and nothing else, not even a gateway. */
export async function drillHostUp(net: LabNetwork, h: NetHost): Promise<void> {
  const router = net.sites.secondary.router;
  if (netnsExists(h.netns)) await ip(["netns", "delete", h.netns]);
  await ip(["netns", "add", h.netns]);
  await batch(h.netns, ["link set lo up", `link add eth0 type veth peer name ${h.port} netns ${router}`, `addr add ${h.address}/${h.prefix} dev eth0`, "link set eth0 up"]);
  await batch(router, [`link set ${h.port} master ${h.bridge}`, `link set ${h.port} up`]);
}

export async function drillHostDown(h: NetHost): Promise<void> {
  if (netnsExists(h.netns)) await ip(["netns", "delete", h.netns]);
}
