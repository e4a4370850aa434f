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

/**
 * Every command group of dcctl, by the word that starts it, in the order --help lists them. Each loads on demand:
 * `dcctl backup run` (started by a timer, many times a day) loads the backup engine and nothing else.
 */
export const commandGroups: Record<string, () => Promise<CommandGroup>> = {
  inventory: async () => commandGroup((await import("./inventory.js")).inventoryCommands),
  infra: async () => commandGroup((await import("./infra.js")).infraCommands),
  lab: async () => commandGroup((await import("./lab.js")).labCommands),
  backup: async () => commandGroup((await import("./backup.js")).backupCommands),
  restore: async () => commandGroup((await import("./restore.js")).restoreCommands),
  dr: async () => commandGroup((await import("./dr.js")).drCommands),
  replication: async () => commandGroup((await import("./replication.js")).replicationCommands),
  serve: async () => commandGroup((await import("./serve.js")).serveCommand),
};

/** The groups a command line needs: the one it names, or all of them (for --help and for suggesting a command). */
export async function groupsFor(argv: readonly string[]): Promise<CommandGroup[]> {
  const first = argv.find((a) => !a.startsWith("-"));
  const load = first !== undefined ? commandGroups[first] : undefined;
  return load ? [await load()] : Promise.all(Object.values(commandGroups).map((l) => l()));
}
