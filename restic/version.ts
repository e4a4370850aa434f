import { run } from "../util/process.js";
import { DcctlError } from "../util/errors.js";

export interface ResticVersion {
  major: number;
  minor: number;
  patch: number;
  text: string;
}

// One probe per binary per process: every job asks, and `restic version` costs a process start.
const probes = new Map<string, Promise<ResticVersion>>();

/** The version of the restic binary at `bin`, probed once and cached. */
export function resticVersion(bin: string): Promise<ResticVersion> {
  let probe = probes.get(bin);
  if (!probe) {
    probe = run(bin, ["version"], { timeoutMs: 30_000 }).then((res) => {
      const v = parseResticVersion(res.stdout);
      if (res.code !== 0 || !v) throw new DcctlError(`cannot tell the version of restic at ${bin}: ${res.stderr.trim() || res.stdout.trim()}`);
      return v;
    });
    probe.catch(() => probes.delete(bin));
    probes.set(bin, probe);
  }
  return probe;
}

/** The version `restic version` prints ("restic 0.18.1 compiled with go1.24 on linux/amd64"), if the text has one. */
export function parseResticVersion(text: string): ResticVersion | undefined {
  const m = /restic (\d+)\.(\d+)\.(\d+)/.exec(text);
  return m ? { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]), text: m[0] } : undefined;
}

export function atLeast(v: ResticVersion, major: number, minor: number): boolean {
  return v.major > major || (v.major === major && v.minor >= minor);
}

/** `backup --stdin-from-command` arrived in restic 0.17.0; with it restic refuses to save a snapshot when the command fails. */
export function supportsStdinFromCommand(v: ResticVersion): boolean {
  return atLeast(v, 0, 17);
}
