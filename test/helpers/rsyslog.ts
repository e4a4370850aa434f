import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { until } from "./until.js";

/**
 * A real syslog collector for tests: Debian's rsyslogd, receiving RFC 5425 syslog over TLS (its gtls driver) on an
 * address of 127.0.0.0/8, asking clients for a certificate its CA signed, with its own config, pid file and work
 * folder under `dir`. Every message it receives is a JSON line in received.jsonl: what rsyslog parsed (MSGID,
 * structured data) and the message as it came (rawmsg). The certificates are made here with the openssl CLI.
 */

export interface Certificates {
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

/** One received message: rsyslog's parse of it, and its text as it arrived. */
export interface Received {
  msgid: string;
  sd: string;
  host: string;
  app: string;
  severity: string;
  facility: string;
  raw: string;
}

export interface Rsyslog {
  address: string;
  port: number;
  serverName: string;
  certs: Certificates;
  received(): Received[];
  /** Stops it (SIGTERM) and waits until it has exited. */
  stop(): Promise<void>;
  /** Starts it again on the same address and port. */
  start(): Promise<void>;
}

function openssl(args: string[], cwd: string): void {
  const r = spawnSync("openssl", args, { cwd, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`openssl ${args.join(" ")}: ${r.stderr}`);
}

/** A CA, a server certificate for `serverName` and `address`, and a client certificate, all EC P-256, valid 2 days. */
export function makeCertificates(dir: string, serverName: string, address: string): Certificates {
  mkdirSync(dir, { recursive: true });
  const key = (name: string) => ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", `${name}.key`];
  openssl(["req", "-x509", ...key("ca"), "-out", "ca.pem", "-days", "2", "-subj", "/CN=dcctl test SOC CA"], dir);
  writeFileSync(join(dir, "server.ext"), `subjectAltName=DNS:${serverName},IP:${address}\nextendedKeyUsage=serverAuth\n`);
  writeFileSync(join(dir, "client.ext"), "extendedKeyUsage=clientAuth\n");
  for (const [name, cn] of [["server", serverName], ["client", "dcctl.test"]] as const) {
    openssl(["req", ...key(name), "-out", `${name}.csr`, "-subj", `/CN=${cn}`], dir);
    openssl(["x509", "-req", "-in", `${name}.csr`, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", `${name}.pem`, "-days", "2", "-extfile", `${name}.ext`], dir);
  }
  spawnSync("chmod", ["600", join(dir, "client.key"), join(dir, "server.key")]);
  return { ca: join(dir, "ca.pem"), serverCert: join(dir, "server.pem"), serverKey: join(dir, "server.key"), clientCert: join(dir, "client.pem"), clientKey: join(dir, "client.key") };
}

const TEMPLATE = [
  'template(name="soc" type="list") {',
  '  constant(value="{\\"msgid\\":\\"") property(name="msgid" format="json")',
  '  constant(value="\\",\\"sd\\":\\"") property(name="structured-data" format="json")',
  '  constant(value="\\",\\"host\\":\\"") property(name="hostname" format="json")',
  '  constant(value="\\",\\"app\\":\\"") property(name="app-name" format="json")',
  '  constant(value="\\",\\"severity\\":\\"") property(name="syslogseverity-text" format="json")',
  '  constant(value="\\",\\"facility\\":\\"") property(name="syslogfacility-text" format="json")',
  '  constant(value="\\",\\"raw\\":\\"") property(name="rawmsg" format="json")',
  '  constant(value="\\"}\\n")',
  "}",
].join("\n");

export async function startRsyslog(dir: string): Promise<Rsyslog> {
  if (spawnSync("rsyslogd", ["-v"]).status !== 0) throw new Error("rsyslogd is missing: scripts/setup.sh installs rsyslog and rsyslog-gnutls");
  // An address of its own in 127.0.0.0/8, so that helpers working side by side never meet on a port.
  const address = `127.0.${1 + Math.floor(Math.random() * 250)}.${2 + Math.floor(Math.random() * 250)}`;
  const serverName = "soc.test";
  const certs = makeCertificates(join(dir, "certs"), serverName, address);
  const work = join(dir, "work");
  mkdirSync(work, { recursive: true });
  const out = join(dir, "received.jsonl");
  const portFile = join(dir, "port");
  let port = 0;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const config = () =>
    [
      `global(workDirectory="${work}" defaultNetstreamDriver="gtls" defaultNetstreamDriverCAFile="${certs.ca}" defaultNetstreamDriverCertFile="${certs.serverCert}" defaultNetstreamDriverKeyFile="${certs.serverKey}")`,
      // x509/certvalid: a client must show a certificate the CA signed, as a province's collector would ask.
      'module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="x509/certvalid")',
      // Its own ruleset: rsyslogd's messages about itself (start, a probe's failed handshake) stay out of the file.
      `input(type="imtcp" address="${address}" port="${port}" ruleset="soc"${port === 0 ? ` listenPortFileName="${portFile}"` : ""})`,
      TEMPLATE,
      `ruleset(name="soc") { action(type="omfile" file="${out}" template="soc") }`,
      "",
    ].join("\n");
  const start = async (): Promise<void> => {
    writeFileSync(join(dir, "rsyslog.conf"), config());
    let stderr = "";
    const c = spawn("rsyslogd", ["-n", "-f", join(dir, "rsyslog.conf"), "-i", join(dir, "rsyslogd.pid")], { stdio: ["ignore", "ignore", "pipe"] });
    c.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
    child = c;
    exited = new Promise((resolve) => c.once("exit", () => resolve()));
    let gone = false;
    void exited.then(() => (gone = true));
    if (port === 0) {
      port = await until("rsyslogd's port", () => {
        if (gone) throw new Error(`rsyslogd exited: ${stderr}`);
        return existsSync(portFile) && Number(readFileSync(portFile, "utf8").trim());
      }, 20_000);
    }
    // Listening: a TLS-less connect succeeds (rsyslog accepts, then drops the handshake that never comes).
    await until(`rsyslogd listening on ${address}:${port}`, () => {
      if (gone) throw new Error(`rsyslogd exited: ${stderr}`);
      return spawnSync("bash", ["-c", `exec 3<>/dev/tcp/${address}/${port}`]).status === 0;
    }, 20_000);
  };
  await start();
  return {
    address,
    get port() {
      return port;
    },
    serverName,
    certs,
    received: () =>
      existsSync(out)
        ? readFileSync(out, "utf8")
            .split("\n")
            .filter(Boolean)
            .map((l) => JSON.parse(l) as Received)
        : [],
    async stop() {
      if (!child || child.exitCode !== null) return;
      child.kill("SIGTERM");
      await exited;
    },
    start,
  };
}
