import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { Argv, CommandModule } from "yargs";
import { authorizedKeyLine, MAX_RUNS_PER_REQUEST, parsePeerRequest, peerRequestArgv, servePeerRequest } from "../backup/peer-access.js";
import { InputError } from "../util/errors.js";
import { stateDir } from "../util/state.js";
import { print } from "./print.js";

/**
 * `dcctl peer-records`: this site's records as the other site reads them (backup/peer-access.ts). `serve` is the
 * forced command of the other site's key in this management host's authorized_keys; `authorized-key` writes that
 * line; `records` and `runs` answer the same requests by hand.
 */

interface ServeArgs {
  "state-dir": string;
}

interface ReadArgs {
  "state-dir"?: string;
  ids?: string[];
}

interface KeyArgs {
  key: string;
  from?: string;
  "state-dir"?: string;
  dcctl?: string;
}

/** The state folder: the flag, else this site's repositories file's, else $DCCTL_STATE_DIR (or the default). */
async function siteStateDir(flag: string | undefined): Promise<string> {
  if (flag !== undefined) return resolve(flag);
  try {
    const { loadBackupConfig } = await import("../backup/repositories.js");
    return loadBackupConfig().stateDir;
  } catch {
    return stateDir();
  }
}

function answer(dir: string, argv: string[]): void {
  process.stdout.write(servePeerRequest(dir, argv.join(" ")));
}

const serve: CommandModule<object, ServeArgs> = {
  command: "serve",
  describe: "answer the request in SSH_ORIGINAL_COMMAND and nothing else (the forced command of authorized-key's line)",
  builder: (y: Argv<object>): Argv<ServeArgs> => y.option("state-dir", { type: "string", demandOption: true, describe: "this site's state folder" }),
  handler: (args) => {
    process.stdout.write(servePeerRequest(resolve(args["state-dir"]), process.env.SSH_ORIGINAL_COMMAND));
  },
};

const records: CommandModule<object, ReadArgs> = {
  command: "records",
  describe: "this site's last runs and verifies, as JSON (what the other site reads)",
  builder: (y: Argv<object>): Argv<ReadArgs> => y.option("state-dir", { type: "string", describe: "this site's state folder (default: the repositories file's)" }),
  handler: async (args) => answer(await siteStateDir(args["state-dir"]), peerRequestArgv({ kind: "records" })),
};

const runs: CommandModule<object, ReadArgs> = {
  command: "runs <ids..>",
  describe: `the reports and ledgers of these backup runs, as JSON (at most ${MAX_RUNS_PER_REQUEST})`,
  builder: (y: Argv<object>): Argv<ReadArgs> =>
    y.positional("ids", { type: "string", array: true, describe: "run ids (YYYYMMDDTHHMMSS-PID)" }).option("state-dir", { type: "string", describe: "this site's state folder (default: the repositories file's)" }),
  handler: async (args) => {
    const argv = peerRequestArgv({ kind: "runs", runIds: (args.ids ?? []).map(String) });
    // The same check as the forced command's: a bad id is named here, not read.
    parsePeerRequest(argv.join(" "));
    answer(await siteStateDir(args["state-dir"]), argv);
  },
};

const authorizedKey: CommandModule<object, KeyArgs> = {
  command: "authorized-key",
  describe: "print the authorized_keys line that lets the other site's key read this site's records and nothing else",
  builder: (y: Argv<object>): Argv<KeyArgs> =>
    y
      .option("key", { type: "string", demandOption: true, describe: "the other site's public key (its ssh.keyFile with .pub)" })
      .option("from", { type: "string", describe: "the addresses the other site's management host connects from (sshd from= patterns, e.g. 10.10.50.11)" })
      .option("state-dir", { type: "string", describe: "this site's state folder (default: the repositories file's)" })
      .option("dcctl", { type: "string", describe: "how sshd starts dcctl here, an absolute path (default: node and this dcctl's main.js)" })
      .example("$0 peer-records authorized-key --key /tmp/primary.pub --from 10.10.50.11 >> ~dcctl/.ssh/authorized_keys", "at the secondary: the primary's key reads records only"),
  handler: async (args) => {
    let key: string;
    try {
      key = readFileSync(args.key, "utf8");
    } catch (e) {
      throw new InputError([`dcctl peer-records authorized-key: --key ${args.key}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : "cannot be read"}`]);
    }
    if (args.dcctl !== undefined && !args.dcctl.startsWith("/")) throw new InputError([`dcctl peer-records authorized-key: --dcctl ${args.dcctl}: give an absolute path (sshd's PATH is not yours)`]);
    const dcctl = args.dcctl !== undefined ? [args.dcctl] : [process.execPath, resolve(process.argv[1] ?? "")];
    print(authorizedKeyLine(key, { dcctl, stateDir: await siteStateDir(args["state-dir"]), ...(args.from ? { from: args.from } : {}), source: args.key }));
  },
};

export const peerRecordsCommands: CommandModule<object, object> = {
  // Its command and description are in ./commands.ts, which lists the groups without loading them.
  builder: (y: Argv<object>): Argv<object> =>
    y.command(serve).command(records).command(runs).command(authorizedKey).demandCommand(1, "name a peer-records command: serve, records, runs, authorized-key"),
  handler: () => undefined,
};
