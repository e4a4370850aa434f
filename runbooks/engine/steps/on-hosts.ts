import type { ExecResult } from "../../../hosts/index.js";
import { quoteArgv } from "../../../hosts/index.js";
import type { SiteHost } from "../../../inventory/index.js";
import { DcctlError, errorMessage } from "../../../util/errors.js";
import { lastLine } from "../../../util/process.js";
import type { PlannedStep } from "../model.js";
import type { StepContext, StepResult } from "./types.js";

/**
 * Runs `fn` for every target host of a step at once and gathers one note per host. Every host is tried even when
 * one fails (an operator wants to know all that went wrong), then the step fails naming each failed host.
 */
export async function onHosts(p: PlannedStep, fn: (host: SiteHost) => Promise<string[]>): Promise<StepResult> {
  const outcomes = await Promise.allSettled(p.hosts.map(async (host) => ({ host, notes: await fn(host) })));
  const notes: string[] = [];
  const failed: string[] = [];
  outcomes.forEach((o, i) => {
    const name = p.hosts[i]?.name ?? "?";
    if (o.status === "fulfilled") notes.push(...o.value.notes.map((n) => `${name}: ${n}`));
    else failed.push(`${name}: ${errorMessage(o.reason)}`);
  });
  if (failed.length) throw new DcctlError(failed.join("; "));
  return { notes, data: {} };
}

/** Runs an argument vector on a host within the step's timeout; a non-zero exit throws with the command's last line. */
export async function runOn(ctx: StepContext, p: PlannedStep, host: SiteHost, argv: string[], stdin?: string): Promise<ExecResult> {
  const res = await ctx.services.executorFor(host).run(argv, { timeoutMs: p.step.timeoutMs, stdin });
  if (res.code !== 0) {
    const last = lastLine(res.stderr) || lastLine(res.stdout) || `exit code ${res.code}`;
    throw new DcctlError(`\`${shown(argv)}\` failed (exit ${res.code}): ${last}`);
  }
  return res;
}

export { lastLine };

/** An argument vector as a reader would type it. */
export function shown(argv: readonly string[]): string {
  return quoteArgv(argv);
}

/** `name (site, ip)` for plan lines. */
export function hostText(h: SiteHost): string {
  return `${h.name} (${h.site}, ${h.ip})`;
}
