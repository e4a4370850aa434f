import { startPortal } from "./server.js";

// `node dist/lab/portal/main.js LISTEN_HOST:PORT PG_HOST:PORT PG_USER DATABASE [WRITE_EVERY_MS RECORD_FILE]` — the
// form a runbook's command step starts it with on an application host (detached, see lab/portal/ctl); the lab starts
// the primary's first portal with a writer (see server.ts).
const [listen, pgAddr, user, database, everyMs, recordFile] = process.argv.slice(2);
if (!listen || !pgAddr || !user || !database || (everyMs !== undefined && !(Number(everyMs) > 0 && recordFile))) {
  process.stderr.write("usage: portal LISTEN_HOST:PORT PG_HOST:PORT PG_USER DATABASE [WRITE_EVERY_MS RECORD_FILE]\n");
  process.exit(2);
}
const [listenHost = "", listenPort = ""] = listen.split(":");
const [pgHost = "", pgPort = ""] = pgAddr.split(":");
const writer = everyMs && recordFile ? { everyMs: Number(everyMs), recordFile } : undefined;
const portal = await startPortal({ listenHost, listenPort: Number(listenPort), pg: { host: pgHost, port: Number(pgPort), user, database }, ...(writer ? { writer } : {}) });
process.stdout.write(`portal listening on ${listen}, data from ${pgAddr}/${database}\n`);
for (const sig of ["SIGTERM", "SIGINT"] as const) process.on(sig, () => void portal.close().then(() => process.exit(0)));
