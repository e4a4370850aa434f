/** IPv4 addresses and networks as 32-bit unsigned numbers; enough for static addressing checks. */

export interface Ipv4Network {
  /** The network address, host bits zero. */
  network: number;
  prefix: number;
  /** The broadcast address (the last address of the network). */
  broadcast: number;
}

/** The address as a number, or undefined when `text` is not a dotted-quad IPv4 address. */
export function parseIpv4(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = value * 256 + octet;
  }
  return value;
}

export function formatIpv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join(".");
}

function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export type CidrParse = { ok: true; net: Ipv4Network } | { ok: false; reason: string };

/** Parses `a.b.c.d/n`; host bits must be zero. */
export function parseCidr(text: string): CidrParse {
  const match = /^([0-9.]+)\/([0-9]{1,2})$/.exec(text);
  const address = match?.[1] !== undefined ? parseIpv4(match[1]) : undefined;
  const prefix = Number(match?.[2]);
  if (!match || address === undefined || !(prefix >= 0 && prefix <= 32)) {
    return { ok: false, reason: `"${text}" is not an IPv4 network (expected a.b.c.d/n)` };
  }
  const network = (address & maskOf(prefix)) >>> 0;
  if (network !== address) {
    return { ok: false, reason: `"${text}" has host bits set (the network is ${formatIpv4(network)}/${prefix})` };
  }
  return { ok: true, net: { network, prefix, broadcast: (network | (~maskOf(prefix) >>> 0)) >>> 0 } };
}

export function networkContains(net: Ipv4Network, address: number): boolean {
  return address >= net.network && address <= net.broadcast;
}

export function networksOverlap(a: Ipv4Network, b: Ipv4Network): boolean {
  return a.network <= b.broadcast && b.network <= a.broadcast;
}

export function formatCidr(net: Ipv4Network): string {
  return `${formatIpv4(net.network)}/${net.prefix}`;
}
