import { existsSync, readFileSync } from "node:fs";
import { labPaths } from "./paths.js";

/**
 * `node dist/lab/last-written.js LAB_DIR`: the last dossier the primary's portal wrote, as the lab recorded it
 * outside the primary (`CODE TIME`), for the failover runbook's data-loss step. Exit 3 when nothing was recorded
 * (the lab's portal writes nothing with `lab up --write-every 0`).
 */
const dir = process.argv[2];
if (!dir) {
  process.stderr.write("usage: last-written.js LAB_DIR\n");
  process.exit(2);
}
const file = labPaths(dir).lastWritten;
if (!existsSync(file)) {
  process.stderr.write(`the lab's portal recorded no write (${file})\n`);
  process.exit(3);
}
const last = JSON.parse(readFileSync(file, "utf8")) as { code: string; at: string };
process.stdout.write(`${last.code} ${last.at}\n`);
