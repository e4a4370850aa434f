import type { Sites } from "../inventory/index.js";
import { labNetwork, labStatus } from "../lab/lab.js";
import type { LabNetwork } from "../lab/network.js";
import { readLabConfig, type LabConfig } from "../lab/paths.js";
import { labDir } from "../lab/state.js";

/** The lab a bench measures, or one line and exit 1 when none runs (benches run on a lab, never start one). */
export function runningLab(bench: string): { dir: string; config: LabConfig; sites: Sites; net: LabNetwork } {
  const dir = labDir();
  const { state } = labStatus(dir);
  const config = readLabConfig(dir);
  if (!state || !config) {
    process.stderr.write(`bench/${bench}: the lab is not running (dcctl lab up)\n`);
    process.exit(1);
  }
  return { dir, config, ...labNetwork(dir) };
}
