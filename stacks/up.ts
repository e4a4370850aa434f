import type { Stack, UpResult } from "@pulumi/pulumi/automation/index.js";
import type { SiteName } from "../inventory/index.js";
import { projectName } from "./automation.js";
import { clearStaleStackLocks, engineFailure, refuseHalfCreated } from "./guards.js";
import { policyPackDir, siteStack, type SiteStackOptions } from "./infra.js";

/**
 * `pulumi up` of a site stack, the one way dcctl runs it (`dcctl infra up`, a DR run's infra steps, the lab): a lock
 * left by a crashed pulumi cleared, an earlier up cut off while creating refused (its resources may exist half made),
 * then the update with the policy pack enforced, the engine's failure as one line.
 */
export interface SiteUpOptions extends SiteStackOptions {
  /** Told each stale lock that was removed. */
  onNote?: (line: string) => void;
  /** The engine's output as it comes. */
  onOutput?: (out: string) => void;
  /** Checks on the opened stack before anything else (e.g. that it has a vCenter connection). */
  opened?: (stack: Stack) => Promise<void> | void;
  /** Last step before the update (e.g. a preview and the operator's confirmation). */
  beforeUp?: (stack: Stack) => Promise<void>;
  /** Names the update in its error, default "pulumi up of stack SITE". */
  what?: string;
}

/** Opens the site's stack for an update: stale locks cleared first, the `opened` check, half-created resources refused. */
export async function openForUp(site: SiteName, opts: Omit<SiteUpOptions, "beforeUp" | "onOutput" | "what">): Promise<Stack> {
  for (const note of clearStaleStackLocks(opts.backend.dir, projectName, site)) opts.onNote?.(note);
  const stack = await siteStack(site, opts);
  await opts.opened?.(stack);
  await refuseHalfCreated(stack, site, opts.backend.dir);
  return stack;
}

export async function upSiteStack(site: SiteName, opts: SiteUpOptions): Promise<UpResult> {
  const stack = await openForUp(site, opts);
  await opts.beforeUp?.(stack);
  return stack.up({ policyPacks: [policyPackDir], ...(opts.onOutput ? { onOutput: opts.onOutput } : {}) }).catch((e: unknown) => {
    throw engineFailure(e, opts.what ?? `pulumi up of stack ${site}`);
  });
}
