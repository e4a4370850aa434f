import { DcctlError } from "../util/errors.js";
import { lastLine, run } from "../util/process.js";
import { toolPath } from "../util/tools.js";

/** How the lab and the tests reach a vCenter (vcsim) with govc: the password reaches govc only by environment. */
export interface VcenterConnection {
  url: string;
  username: string;
  password: string;
  insecure?: boolean;
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
