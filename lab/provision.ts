import { lstatSync, readlinkSync, rmSync, symlinkSync } from "node:fs";
import { dirname, join } from "node:path";
import { SITE_NAMES, loadSites, type SiteName } from "../inventory/index.js";
import { replicationPairs, setupPair } from "../backup/replication/index.js";
import { loadBackupConfig } from "../backup/repositories.js";
import { hostPool } from "../hosts/index.js";
import { localBackend } from "../stacks/automation.js";
import { upSiteStack } from "../stacks/up.js";
import { errorMessage } from "../util/errors.js";
import { makeDir } from "../util/dirs.js";
import { initSiteRepository } from "./backup-config.js";
import { labPaths } from "./paths.js";
import { readLabState } from "./state.js";

/**
 * One site's part of `dcctl lab up`, run inside that site's management namespace as its control plane would: its own
 * repository created on first use, then its own stack applied to its own vCenter with the state kept at that site.
 *   provision.js LAB_DIR SITE [--no-stack]
 * Prints `stack SITE: <changes>` for lab up to relay.
 */
const [dir = "", siteArg = "", flag] = process.argv.slice(2);
const site = siteArg as SiteName;

/**
 * The secondary's standbys made replicas of their primaries, as its operators would after building the site: each
 * pair set up once and kept afterwards. A standby that holds data of its own (it was failed over to) is not
 * overwritten: the line says so, and `dcctl replication setup --pair H --yes` is the operator's decision.
 */
async function replicateStandbys(dir: string): Promise<void> {
  const paths = labPaths(dir);
  const config = loadBackupConfig(paths.reposFile("secondary"));
  const exec = hostPool(config);
  try {
    for (const pair of replicationPairs(loadSites(paths.sites))) {
      const result = await setupPair(config, pair, exec, { overwrite: false, log: () => undefined }).catch((e: unknown) => ({ action: "refused", notes: [errorMessage(e)] }));
      process.stdout.write(`replication ${pair.name}: ${result.action}: ${result.notes.join("; ")}\n`);
    }
  } finally {
    await exec.closeAll();
  }
}

/**
 * The DR engine's infra steps (cli/dr.ts) keep their Pulumi state in $DCCTL_STATE_DIR/pulumi; each run of the lab has
 * its own (vcsim forgets everything when it stops). Point the site's state folder at this run's, so that a runbook's
 * `infra` step finds the site's stack with its vCenter address and credentials. A real folder there is left alone.
 */
function linkPulumiState(link: string, target: string): void {
  let current: string | undefined;
  try {
    current = lstatSync(link).isSymbolicLink() ? readlinkSync(link) : "(not a link)";
  } catch {
    current = undefined;
  }
  if (current === target || current === "(not a link)") return;
  if (current !== undefined) rmSync(link, { force: true });
  makeDir(dirname(link));
  symlinkSync(target, link);
}

try {
  if (!SITE_NAMES.includes(site)) throw new Error(`usage: provision.js LAB_DIR primary|secondary [--no-stack]`);
  const paths = labPaths(dir);
  const state = readLabState(dir);
  if (!state) throw new Error(`the lab in ${dir} is not running`);
  await initSiteRepository(dir, site);
  const backendDir = paths.pulumiOf(state.supervisorPid, site);
  makeDir(backendDir);
  linkPulumiState(join(paths.stateDir(site), "pulumi"), backendDir);
  if (flag !== "--no-stack") {
    const vc = state.vcenters[site];
    if (!vc) throw new Error(`the lab has no vCenter for ${site}`);
    const vcenter = { url: vc.url, user: vc.username, password: vc.password, insecure: true };
    const res = await upSiteStack(site, { backend: localBackend(backendDir), sitesDir: paths.sites, mode: "standby", vcenter, what: `pulumi up of the lab's stack ${site}` });
    const changes = Object.entries(res.summary.resourceChanges ?? {}).map(([k, v]) => `${k} ${v}`).join(", ");
    process.stdout.write(`stack ${site}: ${changes}\n`);
  }
  if (site === "secondary") await replicateStandbys(dir);
} catch (e) {
  process.stderr.write(`${errorMessage(e)}\n`);
  process.exit(1);
}
