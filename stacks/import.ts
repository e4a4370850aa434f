import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import type { ConfigMap, ImportResource, Stack } from "@pulumi/pulumi/automation/index.js";
import { ROLES, type Site } from "../inventory/index.js";
import { cacheDir } from "../util/tools.js";
import { inlineStack, localBackend, projectName } from "./automation.js";
import { engineFailure } from "./guards.js";
import { VSPHERE_CONFIG } from "./infra.js";
import {
  FOUNDATION_TYPE,
  ROLE_GROUP_TYPE,
  TAG_CATEGORIES,
  hasAntiAffinityRule,
  hostsInMode,
  portGroupName,
  resourceNames,
  resourcePoolName,
  roleFolder,
  tagCategoryName,
  type DrMode,
  type TagCategoryName,
} from "./site-stack.js";

/**
 * `dcctl infra import`: a site whose vCenter already runs the inventory's servers (a province adopting dcctl) takes
 * them, and whatever folders, pools, port groups, tags and rules it already has, into the stack's state instead of
 * creating them again. Each object is looked for where the stack would put it, under the name the stack would give
 * it; what is absent is left for the next `up` to create.
 */

export type ImportKind = "vm" | "folder" | "pool" | "portGroup" | "tagCategory" | "tag" | "rule";

/** One resource the site stack declares, and how vCenter would know it. */
export interface ImportCandidate {
  kind: ImportKind;
  /** The resource token, e.g. vsphere:index/virtualMachine:VirtualMachine. */
  type: string;
  /** Its Pulumi name (the URN's last part). */
  name: string;
  /** The component it is declared in. */
  parent: { type: string; name: string };
  /** The real provider's import form (an inventory path, a name, a JSON object), which the plugin resolves. */
  importId: string;
  /** What an operator calls it: the inventory path or name. */
  label: string;
}

export type ImportStatus = "imported" | "already in state" | "not found";

export interface ImportOutcome {
  kind: ImportKind;
  name: string;
  label: string;
  status: ImportStatus;
  /** vSphere's ID of the object (a VM's BIOS UUID), when it exists. */
  id?: string;
}

const T = {
  folder: "vsphere:index/folder:Folder",
  pool: "vsphere:index/resourcePool:ResourcePool",
  portGroup: "vsphere:index/distributedPortGroup:DistributedPortGroup",
  tagCategory: "vsphere:index/tagCategory:TagCategory",
  tag: "vsphere:index/tag:Tag",
  vm: "vsphere:index/virtualMachine:VirtualMachine",
  rule: "vsphere:index/computeClusterVmAntiAffinityRule:ComputeClusterVmAntiAffinityRule",
} as const satisfies Record<ImportKind, string>;

/**
 * Every resource the site's stack declares in `mode`, with the import form of the object it stands for, in the
 * order the stack declares them: the foundation (port groups, folders, pools, tag categories and tags), then each
 * role's VMs and anti-affinity rule.
 */
export function importCandidates(site: Site, mode: DrMode): ImportCandidate[] {
  const vc = site.vcenter;
  const dc = `/${vc.datacenter}`;
  const foundation = { type: FOUNDATION_TYPE, name: resourceNames.foundation(site) };
  const out: ImportCandidate[] = [];
  const add = (kind: ImportKind, name: string, parent: ImportCandidate["parent"], importId: string, label: string) =>
    out.push({ kind, type: T[kind], name, parent, importId, label });

  for (const net of site.networks) {
    const path = `${dc}/network/${portGroupName(net)}`;
    add("portGroup", resourceNames.portGroup(site, net.name), foundation, path, path);
  }
  add("folder", resourceNames.siteFolder(site), foundation, `${dc}/vm/${site.site}`, `${dc}/vm/${site.site}`);
  for (const role of ROLES) {
    const path = `${dc}/vm/${roleFolder(site, role)}`;
    add("folder", resourceNames.roleFolder(site, role), foundation, path, path);
  }
  for (const tier of site.drTiers) {
    const path = `${dc}/host/${vc.cluster}/Resources/${resourcePoolName(tier.tier)}`;
    add("pool", resourceNames.pool(site, tier.tier), foundation, path, path);
  }
  for (const [category, valueOf] of Object.entries(TAG_CATEGORIES) as [TagCategoryName, (h: Site["hosts"][number], s: Site) => string][]) {
    const categoryName = tagCategoryName(site, category);
    add("tagCategory", resourceNames.tagCategory(site, category), foundation, categoryName, `tag category ${categoryName}`);
    for (const value of new Set(site.hosts.map((h) => valueOf(h, site)))) {
      add("tag", resourceNames.tag(site, category, value), foundation, JSON.stringify({ category_name: categoryName, tag_name: value }), `tag ${categoryName}/${value}`);
    }
  }
  const present = hostsInMode(site, mode);
  for (const role of ROLES) {
    const group = { type: ROLE_GROUP_TYPE, name: resourceNames.roleGroup(site, role) };
    const hosts = present.filter((h) => h.role === role);
    for (const h of hosts) {
      const path = `${dc}/vm/${roleFolder(site, role)}/${h.name}`;
      add("vm", h.name, group, path, path);
    }
    if (hasAntiAffinityRule(role, hosts.length)) {
      const name = resourceNames.antiAffinityRule(site, role);
      add("rule", name, group, JSON.stringify({ compute_cluster_path: `${dc}/host/${vc.cluster}`, name }), `rule ${name} on ${dc}/host/${vc.cluster}`);
    }
  }
  return out;
}

