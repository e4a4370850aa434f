import type { Site } from "../inventory/index.js";
import type { VcenterShape } from "./vcsim.js";

/** What a simulated vCenter must hold for a site's stack to apply: the parts its inventory says already exist. */
export function shapeOf(site: Site): VcenterShape {
  return { ...site.vcenter, templates: site.templates.map((t) => t.name) };
}
