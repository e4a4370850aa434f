import { existsSync, readFileSync } from "node:fs";
import { request as httpRequest, type ClientRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { connect } from "node:net";
import { join } from "node:path";
import { SITE_NAMES, type SiteName, type Sites } from "../inventory/index.js";
import { errorMessage } from "../util/errors.js";
import { writeAtomic } from "../util/files.js";

import type { BackupConfig } from "./repositories.js";

/**
 * Whether the other sites answer, as every view at this site asks it first: a site is a state, not a stall. Each part
 * of a site dcctl talks to (its management host's sshd, its repository's server) is asked at the same time, each
 * within REACH_PROBE_MS; a site none of whose parts answers is unreachable since the first probe that found it so.
 * That moment is kept in this site's state dir (`<stateDir>/reachability.json`), so that every view and every run
 * here names the same T, and it is forgotten as soon as the site answers again.
 */

/** The longest a view waits for any part of another site. */
export const REACH_PROBE_MS = 5_000;

export interface ReachPart {
  /** "management host lab-bk-01 (10.10.50.11:22)", "repository primary (http://10.10.50.11:8000/primary/)". */
  what: string;
  answered: boolean;
  /** Why not: "no answer within 5 s", "connection refused". */
  detail?: string;
}

export interface SiteReach {
  site: SiteName;
  reachable: boolean;
  /** The first probe of the outage still going on (ISO); absent while the site answers. */
  unreachableSince?: string;
  /** When this probe began (ISO). */
  probedAt: string;
  parts: ReachPart[];
}

interface Kept {
  unreachableSince: string;
  probedAt: string;
  failedProbes: number;
}

function statePath(config: Pick<BackupConfig, "stateDir">): string {
  return join(config.stateDir, "reachability.json");
}

function readKept(config: Pick<BackupConfig, "stateDir">): Partial<Record<SiteName, Kept>> {
  try {
    const raw = JSON.parse(readFileSync(statePath(config), "utf8")) as Partial<Record<SiteName, Partial<Kept>>>;
    const out: Partial<Record<SiteName, Kept>> = {};
    for (const site of SITE_NAMES) {
      const k = raw[site];
      if (k && typeof k.unreachableSince === "string" && !Number.isNaN(Date.parse(k.unreachableSince))) {
        out[site] = { unreachableSince: k.unreachableSince, probedAt: k.probedAt ?? k.unreachableSince, failedProbes: k.failedProbes ?? 1 };
      }
    }
    return out;
  } catch {
    return {};
  }
}

/** What this site last concluded of the others (nothing probed): the sites kept as unreachable, with their T. */
export function keptUnreachable(config: Pick<BackupConfig, "stateDir">): { site: SiteName; unreachableSince: string; probedAt: string; failedProbes: number }[] {
  return Object.entries(readKept(config)).flatMap(([site, k]) => (k ? [{ site: site as SiteName, ...k }] : []));
}

/** The sites other than this one. */
export function otherSites(config: Pick<BackupConfig, "site">): SiteName[] {
  return SITE_NAMES.filter((s) => s !== config.site);
}

/** The parts of a site this one talks to: its management hosts' sshd and its repository's server. */
function probesOf(config: BackupConfig, sites: Sites, site: SiteName, ms: number): Promise<ReachPart>[] {
  const out: Promise<ReachPart>[] = [];
  for (const h of sites[site].hosts.filter((x) => x.role === "backup")) {
    const what = `management host ${h.name} (${h.ssh.host}:${h.ssh.port})`;
    out.push(sshAnswers(h.ssh.host, h.ssh.port, ms).then((detail) => ({ what, answered: detail === undefined, ...(detail ? { detail } : {}) })));
  }
  const repo = config.repositories[site];
  const url = repo?.repo.url;
  if (url?.startsWith("rest:http")) {
    const target = new URL(url.slice("rest:".length));
    // Only whether it answers: no credentials go with the probe.
    target.username = "";
    target.password = "";
    const what = `repository ${site} (${target.origin}${target.pathname})`;
    out.push(httpAnswers(new URL("config", target.href.endsWith("/") ? target.href : `${target.href}/`), ms).then((detail) => ({ what, answered: detail === undefined, ...(detail ? { detail } : {}) })));
  } else if (url && !/^[a-z0-9]+:/.test(url)) {
    const answered = existsSync(join(url, "config"));
    out.push(Promise.resolve({ what: `repository ${site} (${url})`, answered, ...(answered ? {} : { detail: "no config file there" }) }));
  }
  return out;
}

/**
 * Probes every other site, each part at once and within `ms`, and keeps the outcome: the first failed probe starts an
 * outage (its time is T), a site that answers ends it. A site with nothing to probe counts as answering.
 */
export async function probeSites(config: BackupConfig, sites: Sites, o: { ms?: number; now?: () => Date } = {}): Promise<SiteReach[]> {
  const ms = o.ms ?? REACH_PROBE_MS;
  const now = o.now ?? (() => new Date());
  const probedAt = now().toISOString();
  const found = await Promise.all(
    otherSites(config).map(async (site) => {
      const parts = await Promise.all(probesOf(config, sites, site, ms));
      return { site, parts, reachable: parts.length === 0 || parts.some((p) => p.answered) };
    }),
  );
  // Read just before writing: another view may have found the same outage meanwhile, and its T is the earlier one.
  const kept = readKept(config);
  const out: SiteReach[] = [];
  for (const f of found) {
    const k = kept[f.site];
    if (f.reachable) {
      delete kept[f.site];
      out.push({ site: f.site, reachable: true, probedAt, parts: f.parts });
    } else {
      const since = k && Date.parse(k.unreachableSince) <= Date.parse(probedAt) ? k.unreachableSince : probedAt;
      kept[f.site] = { unreachableSince: since, probedAt, failedProbes: (k?.failedProbes ?? 0) + 1 };
      out.push({ site: f.site, reachable: false, unreachableSince: since, probedAt, parts: f.parts });
    }
  }
  try {
    writeAtomic(statePath(config), JSON.stringify(kept, null, 1) + "\n");
  } catch {
    // A state dir that cannot be written costs only the memory of T; the views still answer.
  }
  return out;
}

/** "management host lab-bk-01 (10.10.50.11:22): no answer within 5 s; …": what did not answer, and how. */
export function failedParts(r: SiteReach): string {
  return r.parts
    .filter((p) => !p.answered)
    .map((p) => `${p.what}: ${p.detail ?? "no answer"}`)
    .join("; ");
}

/** "since 2026-12-05T02:00:13.000Z (management host lab-bk-01 (10.10.50.11:22): no answer within 5 s; …)". */
export function describeUnreachable(r: SiteReach): string {
  const failed = failedParts(r);
  return `since ${r.unreachableSince ?? r.probedAt}${failed ? ` (${failed})` : ""}`;
}

/** Undefined when the host's sshd greeted us within `ms`; otherwise why not. */
function sshAnswers(host: string, port: number, ms: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    let said = "";
    const done = (why: string | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(why);
    };
    const timer = setTimeout(() => done(`no answer within ${ms / 1000} s`), ms);
    socket.on("data", (b: Buffer) => {
      said += b.toString("latin1");
      if (said.includes("\n") || said.length > 255) done(said.startsWith("SSH-") ? undefined : "not an SSH server");
    });
    socket.on("error", (e: NodeJS.ErrnoException) => done(e.code === "ECONNREFUSED" ? "connection refused" : (e.code ?? errorMessage(e))));
    socket.on("end", () => done("closed without a greeting"));
  });
}

/** Undefined when an HTTP server answered (any status) within `ms`; otherwise why not. */
function httpAnswers(url: URL, ms: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const onResponse = (res: IncomingMessage) => {
      res.resume();
      done(undefined);
    };
    // Whether anything answers, not whom: the certificate is checked by restic when it reads; no secret is sent here.
    const req: ClientRequest = url.protocol === "https:" ? httpsRequest(url, { method: "HEAD", rejectUnauthorized: false }, onResponse) : httpRequest(url, { method: "HEAD" }, onResponse);
    const timer = setTimeout(() => done(`no answer within ${ms / 1000} s`), ms);
    function done(why: string | undefined): void {
      clearTimeout(timer);
      req.destroy();
      resolve(why);
    }
    req.on("error", (e: NodeJS.ErrnoException) => done(e.code === "ECONNREFUSED" ? "connection refused" : (e.code ?? errorMessage(e))));
    req.end();
  });
}