/** A resource's URN in a stack of this project: the parent's type, then its own, then its name. */
export function urnOf(stack: string, type: string, name: string, parentType?: string): string {
  return `urn:pulumi:${stack}::${projectName}::${parentType ? `${parentType}$` : ""}${type}::${name}`;
}

interface StateResource {
  urn: string;
  id?: string;
  type: string;
  custom?: boolean;
  [key: string]: unknown;
}

function stateResources(deployment: unknown): StateResource[] {
  const resources = (deployment as { resources?: unknown } | undefined)?.resources;
  return Array.isArray(resources) ? (resources as StateResource[]) : [];
}

/** The vCenter connection of a stack, from its config (the password decrypted), for the look-up below. */
export interface VsphereConnection {
  server: string;
  user: string;
  password: string;
  insecure: boolean;
}

export function connectionOfConfig(config: ConfigMap): VsphereConnection {
  return {
    server: config[VSPHERE_CONFIG.server]?.value ?? "",
    user: config[VSPHERE_CONFIG.user]?.value ?? "",
    password: config[VSPHERE_CONFIG.password]?.value ?? "",
    insecure: config[VSPHERE_CONFIG.allowUnverifiedSsl]?.value === "true",
  };
}

/**
 * How the plugin says that the object a candidate's import form names is not there (provider/vsphere/importid.go):
 * the text that names this candidate in the engine's error, and the words that make it an absence rather than a
 * failure.
 */
