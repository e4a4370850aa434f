import { formatCidr, networkContains, networksOverlap, parseCidr, parseIpv4, type Ipv4Network } from "./ipv4.js";
import { asArray, asRecord, asString, prefixFor, type Problem } from "./problems.js";
import { isDmzName } from "./query.js";
import type { DataPath } from "./yaml-source.js";
import { isTimeZone } from "../util/time-zone.js";

/**
 * The checks of one site file that a schema cannot express: references between fields, uniqueness, addresses.
 * They run on the data as parsed, even when the schema found problems, so that one run reports every error;
 * each check looks only at the fields that have the right type.
 */
export function checkSemantics(data: unknown, lineOf: (path: DataPath) => number): Problem[] {
  const root = asRecord(data);
  if (!root) return [];
  const problems: Problem[] = [];
  const report = (path: DataPath, message: string): void => {
    problems.push({ path, message: prefixFor(data, path) + message });
  };

  asArray(root.dnsServers).forEach((server, i) => {
    if (typeof server === "string" && parseIpv4(server) === undefined) {
      report(["dnsServers", i], `dnsServers[${i}] "${server}" is not an IPv4 address`);
    }
  });

  if (typeof root.timeZone === "string" && root.timeZone !== "" && !isTimeZone(root.timeZone)) {
    report(["timeZone"], `timeZone "${root.timeZone}" is not an IANA time zone (e.g. Asia/Ho_Chi_Minh, UTC)`);
  }

  const vcenter = asRecord(root.vcenter);
  const datastores = uniqueNames(asArray(vcenter?.datastores), ["vcenter", "datastores"], "datastore", lineOf, report);
  uniqueNames(asArray(vcenter?.esxiHosts), ["vcenter", "esxiHosts"], "ESXi host", lineOf, report);

  const templates = uniqueNames(
    asArray(root.templates).map((t) => asRecord(t)?.name),
    ["templates"],
    "template",
    lineOf,
    report,
    "name",
  );

  const tiers = new Map<number, number>();
  asArray(root.drTiers).forEach((entry, i) => {
    const tier = asRecord(entry)?.tier;
    if (typeof tier !== "number") return;
    const first = tiers.get(tier);
    if (first !== undefined) report(["drTiers", i, "tier"], `duplicate DR tier ${tier} (first defined at line ${lineOf(["drTiers", first])})`);
    else tiers.set(tier, i);
  });

  const networks = checkNetworks(root, lineOf, report);

  checkHosts(root, { datastores, templates, tiers, networks }, lineOf, report);
  return problems;
}

type Report = (path: DataPath, message: string) => void;

/** Names (with the index of their first occurrence) of a list; duplicates are reported. */
function uniqueNames(
  items: unknown[],
  listPath: DataPath,
  noun: string,
  lineOf: (path: DataPath) => number,
  report: Report,
  field?: string,
): Map<string, number> {
  const seen = new Map<string, number>();
  items.forEach((item, i) => {
    if (typeof item !== "string") return;
    const path = field ? [...listPath, i, field] : [...listPath, i];
    const first = seen.get(item);
    if (first !== undefined) {
      const firstPath = field ? [...listPath, first, field] : [...listPath, first];
      report(path, `duplicate ${noun} name "${item}" (first defined at line ${lineOf(firstPath)})`);
    } else {
      seen.set(item, i);
    }
  });
  return seen;
}

interface NetworkInfo {
  index: number;
  net?: Ipv4Network;
  gateway?: number;
  purpose?: string;
}

function checkNetworks(root: Record<string, unknown>, lineOf: (path: DataPath) => number, report: Report): Map<string, NetworkInfo> {
  const list = asArray(root.networks);
  const byName = new Map<string, NetworkInfo>();
  const vlans = new Map<number, number>();
  const parsed: { index: number; net: Ipv4Network }[] = [];
  list.forEach((entry, i) => {
    const network = asRecord(entry);
    if (!network) return;
    const info: NetworkInfo = { index: i, purpose: asString(network.purpose) };
    const name = asString(network.name);
    if (name !== undefined) {
      const first = byName.get(name);
      if (first) report(["networks", i, "name"], `duplicate network name "${name}" (first defined at line ${lineOf(["networks", first.index])})`);
      else byName.set(name, info);
    }
    if (typeof network.vlan === "number") {
      const first = vlans.get(network.vlan);
      if (first !== undefined) {
        const other = asString(asRecord(list[first])?.name) ?? `networks[${first}]`;
        report(["networks", i, "vlan"], `VLAN ${network.vlan} is already used by network "${other}" (line ${lineOf(["networks", first])})`);
      } else {
        vlans.set(network.vlan, i);
      }
    }
    const cidr = asString(network.cidr);
    if (cidr !== undefined) {
      const result = parseCidr(cidr);
      if (!result.ok) report(["networks", i, "cidr"], `cidr ${result.reason}`);
      else {
        info.net = result.net;
        const overlapping = parsed.find((other) => networksOverlap(other.net, result.net));
        if (overlapping) {
          report(["networks", i, "cidr"], `cidr ${cidr} overlaps ${formatCidr(overlapping.net)} (line ${lineOf(["networks", overlapping.index, "cidr"])})`);
        }
        parsed.push({ index: i, net: result.net });
      }
    }
    const gateway = asString(network.gateway);
    if (gateway !== undefined) {
      const address = parseIpv4(gateway);
      if (address === undefined) report(["networks", i, "gateway"], `gateway "${gateway}" is not an IPv4 address`);
      else if (info.net && !usableIn(info.net, address)) {
        report(["networks", i, "gateway"], `gateway ${gateway} is not a usable address of ${formatCidr(info.net)}`);
      } else {
        info.gateway = address;
      }
    }
    // The policy pack tells a DMZ port group by the word dmz in its name: only a DMZ may carry it.
    if (name !== undefined && isDmzName(name) && info.purpose !== undefined && info.purpose !== "dmz") {
      report(["networks", i, "name"], `named as a DMZ, but its purpose is ${info.purpose}: only a purpose: dmz network may have the word dmz in its name`);
    }
    if (info.purpose === "drill" && network.isolated !== true) {
      report(["networks", i], `a drill network must be isolated (add isolated: true)`);
    }
  });
  return byName;
}

