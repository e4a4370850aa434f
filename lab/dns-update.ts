import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

/**
 * The lab's DNS: a hosts-style file (`ADDRESS NAME` per line) that the failover and failback runbooks' `dns` step
 * rewrites through `command: [node, dist/lab/dns-update.js, FILE, "{name}", "{address}"]`.
 *   dns-update.js FILE NAME ADDRESS
 * Replaces every line for NAME with one `ADDRESS NAME` line (atomically: temp file + rename), so running it twice
 * leaves the same file. Prints what NAME now points at.
 */
const [file, name, address] = process.argv.slice(2);
if (!file || !name || !address || !/^[\w.-]+$/.test(name) || !/^[\d.:a-fA-F]+$/.test(address)) {
  process.stderr.write("usage: dns-update.js FILE NAME ADDRESS\n");
  process.exit(2);
}
mkdirSync(dirname(file), { recursive: true });
const lines = existsSync(file) ? readFileSync(file, "utf8").split("\n").filter((l) => l.trim() !== "") : [];
const kept = lines.filter((l) => l.trim().startsWith("#") || l.trim().split(/\s+/)[1] !== name);
kept.push(`${address} ${name}`);
const tmp = `${file}.${process.pid}.tmp`;
writeFileSync(tmp, kept.join("\n") + "\n");
renameSync(tmp, file);
process.stdout.write(`${name} -> ${address}\n`);
