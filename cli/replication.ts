import type { Argv, CommandModule } from "yargs";
import { loadSites } from "../inventory/index.js";
import { loadBackupConfig } from "../backup/repositories.js";
import { hostPool } from "../hosts/index.js";
import { describeLag, findPair, measurePairs, pairStatuses, recordStatuses, replicationPairs, reversed, setupPair, statusExitCode } from "../backup/replication/index.js";
import { sizeText } from "../databases/keep.js";
import { DB_ENGINES, ENGINES } from "../databases/registry.js";
import { describeUnreachable, probeSites } from "../backup/reachability.js";
import { DcctlError, ExitCode } from "../util/errors.js";
import { textTable } from "../util/table.js";
import { print } from "./print.js";

/**
 * `dcctl replication setup|status`: the standby pairs of the inventory (a secondary host's `standbyFor`), seeded from
 * their primaries and measured. Exit codes: 0 ok, 1 failed, 2 bad input, 4 a pair is broken or over its RPO,
 * 5 setup would overwrite what a standby holds and --yes was not given, or would discard writes a former primary holds
 * past the fork (kept, and named) and --discard-diverged was not given; 7 (status) the other site does not answer.
 */


interface SetupArgs {
  pair: string;
  reverse: boolean;
  yes: boolean;
  "discard-diverged": boolean;
  json: boolean;
}

const setupCommand: CommandModule<object, SetupArgs> = {
  command: "setup",
  describe: `make a standby a replica of its primary (${DB_ENGINES.map((e) => ENGINES[e].replicationMethod).join(", ")}), seeded from it; keeps one that already is`,
  builder: (y: Argv<object>): Argv<SetupArgs> =>
    y
      .option("pair", { type: "string", demandOption: true, describe: "the standby host (or its primary)" })
      .option("reverse", { type: "boolean", default: false, describe: "the other way round: the pair's primary host follows its standby (reprotect after a failover, until the switchover back)" })
      .option("yes", { type: "boolean", default: false, describe: "replace what the standby holds (its databases, or a replication from elsewhere)" })
      .option("discard-diverged", {
        type: "boolean",
        default: false,
        describe: "rebuild a former primary even though it holds writes past where its new primary's history forked (kept first under the state folder's replication/diverged/); without it such a setup stops, exit 5",
      })
      .option("json", { type: "boolean", default: false })
      .example("$0 replication setup --pair qn-dr-db-01", "seed qn-dr-db-01 from qn-db-01 and let it stream")
      .example("$0 replication setup --pair qn-dr-db-01 --reverse --yes", "after a failover: wind qn-db-01 back onto qn-dr-db-01 (pg_rewind) as its replica"),
  handler: async (args) => {
    const sites = loadSites();
    const found = findPair(sites, args.pair);
    const pair = args.reverse ? reversed(found) : found;
    const config = loadBackupConfig();
    const exec = hostPool(config);
    try {
      const log = (line: string) => void (args.json ? undefined : process.stderr.write(`${line}\n`));
      const result = await setupPair(config, pair, exec, { overwrite: args.yes, log, diverged: { discard: args["discard-diverged"] } });
      const [status] = await pairStatuses(config, [pair], exec);
      // The reversed pair is measured, not recorded: the record follows the inventory's pairs.
      if (!args.reverse) recordStatuses(config, status ? [status] : [], replicationPairs(sites));
      if (args.json) print(JSON.stringify({ pair: pair.name, ...result, status }, null, 2));
      else {
        for (const n of result.notes) print(n);
        // The last line says it all (a runbook's command step keeps the last line in its report).
        print(`${pair.name}: ${result.action}${status ? `, ${status.health}, lag ${describeLag(status)}` : ""}`);
      }
    } finally {
      await exec.closeAll();
    }
  },
};

interface StatusArgs {
  pair?: string;
  json: boolean;
}

const statusCommand: CommandModule<object, StatusArgs> = {
  command: "status",
  describe: "per pair: health, lag (seconds and bytes) against the tier's RPO; writes the Prometheus textfile; exit 4 if a pair is broken or over RPO",
  builder: (y: Argv<object>): Argv<StatusArgs> =>
    y.option("pair", { type: "string", describe: "only this pair (standby or primary host)" }).option("json", { type: "boolean", default: false }),
  handler: async (args) => {
    const sites = loadSites();
    const pairs = args.pair === undefined ? replicationPairs(sites) : [findPair(sites, args.pair)];
    const config = loadBackupConfig();
    // The other sites probed beside the pairs (both bounded): a lost site is named, not waited for.
    const [statuses, reach] = await Promise.all([measurePairs(config, pairs, { record: true, known: replicationPairs(sites) }), probeSites(config, sites)]);
    const lost = reach.filter((r) => !r.reachable);
    if (!args.json) for (const r of lost) print(`${r.site.toUpperCase()} SITE UNREACHABLE ${describeUnreachable(r)}`);
    if (args.json) print(JSON.stringify(statuses, null, 2));
    else if (!statuses.length) print("no replication pairs: no secondary host has standbyFor with a database its primary runs");
    else
      print(
        textTable(
          ["PAIR", "PRIMARY", "ENGINE", "HEALTH", "LAG", "BEHIND", "RPO", "NOTES"],
          statuses.map((s) => [s.pair, s.primary, s.engine, s.overRpo ? `${s.health}, over RPO` : s.health, describeLag(s), s.lagBytes === undefined ? "-" : sizeText(s.lagBytes), `${s.rpoSeconds / 60} min`, s.notes.join("; ")]),
        ),
      );
    const code = statusExitCode(statuses);
    const gone = lost[0];
    if (gone) {
      const bad = statuses.filter((s) => !s.ok);
      throw new DcctlError(`the ${gone.site} site is unreachable since ${gone.unreachableSince ?? gone.probedAt}; ${bad.length} of ${statuses.length} replication pairs not streaming (${bad.map((s) => `${s.pair}: ${s.health}${s.lagSeconds !== undefined ? `, last heard ${describeLag(s)} ago` : ""}`).join("; ") || "none"})`, ExitCode.siteUnreachable);
    }
    if (code) {
      const bad = statuses.filter((s) => !s.ok);
      const first = bad[0];
      throw new DcctlError(`${bad.length} replication pair${bad.length === 1 ? " is" : "s are"} not streaming within RPO${first ? ` (first: ${first.pair}: ${first.overRpo ? `lag ${describeLag(first)} over RPO` : first.health}${first.notes[0] ? `: ${first.notes[0]}` : ""})` : ""}`, code);
    }
  },
};

export const replicationCommands: CommandModule<object, object> = {
  // Its command and description are in ./commands.ts, which lists the groups without loading them.
  builder: (y: Argv<object>): Argv<object> => y.command(setupCommand).command(statusCommand).demandCommand(1, "name a replication command: setup or status"),
  handler: () => undefined,
};
