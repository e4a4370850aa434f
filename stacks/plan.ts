import * as pulumi from "@pulumi/pulumi";
import type { Site } from "../inventory/index.js";
import { tokens } from "../provider/tokens.js";
import { declareSite, type DrMode } from "./site-stack.js";

/** One resource as the program declares it: what `dcctl infra plan` prints. */
export interface PlannedResource {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
}

/** Inputs that are noise in a plan: the connection holds the vCenter secret, the rest are provider outputs. */
const HIDDEN = new Set(["connection", "inventoryPath", "moid", "guestIpAddress", "guestHostName", "esxiHost", "powerState"]);

function visible(inputs: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(inputs).filter(([k, v]) => !HIDDEN.has(k) && v !== undefined));
}

/**
 * Runs the site's program under Pulumi's mock runtime (no engine, no vCenter) and returns every resource it declares,
 * in declaration order. The vCenter password given to the program is a placeholder secret.
 */
export async function planSite(site: Site, mode: DrMode): Promise<PlannedResource[]> {
  const planned: PlannedResource[] = [];
  await pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        planned.push({ type: args.type, name: args.name, inputs: visible(args.inputs as Record<string, unknown>) });
        return { id: `${args.name}-id`, state: args.inputs as Record<string, unknown> };
      },
      call: (args) => (args.token === tokens.getInventoryObject ? { ...(args.inputs as Record<string, unknown>), ref: "mock" } : {}),
    },
    "dcctl",
    site.site,
    true,
  );
  // The SDK stamps every promise it makes with `new Error().stack`, for a leak report that a mock run never prints:
  // at 3,300 VMs formatting those stacks was half the plan's CPU and most of its garbage. Without frames it is cheap;
  // our own errors keep their messages, which is all the CLI shows.
  const stackTraceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    const connection = { url: "https://vcenter.invalid/sdk", username: "plan", password: pulumi.secret("plan-placeholder") };
    const declared = declareSite(site, { connection, mode });
    await new Promise<void>((resolve) => pulumi.all(declared.resources.map((r) => r.urn)).apply(() => resolve()));
    return planned;
  } finally {
    Error.stackTraceLimit = stackTraceLimit;
  }
}
