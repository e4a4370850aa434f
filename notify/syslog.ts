import { SEVERITIES, type FeedEvent } from "./events.js";
import { FACILITIES, type Facility } from "./soc-config.js";

/**
 * An event as an RFC 5424 syslog message, and its octet-counting frame for syslog over TLS (RFC 5425 §4.3):
 *
 *   <PRI>1 TIMESTAMP HOSTNAME dcctl PROCID MSGID [dcctl@32473 uid="…" site="…" …][origin …] MSG
 *
 * MSGID is the catalogue ID (DCCTL-1001), so that a collector's rule needs no parsing of the text. The structured data
 * sits under an SD-ID of ours, `dcctl@32473`: RFC 5424 asks a private SD-ID to carry an IANA enterprise number, and
 * 32473 is the one reserved for documentation and examples (RFC 5612) until the project registers its own; the SOC
 * matches the SD-ID as a whole. MSG is plain UTF-8 without a BOM (RFC 5424's MSG-ANY): collectors that would keep a BOM
 * in the text get none to keep.
 */

export const SD_ID = "dcctl@32473";
export const APP_NAME = "dcctl";

/** RFC 5424 §6.3.3: inside a PARAM-VALUE, '"', '\' and ']' are escaped with a backslash. */
export function sdValue(text: string): string {
  return text.replace(/[\r\n\t]+/g, " ").replace(/[\\"\]]/g, (c) => `\\${c}`);
}

/** A PARAM-NAME or SD-NAME: 1 to 32 printable US-ASCII characters but '=', ' ', ']' and '"'. */
export function isSdName(name: string): boolean {
  return /^[!#-<>-\\^-~]{1,32}$/.test(name);
}

/** HOSTNAME, APP-NAME, PROCID and MSGID: printable US-ASCII without spaces, bounded; "-" (the nil value) when empty. */
function header(text: string, max: number): string {
  const t = text.replace(/[^!-~]/g, "").slice(0, max);
  return t || "-";
}

/** The parameters of our SD element, in a fixed order: those of every event, then the kind's own. */
export function sdParams(e: FeedEvent): [string, string][] {
  const params: [string, string | undefined][] = [
    ["uid", e.uid],
    ["site", e.site],
    ["user", e.user],
    ["sudoUser", e.sudoUser],
    ["approver", e.approver],
    ["action", e.action],
    ["target", e.target],
    ["run", e.run],
    ["outcome", e.outcome],
    ["chainSeq", e.chain ? String(e.chain.seq) : undefined],
    ["chainHead", e.chain ? `sha256:${e.chain.hash}` : undefined],
    ...Object.entries(e.data ?? {}),
  ];
  return params.filter((p): p is [string, string] => p[1] !== undefined && isSdName(p[0]));
}

/** The event as one RFC 5424 message (a string of UTF-8 text). */
export function syslogMessage(e: FeedEvent, facility: Facility): string {
  const pri = FACILITIES[facility] * 8 + SEVERITIES[e.severity];
  const ours = `[${SD_ID}${sdParams(e)
    .map(([k, v]) => ` ${k}="${sdValue(v)}"`)
    .join("")}]`;
  const origin = `[origin software="${APP_NAME}" swVersion="${sdValue(e.version)}"]`;
  const msg = e.message.replace(/[\r\n]+/g, " ");
  return `<${pri}>1 ${e.at} ${header(e.host, 255)} ${APP_NAME} ${header(String(e.pid), 128)} ${header(e.id, 32)} ${ours}${origin}${msg ? ` ${msg}` : ""}`;
}

/** RFC 5425's octet-counting frame: the message's length in bytes, a space, the message. */
export function octetFrame(message: string): Buffer {
  const body = Buffer.from(message, "utf8");
  return Buffer.concat([Buffer.from(`${body.length} `, "ascii"), body]);
}

/**
 * The messages of a stream of octet-counted frames, and the bytes after the last whole one (a frame still arriving).
 * The inverse of octetFrame, for tests and for a reader of a capture; a length that is not one ends the stream.
 */
export function parseFrames(data: Buffer): { messages: string[]; rest: Buffer } {
  const messages: string[] = [];
  let at = 0;
  for (;;) {
    const space = data.indexOf(0x20, at);
    if (space < 0) break;
    const lenText = data.toString("ascii", at, space);
    if (!/^[1-9]\d{0,8}$/.test(lenText)) throw new Error(`not an octet-counted frame at byte ${at}: "${lenText.slice(0, 12)}"`);
    const end = space + 1 + Number(lenText);
    if (end > data.length) break;
    messages.push(data.toString("utf8", space + 1, end));
    at = end;
  }
  return { messages, rest: data.subarray(at) };
}
