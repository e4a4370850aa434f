import type { Argv, CommandModule } from "yargs";
import { InputError } from "../util/errors.js";
import { textTable } from "../util/table.js";
import { checkInventoryPolicies, checkRpoPromises, loadPolicies } from "../backup/policies.js";
import {
  ROLES,
  SITE_NAMES,
  allHosts,
  isRole,
  loadSiteFile,
  loadSites,
  siteFilePath,
  siteSourceFile,
  type Site,
  type SiteHost,
  type SiteName,
} from "../inventory/index.js";

/** `dcctl inventory validate|show`: check the site files, list their hosts. */

interface ValidateArgs {
  site?: string;
  file?: string;
  json: boolean;
}

interface ShowArgs {
  site?: string;
  role?: string;
  json: boolean;
}

const validateCommand: CommandModule<object, ValidateArgs> = {
  command: "validate",
  describe: "check the site files; every problem as file:line: message (exit 2), an RPO no protection meets as a warning",
  builder: (y: Argv<object>): Argv<ValidateArgs> =>
    y
      .option("site", { type: "string", describe: `check only this site's file: ${SITE_NAMES.join(" or ")} (default: both, and the rules across them)` })
      .option("file", { type: "string", describe: "check this site file instead of the default ones" })
      .option("json", { type: "boolean", default: false, describe: "print the checked files as JSON" })
      .conflicts("site", "file")
      .example("$0 inventory validate", "check stacks/sites/primary.yaml, secondary.yaml and the rules across them")
      .example("$0 inventory validate --file my-site.yaml", "check one file"),
  handler: (args) => {
    const site = siteOption("validate", args.site);
    const checked: { file: string; site: SiteName; hosts: number }[] = [];
    const add = (site: Site, fallback: string): void => {
      checked.push({ file: siteSourceFile(site) ?? fallback, site: site.site, hosts: site.hosts.length });
    };
    if (args.file !== undefined) {
      add(loadSiteFile(args.file), args.file);
    } else if (site !== undefined) {
      add(loadSiteFile(siteFilePath(site)), siteFilePath(site));
    } else {
      const sites = loadSites();
      const policies = loadPolicies();
      // A backupPolicy that names no policy would otherwise pass here and fail only when a backup is due.
      const problems = checkInventoryPolicies(sites, policies);
      if (problems.length) throw new InputError(problems);
      // On stderr in both modes, so that stdout (the --json array included) stays what scripts already read.
      for (const warning of checkRpoPromises(sites, policies)) process.stderr.write(warning + "\n");
      add(sites.primary, siteFilePath("primary"));
      add(sites.secondary, siteFilePath("secondary"));
    }
    if (args.json) process.stdout.write(JSON.stringify(checked, null, 2) + "\n");
    else for (const c of checked) process.stdout.write(`ok: ${c.file}: ${c.hosts} hosts\n`);
  },
};

const showCommand: CommandModule<object, ShowArgs> = {
  command: "show",
  describe: "list the hosts of the inventory",
  builder: (y: Argv<object>): Argv<ShowArgs> =>
    y
      .option("site", { type: "string", describe: `only this site's hosts: ${SITE_NAMES.join(" or ")}` })
      .option("role", { type: "string", describe: `only hosts of this role (${ROLES.join(", ")})` })
      .option("json", { type: "boolean", default: false, describe: "print an array of hosts, each with its site" }),
  handler: (args) => {
    const site = siteOption("show", args.site);
    const role = args.role;
    if (role !== undefined && !isRole(role)) {
      throw new InputError([`dcctl inventory show: unknown role "${role}" (expected one of: ${ROLES.join(", ")})`]);
    }
    const hosts = selectHosts(site).filter((host) => role === undefined || host.role === role);
    if (args.json) process.stdout.write(JSON.stringify(hosts, null, 2) + "\n");
    else process.stdout.write(hostTable(hosts));
  },
};

/** The --site value, checked here so that a wrong one is one clear line (yargs' own message spans several). */
function siteOption(command: string, value: string | undefined): SiteName | undefined {
  if (value === undefined) return undefined;
  const site = SITE_NAMES.find((name) => name === value);
  if (!site) throw new InputError([`dcctl inventory ${command}: unknown site "${value}" (expected one of: ${SITE_NAMES.join(", ")})`]);
  return site;
}

function selectHosts(site: SiteName | undefined): SiteHost[] {
  if (site === undefined) return allHosts(loadSites());
  return loadSiteFile(siteFilePath(site)).hosts.map((host) => ({ site, ...host }));
}

function hostTable(hosts: SiteHost[]): string {
  const header = ["NAME", "SITE", "ROLE", "CPUS", "MEMORY", "NETWORK", "IP", "BACKUP POLICY", "DR TIER"];
  const rows = hosts.map((h) => [h.name, h.site, h.role, String(h.cpus), `${h.memoryGb} GB`, h.network, h.ip, h.backupPolicy, String(h.drTier)]);
  return textTable(header, rows) + (hosts.length ? "" : "(no hosts)\n");
}

export const inventoryCommands: CommandModule<object, object> = {
  // Its command and description are in ./commands.ts, which lists the groups without loading them.
  builder: (y: Argv<object>): Argv<object> =>
    y.command(validateCommand).command(showCommand).demandCommand(1, "name an inventory command: validate or show"),
  handler: () => undefined,
};
