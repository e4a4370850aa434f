import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { DcctlError } from "../util/errors.js";

/** One key line of an OpenSSH known_hosts file. */
export interface KnownHostEntry {
  /** `@revoked` or `@cert-authority`, when the line has one. */
  marker?: "revoked" | "cert-authority";
  /** The host patterns, as written (may be hashed `|1|salt|hash`). */
  patterns: string[];
  keyType: string;
  /** The public key blob (SSH wire format), what the server presents. */
  key: Buffer;
  line: number;
}

export class UnknownHostKeyError extends DcctlError {}
export class HostKeyChangedError extends DcctlError {}

/** Parses OpenSSH known_hosts text. Lines that cannot be read are skipped, like ssh does. */
export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  text.split("\n").forEach((raw, i) => {
    const fields = raw.trim().split(/\s+/);
    if (!fields[0] || fields[0].startsWith("#")) return;
    let marker: KnownHostEntry["marker"];
    if (fields[0].startsWith("@")) {
      const m = fields.shift()?.slice(1);
      if (m !== "revoked" && m !== "cert-authority") return;
      marker = m;
    }
    const [hosts, keyType, b64] = fields;
    if (!hosts || !keyType || !b64 || !/^[A-Za-z0-9+/]+=*$/.test(b64)) return;
    const key = Buffer.from(b64, "base64");
    if (blobKeyType(key) !== keyType) return;
    entries.push({ marker, patterns: hosts.split(","), keyType, key, line: i + 1 });
  });
  return entries;
}

export function readKnownHosts(path: string): KnownHostEntry[] {
  try {
    return parseKnownHosts(readFileSync(path, "utf8"));
  } catch (e) {
    throw new DcctlError(`cannot read known_hosts file ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** The name known_hosts uses for a host: `host` on port 22, else `[host]:port`. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** OpenSSH's fingerprint of a public key blob: `SHA256:` and unpadded base64 of its SHA-256. */
export function fingerprint(key: Buffer): string {
  return "SHA256:" + createHash("sha256").update(key).digest("base64").replace(/=+$/, "");
}

/** The key type named inside an SSH public key blob (its first string). */
export function blobKeyType(key: Buffer): string | undefined {
  if (key.length < 4) return undefined;
  const len = key.readUInt32BE(0);
  if (len === 0 || len > 64 || key.length < 4 + len) return undefined;
  return key.subarray(4, 4 + len).toString("latin1");
}

/** A known_hosts line in OpenSSH format, for pinning a key. */
export function knownHostsLine(host: string, port: number, key: Buffer): string {
  return `${knownHostsName(host, port)} ${blobKeyType(key) ?? "unknown"} ${key.toString("base64")}`;
}

/** Does one host pattern (plain, wildcard, or hashed) match `name`? */
function patternMatches(pattern: string, name: string): boolean {
  if (pattern.startsWith("|1|")) {
    const [, , salt, hash] = pattern.split("|");
    if (!salt || !hash) return false;
    const mac = createHmac("sha1", Buffer.from(salt, "base64")).update(name).digest();
    const want = Buffer.from(hash, "base64");
    return want.length === mac.length && timingSafeEqual(want, mac);
  }
  const re = new RegExp("^" + pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".") + "$", "i");
  return re.test(name);
}

/** OpenSSH semantics: a line applies when some pattern matches and no negated (`!`) pattern does. */
export function entryMatches(entry: KnownHostEntry, name: string): boolean {
  let matched = false;
  for (const p of entry.patterns) {
    if (p.startsWith("!")) {
      if (patternMatches(p.slice(1), name)) return false;
    } else if (patternMatches(p, name)) {
      matched = true;
    }
  }
  return matched;
}

/** The pinned (not revoked, not CA) keys for host:port. */
export function pinnedKeys(entries: KnownHostEntry[], host: string, port: number): KnownHostEntry[] {
  const name = knownHostsName(host, port);
  return entries.filter((e) => e.marker === undefined && entryMatches(e, name));
}

/**
 * Accepts `presented` only if known_hosts pins exactly this key for host:port. An unknown host or a different key
 * is refused with an error naming the host and the presented fingerprint, so the operator can compare it out of band.
 */
export function verifyHostKey(entries: KnownHostEntry[], host: string, port: number, presented: Buffer, source: string): void {
  const name = knownHostsName(host, port);
  const fp = fingerprint(presented);
  const type = blobKeyType(presented) ?? "unknown";
  if (entries.some((e) => e.marker === "revoked" && e.key.equals(presented))) {
    throw new HostKeyChangedError(`host key of ${name} (${type} ${fp}) is marked @revoked in ${source}; refusing to connect`);
  }
  const pinned = pinnedKeys(entries, host, port);
  if (pinned.length === 0) {
    throw new UnknownHostKeyError(`unknown host ${name}: its ${type} key ${fp} is not pinned in ${source}; refusing to connect`);
  }
  if (pinned.some((e) => e.key.equals(presented))) return;
  const was = pinned.map((e) => `${e.keyType} ${fingerprint(e.key)} (line ${e.line})`).join(", ");
  throw new HostKeyChangedError(`host key of ${name} has CHANGED: it presented ${type} ${fp}, but ${source} pins ${was}; refusing to connect`);
}
