import { createHash, createHmac, createPrivateKey, timingSafeEqual, X509Certificate, type KeyObject } from "node:crypto";
import { statSync } from "node:fs";
import { isIP } from "node:net";
import { errorMessage, InputError } from "../util/errors.js";
import { readSmallFile } from "../util/files.js";

/**
 * Who may see the console. It is bound to loopback unless told otherwise; an address other machines can reach needs
 * a token (a 0600 file) or TLS with a client CA, because the page names every host, repository and failed job of the
 * data centre.
 */

/** A TCP address, or a Unix socket (`unix:PATH`): only this machine's processes that may open the file reach it. */
export type ListenAddress = { host: string; port: number; path?: undefined } | { path: string; host?: undefined; port?: undefined };

export const DEFAULT_LISTEN = "127.0.0.1:8088";

/** `127.0.0.1:8088`, `[::1]:8088`, `0.0.0.0:0`, `unix:/run/dcctl/console.sock`; anything else is bad input naming the flag. */
export function parseListen(text: string): ListenAddress {
  if (text.startsWith("unix:")) {
    const path = text.slice(5);
    if (!path.startsWith("/")) throw new InputError([`dcctl serve: --listen "${text}": a Unix socket needs an absolute path (unix:/run/dcctl/console.sock)`]);
    return { path };
  }
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text.trim());
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (!m || host === undefined || !(port >= 0 && port <= 65535)) {
    throw new InputError([`dcctl serve: --listen "${text}" is not HOST:PORT (e.g. 127.0.0.1:8088, [::1]:8088; port 0 picks a free one)`]);
  }
  if (m[1] !== undefined && isIP(host) !== 6) throw new InputError([`dcctl serve: --listen "${text}": ${host} in brackets is not an IPv6 address`]);
  return { host, port };
}

/** Only this machine can reach it: 127.0.0.0/8, ::1 (also as ::ffff:127.x) and localhost. */
export function isLoopback(host: string): boolean {
  if (host === "localhost" || host === "::1" || host === "0:0:0:0:0:0:0:1") return true;
  const v4 = host.startsWith("::ffff:") ? host.slice(7) : host;
  return isIP(v4) === 4 && v4.startsWith("127.");
}

/** A URL authority for the address: IPv6 in brackets. */
export function hostPort(a: ListenAddress): string {
  if (a.path !== undefined) return `unix:${a.path}`;
  return `${isIP(a.host) === 6 ? `[${a.host}]` : a.host}:${a.port}`;
}

/**
 * The token of a token file: the file must be this user's alone (no group or other bits) and the token long enough
 * not to be guessed. Bad input (exit 2) otherwise, naming the file.
 */
export function readTokenFile(path: string): string {
  let mode: number;
  let text: string;
  try {
    mode = statSync(path).mode;
    text = readSmallFile(path, MAX_FLAG_FILE_BYTES);
  } catch (e) {
    throw new InputError([`dcctl serve: --token-file ${path}: cannot read it: ${(e as NodeJS.ErrnoException).code ?? errorMessage(e)}`]);
  }
  if ((mode & 0o077) !== 0) throw new InputError([`dcctl serve: --token-file ${path} is readable by others (mode 0${(mode & 0o777).toString(8)}); chmod 600 it`]);
  const token = text.trim();
  if (token.length < 16) throw new InputError([`dcctl serve: --token-file ${path} holds ${token.length ? "a token shorter than 16 characters" : "no token"}; write a long random one (e.g. openssl rand -hex 24)`]);
  if (/\s/.test(token)) throw new InputError([`dcctl serve: --token-file ${path}: the token must be one word without spaces`]);
  return token;
}

/** A token, a certificate, a key or a CA bundle is a few KiB; a file named by a flag past this is a mistake. */
const MAX_FLAG_FILE_BYTES = 1024 * 1024;

/** A file a flag names, read whole (bounded, never a FIFO or a device), or one line naming the flag. */
function readFlagFile(flag: string, path: string): string {
  try {
    return readSmallFile(path, MAX_FLAG_FILE_BYTES);
  } catch (e) {
    throw new InputError([`dcctl serve: ${flag} ${path}: cannot read it: ${(e as NodeJS.ErrnoException).code ?? errorMessage(e)}`]);
  }
}

