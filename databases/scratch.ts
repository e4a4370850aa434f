import { spawn } from "node:child_process";
import { PassThrough } from "node:stream";
import { DcctlError } from "../util/errors.js";
import { lastLine } from "../util/process.js";
import { toolEnv } from "../util/tools.js";
import { expectOk, type Executor } from "../hosts/executor.js";
import { SCRATCH_PREFIX } from "./pitr.js";

/**
 * Where a point-in-time restore's scratch server lives on its target: a private folder (0700, under /var/tmp: a data
 * directory can outgrow a RAM-backed /tmp), filled from a folder here by tar over the target's SSH connection.
 */

/**
 * Makes the folder, unpacks the tar on stdin into it, runs the optional command with the folder as its last argument
 * (an engine's preparation of a base backup), gives it to the server's account and prints it. A failure removes it.
 */
const UNPACK_SCRIPT = `set -e
owner=$1; shift
d=$(mktemp -d /var/tmp/dcctl-pitr-XXXXXXXX)
trap 'rm -rf -- "$d" "$d.log"' EXIT
tar -x -C "$d" -f -
if [ $# -gt 0 ]; then "$@" "$d" >"$d.log" 2>&1 || { tail -n 3 "$d.log" >&2; exit 1; }; fi
chown -R "$owner" "$d"
chmod 0700 "$d"
rm -f -- "$d.log"
trap - EXIT
echo "$d"`;

export interface ShipOptions {
  /** The OS account the scratch server runs as: the folder becomes its. */
  owner: string;
  /** Names (tar patterns) left out. */
  exclude?: string[];
  /** Run on the target with the folder appended, before it is handed over (e.g. `mariadb-backup --prepare --target-dir`). */
  then?: string[];
  /** What is carried, for messages ("the recovered data"). */
  what: string;
  timeoutMs?: number;
}

/** Carries a local folder into a new scratch folder on the target; the folder there. */
export async function shipToScratch(local: string, exec: Executor, o: ShipOptions): Promise<string> {
  const excludes = (o.exclude ?? []).flatMap((e) => ["--exclude", e]);
  const tar = spawn("tar", ["-C", local, ...excludes, "-cf", "-", "."], { stdio: ["ignore", "pipe", "pipe"], env: toolEnv() });
  const pipe = new PassThrough();
  tar.stdout.pipe(pipe);
  let tarErr = "";
  tar.stderr.on("data", (b: Buffer) => (tarErr += b.toString()));
  const tarDone = new Promise<number>((resolve) => tar.on("close", (code) => resolve(code ?? 1)));
  const res = await exec.run(["sh", "-c", UNPACK_SCRIPT, "dcctl-pitr-unpack", o.owner, ...(o.then ?? [])], { stdin: pipe, ...(o.timeoutMs === undefined ? {} : { timeoutMs: o.timeoutMs }) });
  const tarCode = await tarDone;
  if (tarCode !== 0) throw new DcctlError(`tar of ${o.what} failed: ${lastLine(tarErr) || `exit ${tarCode}`}`);
  const dir = expectOk(res, [`unpacking ${o.what}`], exec.target).stdout.trim().split("\n").pop() ?? "";
  if (!dir.startsWith(SCRATCH_PREFIX)) throw new DcctlError(`unpacking ${o.what} on ${exec.target} printed no folder`);
  return dir;
}
