import { basename } from "node:path";
import { findHost } from "../../../inventory/index.js";
import { DcctlError } from "../../../util/errors.js";
import { defineStep, type StepContext } from "./types.js";
import { Params } from "./params.js";
import { lastLine, shown } from "./on-hosts.js";

/**
 * `dns`: points service names at the other site through a configured command. nsupdate gets its update script on
 * standard input; any other command runs once per record with {name}, {address} and {ttl} replaced in its arguments
 * (each replacement stays one argument: nothing passes through a shell).
 */
interface DnsRecord {
  name: string;
  /** An address, or the inventory host whose ip it is. */
  address: string;
  ttl: number;
}

interface DnsParams {
  command: string[];
  server?: string;
  records: DnsRecord[];
}

function addressOf(ctx: Pick<StepContext, "sites"> | undefined, value: string): string {
  const host = ctx ? findHost(ctx.sites, value) : undefined;
  return host ? host.ip : value;
}

function nsupdateScript(params: DnsParams, resolve: (v: string) => string): string {
  const lines = params.server ? [`server ${params.server}`] : [];
  for (const r of params.records) lines.push(`update delete ${r.name} A`, `update add ${r.name} ${r.ttl} A ${resolve(r.address)}`);
  lines.push("send", "");
  return lines.join("\n");
}

const isNsupdate = (argv: string[]) => basename(argv[0] ?? "") === "nsupdate";

export const dnsStep = defineStep<DnsParams>({
  type: "dns",
  // Each record is deleted and added again: the end state is the same however often it runs.
  idempotent: true,
  parse(raw) {
    const p = new Params(raw);
    p.only("command", "server", "records");
    const records =
      p.list<DnsRecord>("records", (r) => {
        r.only("name", "address", "ttl");
        const name = r.string("name", true);
        const address = r.string("address", true);
        return name && address ? { name, address, ttl: r.number("ttl", 0) ?? 60 } : undefined;
      }) ?? [];
    if (!records.length) p.problems.push({ path: ["with", "records"], message: "with.records must list at least one { name, address } (address: an IP or an inventory host)" });
    return p.result({ command: p.argv("command") ?? ["nsupdate"], server: p.string("server"), records });
  },
  confirm: {
    texts: {
      en: { change: "switch DNS: {{records}}", record: "point {{name}} at {{address}} (ttl {{ttl}})" },
      vi: { change: "chuyển bản ghi DNS: {{records}}", record: "trỏ {{name}} tới {{address}} (ttl {{ttl}})" },
    },
    change: (_p, { records }, t) => t("change", { records: records.map((r) => t("record", { ...r })).join("; ") }),
  },
  plan(_p, params) {
    const lines = params.records.map((r) => `point ${r.name} at ${r.address} (ttl ${r.ttl})`);
    lines.push(isNsupdate(params.command) ? `through \`${shown(params.command)}\` (update script on stdin)` : `through \`${shown(params.command)}\`, once per record`);
    return lines;
  },
  async run(_p, params, ctx) {
    const resolve = (v: string) => addressOf(ctx, v);
    const runner = ctx.services.local;
    if (isNsupdate(params.command)) {
      const res = await runner.run(params.command, { stdin: nsupdateScript(params, resolve), timeoutMs: _p.step.timeoutMs });
      if (res.code !== 0) throw new DcctlError(`nsupdate failed (exit ${res.code}): ${lastLine(res.stderr)}`);
    } else {
      for (const r of params.records) {
        const argv = params.command.map((a) => a.replaceAll("{name}", r.name).replaceAll("{address}", resolve(r.address)).replaceAll("{ttl}", String(r.ttl)));
        const res = await runner.run(argv, { timeoutMs: _p.step.timeoutMs });
        if (res.code !== 0) throw new DcctlError(`\`${shown(argv)}\` failed (exit ${res.code}): ${lastLine(res.stderr)}`);
      }
    }
    return { notes: params.records.map((r) => `${r.name} → ${resolve(r.address)}`), data: {} };
  },
});
