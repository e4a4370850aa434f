/** The value after `--NAME` on the bench's command line, if any. */
export function benchValue(name: string): string | undefined {
  const args = process.argv.slice(2);
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

/** The value of `--NAME VALUE`, or `dflt`. */
export function benchOption(name: string, dflt: string): string {
  return benchValue(name) ?? dflt;
}

/** Whether `--NAME` is on the bench's command line. */
export function benchFlag(name: string): boolean {
  return process.argv.slice(2).includes(`--${name}`);
}
