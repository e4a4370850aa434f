import { join, resolve } from "node:path";
import { InputError, errorMessage } from "../util/errors.js";
import { repoRoot } from "../util/tools.js";
import { checkAcrossSites } from "./cross-site-checks.js";
import type { Problem } from "./problems.js";
import { checkStructure, type RawHost, type RawSite } from "./schema-check.js";
import { checkSemantics } from "./semantic-checks.js";
import { DEFAULT_DRILL_EVERY_DAYS, type Host, type Site, type SiteName, type Sites } from "./types.js";
import { cachedYaml } from "../util/yaml-cache.js";
import { displayPath, parseYamlSource, readYamlFile, type DataPath, type YamlSource } from "./yaml-source.js";

/** Where each loaded Site came from, so that later checks (backup policies, runbooks) can point at its lines. */
const sources = new WeakMap<Site, YamlSource>();

/** The folder of the default site files: $DCCTL_SITES_DIR, or <repo>/stacks/sites. */
export function sitesDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.DCCTL_SITES_DIR ? resolve(env.DCCTL_SITES_DIR) : join(repoRoot, "stacks", "sites");
}

/** The file of a site: <dir>/<site>.yaml. */
export function siteFilePath(site: SiteName, dir: string = sitesDir()): string {
  return join(dir, `${site}.yaml`);
}

type ReadResult = { ok: true; site: Site; source: YamlSource } | { ok: false; problems: string[] };

/** Reads, parses and checks one site file; every problem is a `file:line: message` line. */
function readSiteFile(path: string, expected?: SiteName): ReadResult {
  let text: string;
  try {
    text = readYamlFile(path);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : errorMessage(err);
    return { ok: false, problems: [`${displayPath(path)}: cannot read the site file: ${reason}`] };
  }
  // Every timer's backup run reads the same site files: parsed once per text (util/yaml-cache.ts).
  const source: YamlSource = cachedYaml(path, text, parseYamlSource, displayPath);
  if (source.syntaxProblems.length) return { ok: false, problems: source.syntaxProblems };
  if (source.data === undefined || source.data === null) {
    return { ok: false, problems: [source.problem([], "the file is empty (expected a site mapping)")] };
  }

  const structure = checkStructure(source.data);
  const found: Problem[] = structure.ok ? [] : [...structure.problems];
  found.push(...checkSemantics(source.data, source.lineOf));
  if (expected && structure.ok && structure.site.site !== expected) {
    found.push({ path: ["site"], message: `site is "${structure.site.site}" but this is the ${expected} site file (expected site: ${expected})` });
  }
  if (!structure.ok || found.length) return { ok: false, problems: render(source, found) };

  const site = withDefaults(structure.site);
  sources.set(site, source);
  return { ok: true, site, source };
}

/** `file:line: message` lines, ordered by line, without repeats. */
function render(source: YamlSource, problems: Problem[]): string[] {
  const lines = problems
    .map((p, order) => ({ line: source.lineOf(p.path), order, text: source.problem(p.path, p.message) }))
    .sort((a, b) => a.line - b.line || a.order - b.order)
    .map((p) => p.text);
  return [...new Set(lines)];
}

function withDefaults(raw: RawSite): Site {
  const firstDatastore = raw.vcenter.datastores[0] ?? "";
  return {
    site: raw.site,
    description: raw.description ?? "",
    domain: raw.domain,
    dnsServers: [...raw.dnsServers],
    ...(raw.timeZone === undefined ? {} : { timeZone: raw.timeZone }),
    vcenter: { ...raw.vcenter, esxiHosts: [...raw.vcenter.esxiHosts], datastores: [...raw.vcenter.datastores] },
    templates: raw.templates.map((t) => ({ ...t })),
    networks: raw.networks.map((n) => ({ ...n, isolated: n.isolated ?? false })),
    drTiers: raw.drTiers.map((t) => ({ ...t, drillEveryDays: t.drillEveryDays ?? DEFAULT_DRILL_EVERY_DAYS })),
    hosts: raw.hosts.map((h) => hostWithDefaults(h, firstDatastore)),
  };
}

function hostWithDefaults(raw: RawHost, firstDatastore: string): Host {
  const host: Host = {
    name: raw.name,
    role: raw.role,
    cpus: raw.cpus,
    memoryGb: raw.memoryGb,
    disks: raw.disks.map((d) => ({ ...d })),
    network: raw.network,
    ip: raw.ip,
    template: raw.template,
    datastore: raw.datastore ?? firstDatastore,
    backupPolicy: raw.backupPolicy,
    drTier: raw.drTier,
    services: [...(raw.services ?? [])],
    ssh: { host: raw.ssh?.host ?? raw.ip, port: raw.ssh?.port ?? 22, user: raw.ssh?.user ?? "dcctl" },
    activeOnly: raw.activeOnly ?? false,
  };
  if (raw.standbyFor !== undefined) host.standbyFor = raw.standbyFor;
  return host;
}

/**
 * Loads and checks one site file. Throws InputError listing every problem as `file:line: message`.
 * Cross-site rules (standbyFor, the drill network) are checked by loadSites only.
 */
export function loadSiteFile(path: string): Site {
  const result = readSiteFile(path);
  if (!result.ok) throw new InputError(result.problems);
  return result.site;
}

/**
 * Loads both sites from `dir` (<dir>/primary.yaml, <dir>/secondary.yaml), checks each and then the rules that
 * span them. Throws InputError with every problem of both files.
 */
export function loadSites(dir: string = sitesDir()): Sites {
  const primary = readSiteFile(siteFilePath("primary", dir), "primary");
  const secondary = readSiteFile(siteFilePath("secondary", dir), "secondary");
  if (!primary.ok || !secondary.ok) {
    throw new InputError([...(primary.ok ? [] : primary.problems), ...(secondary.ok ? [] : secondary.problems)]);
  }
  const sites: Sites = { primary: primary.site, secondary: secondary.site };
  const sourceOf = { primary: primary.source, secondary: secondary.source };
  const where = (site: SiteName, index: number): string => {
    const source = sourceOf[site];
    return `${source.displayPath}:${source.lineOf(["hosts", index])}`;
  };
  const crossSite = checkAcrossSites(sites, where);
  if (crossSite.length) {
    throw new InputError([
      ...render(primary.source, crossSite.filter((p) => p.site === "primary")),
      ...render(secondary.source, crossSite.filter((p) => p.site === "secondary")),
    ]);
  }
  return sites;
}

/** The file a loaded site came from, as shown in messages; undefined for a Site not made by this loader. */
export function siteSourceFile(site: Site): string | undefined {
  return sources.get(site)?.displayPath;
}

/**
 * `file:line` of a node of a loaded site, e.g. sourceLocation(site, ["hosts", 3, "backupPolicy"]), for callers that
 * check references the inventory cannot (backup policy names). Undefined for a Site not made by this loader.
 */
export function sourceLocation(site: Site, path: DataPath): string | undefined {
  const source = sources.get(site);
  return source ? `${source.displayPath}:${source.lineOf(path)}` : undefined;
}

/** `file:line` of a host of a loaded site (of one of its fields when `field` is given). */
export function hostLocation(site: Site, hostName: string, field?: keyof Host): string | undefined {
  const index = site.hosts.findIndex((h) => h.name === hostName);
  if (index < 0) return undefined;
  return sourceLocation(site, field ? ["hosts", index, field] : ["hosts", index]);
}
