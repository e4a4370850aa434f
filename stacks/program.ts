import * as pulumi from "@pulumi/pulumi";
import { loadSites, type SiteName } from "../inventory/index.js";
import { DR_MODES, declareSite, type DrMode, type HostOutput } from "./site-stack.js";

/** The stack's outputs, read by the backup and DR engines. */
export interface SiteStackOutputs {
  site: SiteName;
  mode: DrMode;
  hosts: HostOutput[];
}

/**
 * The Pulumi program of a site stack. The stack's name is the site (primary, secondary) unless `dcctl:site` says
 * otherwise. The vCenter connection is the vsphere provider's configuration in the stack (`vsphere:vsphereServer`,
 * `vsphere:user`, `vsphere:password` as a secret, `vsphere:allowUnverifiedSsl`): the provider reads it, not the program.
 */
export function siteProgram(sitesDir?: string): () => Promise<SiteStackOutputs> {
  return async () => {
    const dcctl = new pulumi.Config("dcctl");
    const site = (dcctl.get("site") ?? pulumi.getStack()) as SiteName;
    if (site !== "primary" && site !== "secondary") throw new Error(`stack ${pulumi.getStack()}: set dcctl:site to primary or secondary`);
    const mode = (new pulumi.Config("dr").get("mode") ?? "standby") as DrMode;
    if (!DR_MODES.includes(mode)) throw new Error(`dr:mode must be one of ${DR_MODES.join(", ")}, not "${mode}"`);
    const sites = loadSites(sitesDir ?? dcctl.get("sitesDir"));
    // The VMs `dcctl infra import` adopted: their creation-only inputs are left as the state has them.
    const adopted = new Set(dcctl.getObject<string[]>("adopted") ?? []);
    const declared = declareSite(sites[site], { mode, adopted });
    return { site, mode, hosts: declared.hosts };
  };
}
