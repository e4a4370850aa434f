import { statSync } from "node:fs";
import { isIP } from "node:net";

/**
 * The `soc:` section of the repositories file (backup/repositories.ts): the province's syslog collectors that receive
 * dcctl's events (RFC 5424 over TLS, RFC 5425), and whether they also go to journald when dcctl runs under systemd.
 * The schema checks the shape; what it cannot say (a name used twice, a key file others can read, a file that is not
 * there) is checked here, with a path into the file so that the loader names the line.
 *
 *   soc:
 *     collectors:
 *       - host: soc.qn.gov.vn          # the collector; port 6514 by default (RFC 5425)
 *         caFile: /etc/dcctl/soc/ca.pem           # the CA that signed the collector's certificate
 *         certFile: /etc/dcctl/soc/dcctl.pem      # a client certificate, when the collector asks for one
 *         keyFile: /etc/dcctl/soc/dcctl.key       #   and its key, mode 0600
 *         serverName: soc.qn.gov.vn    # the name its certificate must carry (default: host)
 *     facility: authpriv               # syslog facility of every message (default authpriv, as sudo's records)
 *     journald: true                   # also to journald under systemd (default)
 */

export const FACILITIES = { kern: 0, user: 1, daemon: 3, auth: 4, authpriv: 10, local0: 16, local1: 17, local2: 18, local3: 19, local4: 20, local5: 21, local6: 22, local7: 23 } as const;
export type Facility = keyof typeof FACILITIES;

/** RFC 5425's port for syslog over TLS. */
export const SYSLOG_TLS_PORT = 6514;

export interface CollectorSettings {
  /** How the spool and the messages name it: its own `name`, else host:port. */
  name: string;
  host: string;
  port: number;
  /** Absolute paths, read at each delivery (a renewed certificate needs no restart). */
  caFile: string;
  certFile?: string;
  keyFile?: string;
  /** The name the collector's certificate must carry (a DNS name, or an IP address in its SANs). */
  serverName: string;
}

export interface SocConfig {
  collectors: CollectorSettings[];
  facility: Facility;
  /** Send each event to journald too when dcctl runs under systemd. */
  journald: boolean;
}

export interface RawSocConfig {
  collectors?: { name?: string; host: string; port?: number; caFile: string; certFile?: string; keyFile?: string; serverName?: string }[];
  facility?: Facility;
  journald?: boolean;
}

const text = { type: "string", minLength: 1 } as const;

/** The section's schema, for the repositories file's. */
export const SOC_SCHEMA = {
  type: "object",
  additionalProperties: false,
  description: "The province's SOC: syslog collectors that receive every action's event (RFC 5424 over TLS), and journald under systemd. See docs/operator/soc-events.md.",
  properties: {
    collectors: {
      type: "array",
      description: "Each collector receives every event, in order, each with its own place in the spool.",
      items: {
        type: "object",
        additionalProperties: false,
        required: ["host", "caFile"],
        // draft-07 "dependencies": the validators are compiled for draft-07, which ignores dependentRequired.
        dependencies: { certFile: ["keyFile"], keyFile: ["certFile"] },
        properties: {
          name: { type: "string", pattern: "^[A-Za-z0-9._-]{1,64}$", description: "Its name in the spool and in `dcctl events status` (default host:port)." },
          host: { ...text, description: "The collector's address or name." },
          port: { type: "integer", minimum: 1, maximum: 65535, default: SYSLOG_TLS_PORT, description: "Syslog over TLS (RFC 5425)." },
          caFile: { ...text, description: "The CA (PEM) that signed the collector's certificate." },
          certFile: { ...text, description: "A client certificate (PEM) for a collector that asks for one; with keyFile." },
          keyFile: { ...text, description: "The client certificate's key (PEM), mode 0600; with certFile." },
          serverName: { ...text, description: "The name the collector's certificate must carry (default host)." },
        },
      },
    },
    facility: { enum: Object.keys(FACILITIES), default: "authpriv", description: "The syslog facility of every message." },
    journald: { type: "boolean", default: true, description: "Also send each event to journald, with DCCTL_* fields, when dcctl runs under systemd." },
  },
} as const;

export interface SocProblem {
  path: (string | number)[];
  message: string;
}

/** The section with defaults and absolute paths, and whatever in it cannot work. */
export function socConfig(raw: RawSocConfig, abs: (path: string) => string): { value: SocConfig; problems: SocProblem[] } {
  const problems: SocProblem[] = [];
  const seen = new Map<string, number>();
  const collectors = (raw.collectors ?? []).map((c, i): CollectorSettings => {
    const port = c.port ?? SYSLOG_TLS_PORT;
    const name = c.name ?? `${c.host}:${port}`;
    const at = (field: string): (string | number)[] => ["soc", "collectors", i, field];
    const first = seen.get(name);
    if (first !== undefined) problems.push({ path: at(c.name ? "name" : "host"), message: `soc.collectors.${i}: collector ${name} is also soc.collectors.${first}: each needs its own name` });
    seen.set(name, i);
    const files: [string, string | undefined][] = [["caFile", c.caFile], ["certFile", c.certFile], ["keyFile", c.keyFile]];
    const out: CollectorSettings = { name, host: c.host, port, caFile: abs(c.caFile), serverName: c.serverName ?? c.host };
    for (const [field, file] of files) {
      if (file === undefined) continue;
      const path = abs(file);
      const why = fileProblem(path, field === "keyFile");
      if (why) problems.push({ path: at(field), message: `soc.collectors.${i}.${field}: ${path}: ${why}` });
      if (field === "certFile") out.certFile = path;
      if (field === "keyFile") out.keyFile = path;
    }
    // Node verifies an address against the certificate's IP SANs, a name against its DNS ones; a name with a port is neither.
    if (/[\s/:]/.test(out.serverName) && isIP(out.serverName) === 0) problems.push({ path: at(c.serverName ? "serverName" : "host"), message: `soc.collectors.${i}: "${out.serverName}" is not a host name or an address a certificate can carry` });
    return out;
  });
  return { value: { collectors, facility: raw.facility ?? "authpriv", journald: raw.journald ?? true }, problems };
}

/** Why a file the feed reads at delivery would fail then: missing, not a file, or (a key) readable by others. */
function fileProblem(path: string, secret: boolean): string | undefined {
  try {
    const st = statSync(path);
    if (!st.isFile()) return "not a regular file";
    if (secret && (st.mode & 0o077) !== 0) return `readable by others (mode 0${(st.mode & 0o777).toString(8)}); chmod 600 it`;
    return undefined;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === "ENOENT" ? "no such file" : (code ?? "cannot be read");
  }
}
