import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { siteCommand } from "../../lab/lab.js";
import { repoRoot } from "../../util/tools.js";
import { until } from "./until.js";

/** A real SMTP server on a lab site's management host: it writes its port, then one JSON line per mail. */
const SMTP_SINK = `import { createRequire } from "node:module";
import { appendFileSync, writeFileSync } from "node:fs";
const [anchor, portFile, mailFile] = process.argv.slice(1);
const { SMTPServer } = createRequire(anchor)("smtp-server");
const server = new SMTPServer({
  authOptional: true,
  disabledCommands: ["STARTTLS"],
  logger: false,
  onData(stream, session, cb) {
    const chunks = [];
    stream.on("data", (c) => chunks.push(c));
    stream.on("end", () => {
      appendFileSync(mailFile, JSON.stringify({ to: session.envelope.rcptTo.map((r) => r.address), raw: Buffer.concat(chunks).toString("utf8") }) + "\\n");
      cb();
    });
  },
});
server.listen(0, "127.0.0.1", () => writeFileSync(portFile, String(server.server.address().port)));
process.on("SIGTERM", () => server.close(() => process.exit(0)));`;

export interface Mail {
  to: string[];
  raw: string;
}

export interface LabMailSink {
  /** Its port on the site's 127.0.0.1, for a `notify.smtp` section run at that site. */
  port: number;
  /** The mails received so far, once there is one (for `until`). */
  mails(): Mail[] | undefined;
  /** Stops the server and removes its files. */
  stop(): Promise<void>;
}

/** Starts the sink at `site`; its files are `<lab>/<name>.port` and `<lab>/<name>.mails`. */
export async function startLabMailSink(labDir: string, site: "primary" | "secondary", name: string): Promise<LabMailSink> {
  const portFile = join(labDir, `${name}.port`);
  const mailFile = join(labDir, `${name}.mails`);
  for (const f of [portFile, mailFile]) rmSync(f, { force: true });
  const { cmd, args, env } = siteCommand(labDir, site, [process.execPath, "--input-type=module", "-e", SMTP_SINK, join(repoRoot, "package.json"), portFile, mailFile]);
  const child: ChildProcess = spawn(cmd, args, { env, stdio: "ignore" });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await gone;
    }
    for (const f of [portFile, mailFile]) rmSync(f, { force: true });
  };
  try {
    const port = Number(await until(`the SMTP server in the ${site}'s management namespace`, () => (existsSync(portFile) ? readFileSync(portFile, "utf8") : undefined), 30_000));
    const mails = () => (existsSync(mailFile) ? readFileSync(mailFile, "utf8").trim().split("\n").map((l) => JSON.parse(l) as Mail) : undefined);
    return { port, mails, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
