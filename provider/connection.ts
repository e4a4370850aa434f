import * as pulumi from "@pulumi/pulumi";
import { DcctlError } from "../util/errors.js";
import { run, lastLine } from "../util/process.js";
import { toolPath } from "../util/tools.js";

/** How the provider reaches vCenter. The password travels as a Pulumi secret and reaches govc only by environment. */
export interface VcenterConnection {
  url: string;
  username: string;
  password: string;
  insecure?: boolean;
}

/** Inputs reach a Node provider with secrets still wrapped in the engine's envelope; this removes them at every depth. */
export function unwrapSecrets(value: unknown): unknown {
  if (pulumi.runtime.isRpcSecret(value)) return unwrapSecrets(pulumi.runtime.unwrapRpcSecret(value));
  if (Array.isArray(value)) return value.map(unwrapSecrets);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, unwrapSecrets(v)]));
  }
  return value;
}

export function connectionOf(inputs: Record<string, unknown>): VcenterConnection {
  const c = inputs.connection as Partial<VcenterConnection> | undefined;
  if (!c || typeof c.url !== "string" || typeof c.username !== "string" || typeof c.password !== "string") {
    throw new DcctlError("dcvsphere: every resource needs connection {url, username, password}");
  }
  return { url: c.url, username: c.username, password: c.password, insecure: c.insecure ?? false };
}

/** Runs govc against vCenter, credentials by environment only; a failure carries govc's own last line. */
export async function govc(conn: VcenterConnection, args: readonly string[]): Promise<string> {
  const res = await run(toolPath("govc"), args, {
    env: {
      ...process.env,
      GOVC_URL: conn.url,
      GOVC_USERNAME: conn.username,
      GOVC_PASSWORD: conn.password,
      GOVC_INSECURE: conn.insecure ? "1" : "0",
    },
    timeoutMs: 300_000,
  });
  if (res.code !== 0) {
    throw new DcctlError(`govc ${args[0]}: ${lastLine(res.stderr).replace(/^.*govc: /, "") || `exit ${res.code}`}`);
  }
  return res.stdout;
}

export async function govcJson<T>(conn: VcenterConnection, args: readonly string[]): Promise<T> {
  const out = await govc(conn, [args[0] ?? "", "-json", ...args.slice(1)]);
  return JSON.parse(out) as T;
}
