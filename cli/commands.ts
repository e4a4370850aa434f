import type { CommandModule } from "yargs";
import { backupCommands } from "./backup.js";
import { drCommands } from "./dr.js";
import { infraCommands } from "./infra.js";
import { inventoryCommands } from "./inventory.js";
import { restoreCommands } from "./restore.js";
import { labCommands } from "./lab.js";

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

/** Every command group of dcctl, one module each; cli/main.ts registers them in this order. */
export const commandGroups: CommandGroup[] = [commandGroup(inventoryCommands), commandGroup(infraCommands), commandGroup(labCommands), commandGroup(backupCommands), commandGroup(restoreCommands), commandGroup(drCommands)];