function usableIn(net: Ipv4Network, address: number): boolean {
  if (!networkContains(net, address)) return false;
  return net.prefix >= 31 || (address !== net.network && address !== net.broadcast);
}

interface References {
  datastores: Map<string, number>;
  templates: Map<string, number>;
  tiers: Map<number, number>;
  networks: Map<string, NetworkInfo>;
}

function known(names: Iterable<string | number>): string {
  const list = [...names].map(String);
  return list.length ? list.join(", ") : "none defined";
}

function checkHosts(root: Record<string, unknown>, refs: References, lineOf: (path: DataPath) => number, report: Report): void {
  const names = new Map<string, number>();
  const ips = new Map<number, number>();
  const hosts = asArray(root.hosts);
  const hostName = (i: number): string => asString(asRecord(hosts[i])?.name) ?? `hosts[${i}]`;
  hosts.forEach((entry, i) => {
    const host = asRecord(entry);
    if (!host) return;
    const at = (field: string): DataPath => ["hosts", i, field];

    const name = asString(host.name);
    if (name !== undefined) {
      const first = names.get(name);
      if (first !== undefined) report(at("name"), `duplicate host name "${name}" (first defined at line ${lineOf(["hosts", first])})`);
      else names.set(name, i);
    }

    const networkName = asString(host.network);
    const network = networkName !== undefined ? refs.networks.get(networkName) : undefined;
    if (networkName !== undefined && !network) {
      report(at("network"), `network "${networkName}" does not exist (networks: ${known(refs.networks.keys())})`);
    }
    if (network && host.role === "db" && network.purpose === "dmz") {
      report(at("network"), `a db host must not be on the dmz network "${networkName}"`);
    }

    const ip = asString(host.ip);
    const address = ip !== undefined ? parseIpv4(ip) : undefined;
    if (ip !== undefined && address === undefined) report(at("ip"), `ip "${ip}" is not an IPv4 address`);
    if (ip !== undefined && address !== undefined) {
      const first = ips.get(address);
      if (first !== undefined) {
        report(at("ip"), `duplicate IP ${ip} (already used by host "${hostName(first)}" at line ${lineOf(["hosts", first, "ip"])})`);
      } else {
        ips.set(address, i);
      }
      if (network?.net) {
        if (!networkContains(network.net, address)) {
          report(at("ip"), `ip ${ip} is outside network "${networkName}" (${formatCidr(network.net)})`);
        } else if (!usableIn(network.net, address)) {
          report(at("ip"), `ip ${ip} is the network or broadcast address of "${networkName}" (${formatCidr(network.net)})`);
        } else if (network.gateway === address) {
          report(at("ip"), `ip ${ip} is the gateway of network "${networkName}"`);
        }
      }
    }

    const template = asString(host.template);
    if (template !== undefined && !refs.templates.has(template)) {
      report(at("template"), `template "${template}" does not exist (templates: ${known(refs.templates.keys())})`);
    }
    const datastore = asString(host.datastore);
    if (datastore !== undefined && !refs.datastores.has(datastore)) {
      report(at("datastore"), `datastore "${datastore}" does not exist (datastores: ${known(refs.datastores.keys())})`);
    }
    if (typeof host.drTier === "number" && !refs.tiers.has(host.drTier)) {
      report(at("drTier"), `drTier ${host.drTier} does not exist (drTiers: ${known(refs.tiers.keys())})`);
    }
    if (host.standbyFor !== undefined && root.site === "primary") {
      report(at("standbyFor"), `standbyFor is only allowed on the secondary site`);
    }
    if (host.activeOnly === true && root.site === "primary") {
      report(at("activeOnly"), `activeOnly is only allowed on the secondary site`);
    }
  });
}
