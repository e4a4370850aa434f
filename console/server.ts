import { chmodSync, lstatSync, readFileSync, rmSync } from "node:fs";
import type { Server as HttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { Eta } from "eta";
import type { BackupConfig } from "../backup/repositories.js";
import { errorMessage } from "../util/errors.js";
import { emitEvent } from "../notify/event-feed.js";
import type { Lang, Translate } from "../util/i18n.js";
import { repoRoot } from "../util/tools.js";
import { badPath, bearerToken, cookieValue, hostPort, isLoopback, printable, sameOriginLocation, sameSecret, SESSION_COOKIE, sessionValue, type ListenAddress } from "./access.js";
import { runPage } from "./report.js";
import { startCollector, type Collector } from "./status.js";
import { consoleTexts } from "./texts.js";
import { overviewView } from "./view.js";

/**
 * The duty room's web console: a read-only fastify server. Every route is a GET; nothing on it changes anything.
 *   /                  the overview (refreshes itself from /fragment/overview)
 *   /runs/:runId       a DR run's report (the engine's report page, in the console's language)
 *   /api/status        the overview's data as JSON
 *   /healthz           "ok" (no token needed: for a monitor)
 */

export interface ConsoleOptions {
  listen: ListenAddress;
  lang: Lang;
  config: BackupConfig;
  token?: string;
  tls?: { key: Buffer; cert: Buffer; ca?: Buffer };
}

const BAD_PATH = "bad request: the path holds a control character or a broken %-escape\n";

/** How often an open page fetches the overview again: a site lost shows within seconds (the fragment costs no probe). */
const REFRESH_MS = 5_000;

export interface RunningConsole {
  url: string;
  address: ListenAddress;
  close(): Promise<void>;
}

const VIEWS = join(repoRoot, "console", "views");
const ASSETS = join(repoRoot, "console", "assets");

/**
 * Only what the console serves itself: no inline script, no inline style but the one a page names by its hash (the
 * engine's report page), no frames, no forms, nothing from elsewhere.
 */
const csp = (styles: string[] = []) =>
  `default-src 'self'; script-src 'self'; style-src 'self'${styles.map((h) => ` ${h}`).join("")}; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;

interface Asset {
  type: string;
  body: Buffer;
}

function loadAssets(): Map<string, Asset> {
  const types: Record<string, string> = { "console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8" };
  return new Map(Object.entries(types).map(([name, type]) => [name, { type, body: readFileSync(join(ASSETS, name)) }]));
}

export async function startConsole(o: ConsoleOptions): Promise<RunningConsole> {
  const t = consoleTexts(o.lang);
  const eta = new Eta({ views: VIEWS, cache: true, autoTrim: [false, "nl"] });
  const assets = loadAssets();
  const collector = startCollector({ config: o.config });
  const base = {
    logger: false,
    forceCloseConnections: true,
    // A path the router cannot decode never reaches the hooks: the same one line as a path the hook refuses.
    frameworkErrors: (e: FastifyError, _req: FastifyRequest, reply: FastifyReply) => reply.code(400).type("text/plain; charset=utf-8").send(e.code === "FST_ERR_BAD_URL" ? BAD_PATH : "bad request\n"),
  } as const;
  let app: FastifyInstance;
  if (o.tls) {
    // With a client CA, a client without a certificate it signed does not even get to send a request.
    const client = o.tls.ca ? { ca: o.tls.ca, requestCert: true, rejectUnauthorized: true } : {};
    const https: FastifyInstance<HttpsServer> = Fastify({ ...base, https: { key: o.tls.key, cert: o.tls.cert, minVersion: "TLSv1.2", ...client } });
    // The routes touch no raw request or socket, so the HTTPS instance serves them as the HTTP one's type says.
    app = https as unknown as FastifyInstance;
  } else app = Fastify(base);
  routes(app, o, t, eta, assets, collector);
  try {
    if (o.listen.path !== undefined) {
      // A socket left by a console that was killed would refuse the listen; anything else at that path stays.
      if (isSocket(o.listen.path)) rmSync(o.listen.path);
      await app.listen({ path: o.listen.path });
      chmodSync(o.listen.path, 0o600);
    } else await app.listen({ host: o.listen.host, port: o.listen.port });
  } catch (e) {
    await collector.stop(0);
    throw e;
  }
  const address: ListenAddress = o.listen.path !== undefined ? o.listen : { host: o.listen.host, port: (app.server.address() as AddressInfo).port };
  return {
    url: address.path !== undefined ? hostPort(address) : `${o.tls ? "https" : "http"}://${hostPort(address)}/`,
    address,
    async close() {
      await Promise.all([app.close(), collector.stop()]);
    },
  };
}

