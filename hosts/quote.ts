import { InputError } from "../util/errors.js";

// Words made only of these characters mean the same to every POSIX shell without quotes.
const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** Quotes one argument for a POSIX shell: single quotes, with each `'` written as `'\''`. */
export function quoteArg(arg: string): string {
  if (arg.includes("\0")) throw new InputError([`an argument contains a NUL byte, which no command line can carry`]);
  if (arg === "") return "''";
  if (SAFE.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/**
 * The one way dcctl builds a remote command line: every argument quoted, joined by spaces.
 * The remote shell then hands the program exactly these arguments; nothing in them is expanded.
 */
export function quoteArgv(argv: readonly string[]): string {
  if (argv.length === 0) throw new InputError(["an empty command cannot be run"]);
  return argv.map(quoteArg).join(" ");
}

/** `env NAME=value … argv`, so that variables reach the command without relying on sshd's AcceptEnv. */
export function withEnv(argv: readonly string[], env: Record<string, string> | undefined): string[] {
  const names = Object.keys(env ?? {});
  if (names.length === 0) return [...argv];
  const bad = names.filter((n) => !/^[A-Za-z_][A-Za-z0-9_]*$/.test(n));
  if (bad.length) throw new InputError(bad.map((n) => `not an environment variable name: ${JSON.stringify(n)}`));
  return ["env", ...names.map((n) => `${n}=${env?.[n] ?? ""}`), ...argv];
}
