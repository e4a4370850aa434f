import { join } from "node:path";
import type { ConfigMap, Stack } from "@pulumi/pulumi/automation/index.js";
import { loadSites, type SiteName } from "../inventory/index.js";
import { DcctlError, ExitCode } from "../util/errors.js";
import { repoRoot } from "../util/tools.js";
import { inlineStack, type StateBackend } from "./automation.js";
import { siteProgram } from "./program.js";
import type { DrMode } from "./site-stack.js";

/** The policy pack every preview and up of a site stack runs with. */
export const policyPackDir = join(repoRoot, "stacks", "policy");

export interface VcenterCredentials {
  /** vCenter's SDK URL, https://HOST[:PORT]/sdk (or just https://HOST[:PORT]). */
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

/** The stack config keys of the vsphere provider's connection (the real provider's names). */
export const VSPHERE_CONFIG = {
  server: "vsphere:vsphereServer",
  user: "vsphere:user",
  password: "vsphere:password",
  allowUnverifiedSsl: "vsphere:allowUnverifiedSsl",
} as const;

/** Where dcctl before @pulumi/vsphere kept the connection: removed from a stack when it is configured again. */
export const OLD_VCENTER_CONFIG = ["vcenter:url", "vcenter:user", "vcenter:password", "vcenter:insecure"] as const;

/**
 * `vsphere:vsphereServer` from a vCenter SDK URL. The real provider takes a host name (with a port if not 443) and
 * always speaks https to its /sdk, so an http URL or another path cannot be reached through it: refused, exit 2.
 */
export function vsphereServerOf(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new DcctlError(`--url "${url}" is not an https URL of a vCenter SDK (e.g. https://vcenter.example/sdk)`, ExitCode.badInput);
  }
  if (u.protocol !== "https:" || u.hostname === "" || !["", "/", "/sdk", "/sdk/"].includes(u.pathname) || u.search || u.username) {
    throw new DcctlError(`--url "${url}": the vSphere provider reaches vCenter only at https://HOST[:PORT]/sdk (e.g. https://vcenter.example/sdk)`, ExitCode.badInput);
  }
  return u.host;
}

/** The stack of one site, with its config brought up to date. The inventory is validated first (file:line errors). */
export async function siteStack(site: SiteName, opts: SiteStackOptions): Promise<Stack> {
  loadSites(opts.sitesDir);
  const config: ConfigMap = { "dcctl:site": { value: site } };
  if (opts.sitesDir) config["dcctl:sitesDir"] = { value: opts.sitesDir };
  if (opts.mode) config["dr:mode"] = { value: opts.mode };
  if (opts.vcenter) {
    config[VSPHERE_CONFIG.server] = { value: vsphereServerOf(opts.vcenter.url) };
    config[VSPHERE_CONFIG.user] = { value: opts.vcenter.user };
    config[VSPHERE_CONFIG.password] = { value: opts.vcenter.password, secret: true };
    config[VSPHERE_CONFIG.allowUnverifiedSsl] = { value: String(opts.vcenter.insecure ?? false) };
  }
  // The policy pack runs in a process of its own and reads the inventory too: it must read the same one.
  const env: Record<string, string> = opts.sitesDir ? { DCCTL_SITES_DIR: opts.sitesDir } : {};
  const stack = await inlineStack(site, siteProgram(opts.sitesDir), opts.backend, config, env);
  if (opts.vcenter) {
    const old = Object.keys(await stack.getAllConfig()).filter((k) => (OLD_VCENTER_CONFIG as readonly string[]).includes(k));
    if (old.length) await stack.removeAllConfig(old);
  }
  return stack;
}
