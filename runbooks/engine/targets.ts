import { allHosts, type SiteHost, type Sites } from "../../inventory/index.js";
import type { TargetSelector } from "./model.js";

/** The inventory hosts a selector matches, primary first, in inventory order. */
export function resolveTargets(sites: Sites, t: TargetSelector | undefined): SiteHost[] {
  if (!t) return [];
  return allHosts(sites).filter(
    (h) =>
      (t.site === undefined || h.site === t.site) &&
      (t.role === undefined || h.role === t.role) &&
      (t.drTier === undefined || h.drTier === t.drTier) &&
      (t.hosts === undefined || t.hosts.includes(h.name)) &&
      (t.services === undefined || t.services.some((s) => h.services.includes(s))),
  );
}

/** `site: secondary, role: db` — a selector as the runbook wrote it, for messages. */
export function selectorText(t: TargetSelector): string {
  const parts: string[] = [];
  if (t.site) parts.push(`site: ${t.site}`);
  if (t.role) parts.push(`role: ${t.role}`);
  if (t.drTier !== undefined) parts.push(`drTier: ${t.drTier}`);
  if (t.hosts) parts.push(`hosts: [${t.hosts.join(", ")}]`);
  if (t.services) parts.push(`services: [${t.services.join(", ")}]`);
  return parts.join(", ");
}