/** Every certificate of a PEM file; none, or one that does not parse, is bad input naming the flag. */
function pemCertificates(flag: string, path: string, pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (!blocks.length) throw new InputError([`dcctl serve: ${flag} ${path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`]);
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (e) {
      throw new InputError([`dcctl serve: ${flag} ${path}: certificate ${i + 1} does not parse: ${errorMessage(e)}`]);
    }
  });
}

/**
 * The certificate, key and client CA of `dcctl serve`, read and checked before anything listens: each file must hold
 * what its flag says, and the key must be the certificate's. Node would take a CA file of garbage and start, and
 * name no file for a key that does not match.
 */
export function readTlsFiles(files: { cert: string; key: string; ca?: string | undefined }): { cert: Buffer; key: Buffer; ca?: Buffer } {
  const cert = readFlagFile("--tls-cert", files.cert);
  const key = readFlagFile("--tls-key", files.key);
  const [leaf] = pemCertificates("--tls-cert", files.cert, cert);
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (e) {
    throw new InputError([`dcctl serve: --tls-key ${files.key} holds no usable private key (PEM, unencrypted): ${errorMessage(e)}`]);
  }
  if (leaf && !leaf.checkPrivateKey(privateKey)) throw new InputError([`dcctl serve: --tls-key ${files.key} is not the key of the certificate in --tls-cert ${files.cert}`]);
  if (files.ca === undefined) return { cert: Buffer.from(cert), key: Buffer.from(key) };
  const ca = readFlagFile("--client-ca", files.ca);
  pemCertificates("--client-ca", files.ca, ca);
  return { cert: Buffer.from(cert), key: Buffer.from(key), ca: Buffer.from(ca) };
}

export interface Protection {
  token?: string;
  /** TLS with a client CA: every client shows a certificate the CA signed. */
  clientCertificates: boolean;
}

/** Refuses an address other machines can reach without a token or client certificates: one line, exit 2. */
export function checkExposure(address: ListenAddress, p: Protection): void {
  if (address.path !== undefined || isLoopback(address.host) || p.token !== undefined || p.clientCertificates) return;
  throw new InputError([
    `dcctl serve: refusing to listen on ${hostPort(address)} without protection: other machines can reach it; give --token-file F (mode 0600) or --tls-cert/--tls-key with --client-ca, or listen on 127.0.0.1`,
  ]);
}

/** Equal-length digests, so that the comparison takes the same time whatever the guess and however long it is. */
export function sameSecret(given: string, expected: string): boolean {
  const a = createHash("sha256").update(given).digest();
  const b = createHash("sha256").update(expected).digest();
  return timingSafeEqual(a, b);
}

export const SESSION_COOKIE = "dcctl_console";

/** What the browser keeps after `?token=`: derived from the token, so the cookie store never holds the token itself. */
export function sessionValue(token: string): string {
  return createHmac("sha256", token).update("dcctl console session").digest("base64url");
}

/** The value of one cookie of a Cookie header. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * Where the `?token=` redirect sends the browser: the same path and query on this console, never another site. A path
 * that begins with two slashes (`/.//evil.com` is normalised to `//evil.com`) or a backslash is, in a Location
 * header, a reference to another host: its leading slashes are collapsed into one.
 */
export function sameOriginLocation(url: URL): string {
  return `/${url.pathname.replace(/^[/\\]+/, "")}${url.search}`;
}

/** C0 and C1 control characters (NUL, ESC, DEL…): never part of a path the console serves, never echoed. */
const CONTROL = /\p{Cc}/u;

/** Whether a request's path, once percent-decoded, holds a control character or is not valid percent-encoding. */
export function badPath(rawUrl: string): boolean {
  const path = rawUrl.split("?")[0] ?? "";
  try {
    return CONTROL.test(decodeURIComponent(path));
  } catch {
    return true;
  }
}

/** Text shown on a page with every control character replaced (U+FFFD), so that none reaches the browser raw. */
export function printable(text: string): string {
  return text.replace(/\p{Cc}/gu, "\uFFFD");
}

/** The token of an `Authorization: Bearer` header. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  return m?.[1];
}