function routes(app: FastifyInstance, o: ConsoleOptions, t: Translate, eta: Eta, assets: Map<string, Asset>, collector: Collector): void {
  const page = (title: string, body: string, live: boolean): string =>
    eta.render("layout", { lang: o.lang, title, body, live, refreshMs: REFRESH_MS, lostText: t("connectionLost", { time: "%TIME%" }) });
  const message = (reply: FastifyReply, code: number, text: string) =>
    reply.code(code).type("text/html; charset=utf-8").send(page(t("title"), eta.render("message", { t, message: printable(text) }), false));
  const overview = (): string => eta.render("overview", { t, v: overviewView(collector.status(), t, o.lang) });
  const session = o.token === undefined ? undefined : sessionValue(o.token);
  const told = loginEvents(o);

  app.addHook("onRequest", async (req, reply) => {
    if (req.method !== "GET" && req.method !== "HEAD") return reply.code(405).header("allow", "GET, HEAD").type("text/plain; charset=utf-8").send("read-only: GET only\n");
    // No page of the console has a control character in its path; refused before any page could echo it.
    if (badPath(req.url)) return reply.code(400).type("text/plain; charset=utf-8").send(BAD_PATH);
    // Bound to loopback without a token, the Host header is all that stops a page elsewhere from reading the console
    // through a name it points at 127.0.0.1 (DNS rebinding).
    if (o.token === undefined && !o.tls?.ca && !isLoopback(hostOf(req.headers.host))) return reply.code(421).type("text/plain; charset=utf-8").send("unexpected Host header\n");
    if (o.token === undefined || session === undefined) return;
    const url = new URL(req.url, "http://console");
    if (url.pathname === "/healthz") return;
    const given = url.searchParams.get("token");
    if (given !== null) {
      if (!sameSecret(given, o.token)) {
        told.refused(req.ip);
        return message(reply, 401, t("error.unauthorized"));
      }
      told.login(req.ip);
      // Once: the token leaves the address bar (and the history) for a cookie scripts cannot read.
      url.searchParams.delete("token");
      const secure = o.tls ? "; Secure" : "";
      return reply.code(303).header("set-cookie", `${SESSION_COOKIE}=${session}; Path=/; HttpOnly; SameSite=Strict${secure}`).header("location", sameOriginLocation(url)).send();
    }
    const bearer = bearerToken(req.headers.authorization);
    if (bearer !== undefined && sameSecret(bearer, o.token)) return;
    if (bearer !== undefined) told.refused(req.ip);
    const cookie = cookieValue(req.headers.cookie, SESSION_COOKIE);
    if (cookie !== undefined && sameSecret(cookie, session)) return;
    return message(reply.header("www-authenticate", 'Bearer realm="dcctl console"'), 401, t("error.unauthorized"));
  });

  app.addHook("onSend", async (_req, reply, payload) => {
    if (!reply.hasHeader("content-security-policy")) reply.header("content-security-policy", csp());
    reply
      .header("x-frame-options", "DENY")
      .header("x-content-type-options", "nosniff")
      .header("referrer-policy", "no-referrer")
      .header("cross-origin-opener-policy", "same-origin")
      .header("cross-origin-resource-policy", "same-origin")
      .header("cache-control", "no-store");
    if (o.tls) reply.header("strict-transport-security", "max-age=31536000");
    return payload;
  });

  app.get("/", async (_req, reply) => reply.type("text/html; charset=utf-8").send(page(t("title"), overview(), true)));
  app.get("/fragment/overview", async (_req, reply) => reply.type("text/html; charset=utf-8").send(overview()));
  app.get("/api/status", async (_req, reply) => reply.type("application/json; charset=utf-8").send(JSON.stringify(collector.status(), null, 1)));
  app.get("/healthz", async (_req, reply) => reply.type("text/plain; charset=utf-8").send("ok\n"));
  app.get("/favicon.ico", async (_req, reply) => reply.code(204).send());
  app.get<{ Params: { name: string } }>("/assets/:name", async (req, reply) => {
    const asset = assets.get(req.params.name);
    if (!asset) return message(reply, 404, t("error.notFound"));
    return reply.type(asset.type).send(asset.body);
  });
  app.get<{ Params: { runId: string } }>("/runs/:runId", async (req, reply) => {
    const found = runPage(req.params.runId, o.lang, { href: "/", text: t("report.back") });
    if (!found) return message(reply, 404, t("report.notFound", { runId: req.params.runId }));
    if (found.html) return reply.header("content-security-policy", csp(found.styleHashes)).type("text/html; charset=utf-8").send(found.html);
    const { run } = found;
    const body = eta.render("run", {
      t,
      run,
      error: found.error,
      runStatus: t(`runStatus.${run.status}`),
      runTone: run.status === "ok" ? "ok" : run.status === "running" ? "warn" : "bad",
      runKind: ["drill", "failover", "failback", "recover"].includes(run.kind) ? t(`kind.${run.kind}`) : run.kind,
    });
    return reply.type("text/html; charset=utf-8").send(page(t("report.title", { runId: run.runId }), body, false));
  });

  app.setNotFoundHandler(async (_req, reply) => message(reply, 404, t("error.notFound")));
  app.setErrorHandler(async (err, req, reply) => {
    // The one line an operator needs; the page says the same.
    process.stderr.write(`dcctl serve: ${req.method} ${req.url.replace(/([?&]token=)[^&]*/, "$1***")}: ${errorMessage(err)}\n`);
    return message(reply, 500, t("error.internal", { message: errorMessage(err) }));
  });
}

