import type { Argv, CommandModule } from "yargs";
import { loadBackupConfig } from "../backup/repositories.js";
import { checkExposure, DEFAULT_LISTEN, parseListen, readTlsFiles, readTokenFile } from "../console/access.js";
import { DcctlError, errorMessage, InputError } from "../util/errors.js";
import { chooseLang } from "../util/i18n.js";

/**
 * `dcctl serve`: the duty room's read-only web console (console/). It runs until SIGINT or SIGTERM, then stops
 * cleanly and exits 0. Exit 2 for bad flags, and for an address other machines can reach without a token or client
 * certificates; 1 when it cannot listen.
 */

interface ServeArgs {
  listen: string;
  "token-file"?: string;
  "tls-cert"?: string;
  "tls-key"?: string;
  "client-ca"?: string;
  lang?: string;
}

export const serveCommand: CommandModule<object, ServeArgs> = {
  // Its command and description are in ./commands.ts, which lists the groups without loading them.
  builder: (y: Argv<object>): Argv<ServeArgs> =>
    y
      .option("listen", { type: "string", default: DEFAULT_LISTEN, describe: "HOST:PORT to listen on; other than loopback only with --token-file or --client-ca (port 0: any free one)" })
      .option("token-file", { type: "string", describe: "a file (mode 0600) holding the token that requests must bring (Authorization: Bearer, or ?token= once)" })
      .option("tls-cert", { type: "string", describe: "serve HTTPS with this certificate (PEM)" })
      .option("tls-key", { type: "string", describe: "the certificate's private key (PEM)" })
      .option("client-ca", { type: "string", describe: "require client certificates signed by this CA (PEM); with --tls-cert" })
      .example("$0 serve --lang vi", "on the management host, for the duty screen")
      .example("$0 serve --listen 10.20.10.5:8443 --tls-cert c.pem --tls-key k.pem --token-file /etc/dcctl/console.token", "on the duty room's network"),
  handler: async (args) => {
    const listen = parseListen(args.listen);
    const token = args["token-file"] === undefined ? undefined : readTokenFile(args["token-file"]);
    const [cert, key, ca] = [args["tls-cert"], args["tls-key"], args["client-ca"]];
    if ((cert === undefined) !== (key === undefined)) throw new InputError(["dcctl serve: give --tls-cert and --tls-key together"]);
    if (ca !== undefined && cert === undefined) throw new InputError(["dcctl serve: --client-ca needs --tls-cert and --tls-key (client certificates are a TLS matter)"]);
    checkExposure(listen, { ...(token !== undefined ? { token } : {}), clientCertificates: ca !== undefined });
    const tls = cert !== undefined && key !== undefined ? readTlsFiles({ cert, key, ca }) : undefined;
    const config = loadBackupConfig();
    const lang = chooseLang(args.lang, config.lang);

    // The web server (fastify, the console's pages) loads here: `dcctl serve --help` and bad flags need none of it.
    const { startConsole } = await import("../console/server.js");
    let running;
    try {
      running = await startConsole({ listen, lang, config, ...(token !== undefined ? { token } : {}), ...(tls ? { tls } : {}) });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new DcctlError(`cannot listen on ${args.listen}: ${code === "EADDRINUSE" ? "the address is in use" : code === "EADDRNOTAVAIL" ? "no such address on this machine" : errorMessage(e)}`);
    }
    const guard = [token !== undefined ? "token required" : "", ca !== undefined ? "client certificate required" : ""].filter(Boolean).join(", ") || "this machine only";
    process.stderr.write(`dcctl serve: listening on ${running.url} (read-only, ${guard}, lang ${lang}, site ${config.site})\n`);
    // The SOC feed's spool drains from here too, every minute: the console's own logins, and what others left.
    const { drainPeriodically } = await import("../notify/event-feed.js");
    const stopDraining = drainPeriodically(config);

    const signal = await new Promise<NodeJS.Signals>((resolve) => {
      process.once("SIGINT", () => resolve("SIGINT")).once("SIGTERM", () => resolve("SIGTERM"));
    });
    // A second signal while closing stops at once.
    const hard = () => process.exit(1);
    process.once("SIGINT", hard).once("SIGTERM", hard);
    stopDraining();
    await running.close();
    process.off("SIGINT", hard).off("SIGTERM", hard);
    process.stderr.write(`dcctl serve: stopped (${signal})\n`);
    // A reading of a repository that does not answer may still hold a restic (it dies with us: --pdeathsig); the
    // server is closed, so nothing is lost by not waiting for it.
    setTimeout(() => process.exit(), 1000).unref();
  },
};
