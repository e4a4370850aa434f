import { join } from "node:path";
import type { ConfigMap, Stack } from "@pulumi/pulumi/automation/index.js";
import { loadSites, type SiteName } from "../inventory/index.js";
import { repoRoot } from "../util/tools.js";
import { inlineStack, type StateBackend } from "./automation.js";
import { siteProgram } from "./program.js";
import type { DrMode } from "./site-stack.js";

/** The policy pack every preview and up of a site stack runs with. */
export const policyPackDir = join(repoRoot, "stacks", "policy");

export interface VcenterCredentials {
  url: string;
  user: string;
  password: string;
  insecure?: boolean;
}

export interface SiteStackOptions {
  backend: StateBackend;
  /** Folder of the site files; default stacks/sites (or $DCCTL_SITES_DIR). */
  sitesDir?: string;
  /** Set into the stack's config (the password as a secret); without it the stack's existing config is used. */
  vcenter?: VcenterCredentials;
  mode?: DrMode;
}

/** The stack of one site, with its config brought up to date. The inventory is validated first (file:line errors). */
export async function siteStack(site: SiteName, opts: SiteStackOptions): Promise<Stack> {
  loadSites(opts.sitesDir);
  const config: ConfigMap = { "dcctl:site": { value: site } };
  if (opts.sitesDir) config["dcctl:sitesDir"] = { value: opts.sitesDir };
  if (opts.mode) config["dr:mode"] = { value: opts.mode };
  if (opts.vcenter) {
    config["vcenter:url"] = { value: opts.vcenter.url };
    config["vcenter:user"] = { value: opts.vcenter.user };
    config["vcenter:password"] = { value: opts.vcenter.password, secret: true };
    config["vcenter:insecure"] = { value: String(opts.vcenter.insecure ?? false) };
  }
  // The policy pack runs in a process of its own and reads the inventory too: it must read the same one.
  const env: Record<string, string> = opts.sitesDir ? { DCCTL_SITES_DIR: opts.sitesDir } : {};
  return inlineStack(site, siteProgram(opts.sitesDir), opts.backend, config, env);
}
