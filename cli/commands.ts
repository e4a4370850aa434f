import type { CommandModule } from "yargs";

/** Every command group of dcctl, one module each; cli/main.ts registers them in this order. */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export const commandGroups: CommandModule<{}, never>[] = [];