/** Wrong tokens from one address are told to the SOC at most this often, with their count: a scanner cannot flood the spool. */
const REFUSED_EVERY_MS = 60_000;

/** DCCTL-5001 for a token login (`?token=` exchanged for a session), DCCTL-5002 for wrong tokens (notify/events.ts). */
function loginEvents(o: ConsoleOptions): { login(client: string): void; refused(client: string): void } {
  const where = hostPort(o.listen);
  const refusedFrom = new Map<string, { toldAt: number; attempts: number }>();
  return {
    login(client) {
      emitEvent(o.config, "console.login", { target: where, outcome: "ok", message: `console login with its token from ${client} at ${where}`, data: { client, console: where } });
    },
    refused(client) {
      const now = Date.now();
      const seen = refusedFrom.get(client) ?? { toldAt: 0, attempts: 0 };
      seen.attempts++;
      refusedFrom.set(client, seen);
      if (now - seen.toldAt < REFUSED_EVERY_MS) return;
      emitEvent(o.config, "console.login-refused", { target: where, outcome: "refused", message: `console: ${seen.attempts} wrong token${seen.attempts === 1 ? "" : "s"} from ${client} at ${where}`, data: { client, console: where, attempts: seen.attempts } });
      refusedFrom.set(client, { toldAt: now, attempts: 0 });
      // An address seen once is forgotten after a while: the map holds the last hour's callers at most.
      for (const [c, v] of refusedFrom) if (now - v.toldAt > 60 * REFUSED_EVERY_MS) refusedFrom.delete(c);
    },
  };
}

function isSocket(path: string): boolean {
  try {
    return lstatSync(path).isSocket();
  } catch {
    return false;
  }
}

/** The host name of a Host header (without the port; IPv6 without brackets). */
function hostOf(header: string | undefined): string {
  const h = header ?? "";
  const v6 = /^\[([^\]]+)\]/.exec(h);
  return v6?.[1] ?? h.replace(/:\d+$/, "");
}
