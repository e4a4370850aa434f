import type { CommandModule } from "yargs";

/** A command group as cli/main.ts registers it; its parsed-arguments type matters only inside its own module. */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export type CommandGroup = CommandModule<{}, never>;

/**
 * Lets a module with typed arguments (CommandModule<object, Args>) join the list. yargs keeps no types at run time;
 * the cast only forgets the arguments type, which the module's own builder and handler already agree on.
 */
export function commandGroup<Args>(module: CommandModule<object, Args>): CommandGroup {
  return module as unknown as CommandGroup;
}

interface GroupEntry {
  /** The group's command and description, as --help lists them: here, so that listing them loads no group. */
  command: string;
  describe: string;
  /** The group's module: its builder (subcommands, flags) and handler. */
  load: () => Promise<CommandGroup>;
}

/**
 * Every command group of dcctl, by the word that starts it, in the order --help lists them. A command line loads
 * the one group it names and nothing else: `dcctl backup run` (started by a timer, many times a day) loads the
 * backup commands, and each of those loads what it uses when it runs. `dcctl --help` and a mistyped command load none.
 */
export const commandGroups: Record<string, GroupEntry> = {
  inventory: { command: "inventory <command>", describe: "check and show the site inventories (stacks/sites/*.yaml)", load: async () => commandGroup((await import("./inventory.js")).inventoryCommands) },
  infra: { command: "infra <command>", describe: "plan, preview, apply, import, refresh or destroy a site's stack", load: async () => commandGroup((await import("./infra.js")).infraCommands) },
  lab: { command: "lab <command>", describe: "the local two-site lab: up, down, status, fail, heal, wan, exec, shell, console", load: async () => commandGroup((await import("./lab.js")).labCommands) },
  backup: { command: "backup <command>", describe: "backup jobs: list, run, snapshots, verify, unlock, accept, prune, replicate, status, schedule", load: async () => commandGroup((await import("./backup.js")).backupCommands) },
  restore: { command: "restore", describe: "restore a database (--db) or a path (--path) of a host from its backups, to it or to --target", load: async () => commandGroup((await import("./restore.js")).restoreCommands) },
  dr: { command: "dr <command>", describe: "disaster recovery: plan, drill, fail over, fail back, recover to before an attack, resume, history", load: async () => commandGroup((await import("./dr.js")).drCommands) },
  pitr: { command: "pitr <command>", describe: "point-in-time recovery archives of the databases: setup, status, base-backup, maintain, stop", load: async () => commandGroup((await import("./pitr.js")).pitrCommands) },
  replication: { command: "replication <command>", describe: "continuous replication of the standbys: setup, status", load: async () => commandGroup((await import("./replication.js")).replicationCommands) },
  approve: {
    command: "approve <code>",
    describe: "approve another operator's request for a destructive action (four eyes: the site's approval:); shows it, asks unless --yes",
    load: async () => commandGroup((await import("./approvals.js")).approveCommand),
  },
  approvals: { command: "approvals", describe: "the requests waiting for an approval or its use (--all: every one)", load: async () => commandGroup((await import("./approvals.js")).approvalsCommand) },
  events: { command: "events <command>", describe: "the SOC feed: send the spooled events to the collectors, status", load: async () => commandGroup((await import("./events.js")).eventsCommands) },
  "peer-records": {
    command: "peer-records <command>",
    describe: "this site's records as the other site reads them over SSH (a key that reads only): serve, records, runs, authorized-key",
    load: async () => commandGroup((await import("./peer-records.js")).peerRecordsCommands),
  },
  doctor: { command: "doctor", describe: "check this management host before first use, one line per check", load: async () => commandGroup((await import("./doctor.js")).doctorCommand) },
  serve: {
    command: "serve",
    describe: "the duty room's read-only web console: backups against RPO, replication lag, repositories, drills, DR history",
    load: async () => commandGroup((await import("./serve.js")).serveCommand),
  },
};

/**
 * The groups a command line needs: the one it names (its first word that is a group: options such as --lang may
 * come before it), loaded; or, when it names none (--help, a mistyped command), every group by name only, which is
 * all that listing them or suggesting one takes. A listed-only group never runs: a line that would run it names it.
 */
export async function groupsFor(argv: readonly string[]): Promise<CommandGroup[]> {
  const named = argv.find((a) => Object.hasOwn(commandGroups, a));
  const entry = named === undefined ? undefined : commandGroups[named];
  if (entry) return [{ ...(await entry.load()), command: entry.command, describe: entry.describe }];
  return Object.entries(commandGroups).map(([word, { command, describe }]) => ({
    command,
    describe,
    handler: () => {
      throw new Error(`dcctl: the ${word} commands were not loaded`);
    },
  }));
}
