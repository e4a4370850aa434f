/**
 * Work a command started that must get a bounded chance to finish before the process exits (the SOC feed's delivery
 * of the events the command emitted: notify/event-feed.ts), without cli/main.ts loading that work's modules for every
 * command line. A module registers its task when it first has something to finish; main.ts runs them all once the
 * command is done, and prints the lines they return on stderr. Each task bounds itself and never throws.
 */
export type CommandEndTask = () => Promise<string[]>;

const tasks = new Set<CommandEndTask>();

export function atCommandEnd(task: CommandEndTask): void {
  tasks.add(task);
}

/** Runs the registered tasks side by side; their lines for the operator, in registration order. */
export async function commandEnd(): Promise<string[]> {
  const running = [...tasks];
  tasks.clear();
  const lines = await Promise.all(running.map((t) => t().catch((e: unknown) => [String(e instanceof Error ? e.message : e)])));
  return lines.flat();
}