function absenceNamed(c: ImportCandidate, text: string): boolean {
  const named = (() => {
    switch (c.kind) {
      case "tagCategory":
        return `import tag category ${JSON.stringify(c.importId)}`;
      case "tag": {
        const q = JSON.parse(c.importId) as { category_name: string; tag_name: string };
        return `import tag ${q.category_name}/${q.tag_name}:`;
      }
      case "rule":
        return `no rule ${JSON.stringify((JSON.parse(c.importId) as { name: string }).name)} in`;
      default:
        return `import ${c.importId}:`;
    }
  })();
  return text
    .split("\n")
    .some((line) => line.includes(named) && /not found|no such inventory object|no rule "|404/i.test(line));
}

/**
 * Which candidates exist in vCenter, and their canonical IDs (a VM's UUID, a folder's MOID, a tag's URN), asked of
 * the vsphere plugin itself through the engine, with the import forms that `pulumi import` would give it.
 *
 * The plugin has no look-up function for tags or rules, and `pulumi import` stops at the first object that is
 * absent; a refresh, though, reads every object at once. So the look-up is a refresh of a throw-away stack, in a
 * folder of its own that is removed afterwards, whose state names each candidate by its import form: the objects
 * that exist come back with their IDs; those the plugin says are absent are taken out (with the tags of an absent
 * category) and the rest read again, until a refresh passes. The site's stack and state are not touched. The
 * look-up's provider reads the connection from VSPHERE_* in the engine's environment (never a command line).
 */
export async function findInVcenter(candidates: ImportCandidate[], conn: VsphereConnection): Promise<Map<string, string>> {
  const dir = mkdtempSync(join(tmpdir(), "dcctl-import-lookup-"));
  try {
    const probe = "import-lookup";
    const stack = await inlineStack(probe, () => Promise.resolve(), localBackend(dir), {}, {
      VSPHERE_SERVER: conn.server,
      VSPHERE_USER: conn.user,
      VSPHERE_PASSWORD: conn.password,
      VSPHERE_ALLOW_UNVERIFIED_SSL: String(conn.insecure),
    });
    const exported = await stack.exportStack();
    const stackUrn = urnOf(probe, "pulumi:pulumi:Stack", `${projectName}-${probe}`);
    const providerUrn = urnOf(probe, "pulumi:providers:vsphere", "lookup");
    const providerId = randomUUID();
    const base = (exported.deployment ?? {}) as Record<string, unknown>;
    const probeUrn = (i: number) => urnOf(probe, candidates[i]?.type ?? "", `c${i}`);
    let remaining = candidates.map((_, i) => i);
    for (;;) {
      const resources = [
        { urn: stackUrn, custom: false, type: "pulumi:pulumi:Stack" },
        { urn: providerUrn, custom: true, id: providerId, type: "pulumi:providers:vsphere", inputs: {}, outputs: {}, parent: stackUrn },
        ...remaining.map((i) => ({
          urn: probeUrn(i),
          custom: true,
          id: candidates[i]?.importId,
          type: candidates[i]?.type,
          inputs: {},
          outputs: {},
          parent: stackUrn,
          provider: `${providerUrn}::${providerId}`,
        })),
      ];
      await stack.importStack({ version: exported.version || 3, deployment: { ...base, resources } });
      const failure = await stack.refresh({ parallel: 64 }).then(
        () => undefined,
        (e: unknown) => e,
      );
      if (failure === undefined) break;
      const text = failure instanceof Error ? failure.message : String(failure);
      const absent = new Set(remaining.filter((i) => absenceNamed(candidates[i] as ImportCandidate, text)));
      if (!absent.size) throw engineFailure(failure, "looking the site's objects up in vCenter");
      // The tags of a category that is absent are absent too.
      const goneCategories = new Set([...absent].map((i) => candidates[i]).filter((c) => c?.kind === "tagCategory").map((c) => c?.importId));
      remaining = remaining.filter((i) => {
        const c = candidates[i];
        if (absent.has(i) || !c) return false;
        return !(c.kind === "tag" && goneCategories.has((JSON.parse(c.importId) as { category_name: string }).category_name));
      });
    }
    const found = new Map<string, string>();
    const byUrn = new Map(stateResources((await stack.exportStack()).deployment).map((r) => [r.urn, r.id]));
    for (const i of remaining) {
      const id = byUrn.get(probeUrn(i));
      const c = candidates[i];
      if (id && c) found.set(c.name, id);
    }
    return found;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The stack config key listing the VMs that `dcctl infra import` adopted (see SiteStackArgs.adopted). */
export const ADOPTED_CONFIG = "dcctl:adopted";

/**
 * Imports into `stack` every candidate that exists in vCenter and is not in the state yet, with the components
 * they belong to, unprotected, without generated code. The VMs imported are added to `dcctl:adopted`. Re-running it
 * imports only what appeared since: what is in the state is left alone.
 */
export async function importSite(
  stack: Stack,
  site: Site,
  mode: DrMode,
  opts: { onOutput?: (line: string) => void } = {},
): Promise<ImportOutcome[]> {
  const candidates = importCandidates(site, mode);
  const inState = new Map(stateResources((await stack.exportStack()).deployment).map((r) => [r.urn, r]));
  const urn = (c: { type: string; name: string }, parentType?: string) => urnOf(stack.name, c.type, c.name, parentType);
  const managed = (c: ImportCandidate) => inState.get(urn(c, c.parent.type));
  const wanted = candidates.filter((c) => !managed(c));
  const found = wanted.length ? await findInVcenter(wanted, connectionOfConfig(await stack.getAllConfig())) : new Map<string, string>();
  const toImport = wanted.filter((c) => found.has(c.name));

  if (toImport.length) {
    const resources: ImportResource[] = [];
    const nameTable: Record<string, string> = {};
    const parents = [...new Map(toImport.map((c) => [c.parent.name, c.parent])).values()];
    for (const p of parents) {
      if (inState.has(urn(p))) nameTable[p.name] = urn(p);
      else resources.push({ type: p.type, name: p.name, component: true });
    }
    for (const c of toImport) resources.push({ type: c.type, name: c.name, id: found.get(c.name), parent: c.parent.name });
    // `pulumi import` loads the project's language host even when it generates no code and runs no program. Set-up
    // keeps the Node one off PATH, because the engine would run policy packs through it (scripts/setup.sh); an
    // import runs none, so it has it on PATH for this one command.
    const path = process.env.PATH;
    process.env.PATH = [join(cacheDir(), "langhost"), path].join(delimiter);
    try {
      await stack.import({ resources, nameTable, protect: false, generateCode: false, onOutput: opts.onOutput }).catch((e: unknown) => {
        throw engineFailure(e, `pulumi import into stack ${stack.name}`);
      });
    } finally {
      process.env.PATH = path;
    }
    const vms = toImport.filter((c) => c.kind === "vm").map((c) => c.name);
    if (vms.length) {
      const config = await stack.getAllConfig();
      const before = parseAdopted(config[ADOPTED_CONFIG]?.value);
      await stack.setConfig(ADOPTED_CONFIG, { value: JSON.stringify([...new Set([...before, ...vms])].sort()) });
    }
  }
  return candidates.map((c) => {
    const m = managed(c);
    const status: ImportStatus = m ? "already in state" : found.has(c.name) ? "imported" : "not found";
    return { kind: c.kind, name: c.name, label: c.label, status, id: m?.id ?? found.get(c.name) };
  });
}

function parseAdopted(value: string | undefined): string[] {
  if (!value) return [];
  try {
    const v: unknown = JSON.parse(value);
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
  } catch {
    return [];
  }
}
