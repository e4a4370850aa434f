import { accessSync, constants, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { makeDir } from "../util/dirs.js";
import { errorMessage, InputError } from "../util/errors.js";
import { chooseLang } from "../util/i18n.js";

/**
 * The checks of a command line that every command shares, each made in one place: a flag given twice, the
 * environment (DCCTL_LANG, DCCTL_STATE_DIR), yargs' own complaints in our words, and the kinds of flag value several
 * commands take (a number within bounds, a folder or a file to write). Each refusal is one line naming the flag or
 * the variable: bad input, exit 2, before the command touches anything.
 */

type Parsed = Record<string, unknown>;

/** What is read of yargs' view of the running command's options (its getOptions(), which its types do not declare). */
interface OptionsView {
  getOptions(): { array?: string[]; alias?: Record<string, string[]> };
}

/**
 * Run by yargs (a global middleware, before validation) with the options of the command being run: refuses a flag
 * given more than once unless it takes a list, then the environment.
 */
export function checkCommandLine(argv: Parsed, y?: unknown): void {
  // yargs passes itself as the second argument (its types declare only the first).
  if (typeof (y as Partial<OptionsView> | undefined)?.getOptions === "function") refuseRepeatedFlags(argv, y as OptionsView);
  checkEnvironment();
}

/**
 * `--runbook a --runbook b`: yargs would quietly make a list of it, and a command take the first, or the last, or
 * fail later on a list where it expected one value. An option declared as a list (`array: true`) may repeat.
 */
function refuseRepeatedFlags(argv: Parsed, y: OptionsView): void {
  const options = y.getOptions();
  const lists = new Set(options.array ?? []);
  for (const name of [...lists]) for (const alias of options.alias?.[name] ?? []) lists.add(alias);
  const repeated = Object.keys(argv).filter((k) => k !== "_" && k !== "--" && k !== "$0" && !lists.has(k) && Array.isArray(argv[k]));
  // yargs keeps --token-file also as tokenFile: name the flag as it was typed.
  const kebab = (k: string) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  const first = repeated.find((k) => !repeated.includes(kebab(k)) || kebab(k) === k);
  if (first === undefined) return;
  const values = argv[first] as unknown[];
  throw new InputError([`dcctl: --${first} is given ${values.length} times (${values.map((v) => String(v)).join(", ")}); it takes one value`]);
}

/** Variables that change what every command does, checked before any command reads them. */
export function checkEnvironment(env: NodeJS.ProcessEnv = process.env): void {
  // Checks DCCTL_LANG (the flag and the repositories file's lang are checked where they are read).
  chooseLang(undefined, undefined, env);
  const state = env.DCCTL_STATE_DIR;
  if (state) {
    // Made now, as the first run that writes state would: a folder that cannot be (under /proc, a file's path) is
    // bad input, not "no DR runs" from a command that only reads.
    try {
      makeDir(state);
      accessSync(state, constants.R_OK | constants.W_OK | constants.X_OK);
    } catch (e) {
      throw new InputError([`dcctl: DCCTL_STATE_DIR=${state}: ${(e as NodeJS.ErrnoException).code ?? errorMessage(e)}; dcctl keeps its state (locks, runs, journals) there`]);
    }
  }
}

/**
 * yargs' failure message as one line of ours. An enum's "Invalid values: Argument: emit, Given: "x", Choices: …"
 * becomes `--emit "x" is not one of: systemd, cron` (a positional argument, `lab fail <site>`, without the dashes).
 */
export function describeParseFailure(msg: string, argv: readonly string[] = []): string {
  const choice = /Argument: ([^,\s]+), Given: (.+?), Choices: (.+)$/m.exec(msg);
  if (choice?.[1] && choice[2] && choice[3]) {
    const name = choice[1];
    const allowed = choice[3].split(/,\s*/).map((c) => c.replace(/^"(.*)"$/, "$1"));
    const flag = argv.some((a) => a === `--${name}` || a.startsWith(`--${name}=`)) ? `--${name}` : name;
    return `dcctl: ${flag} ${choice[2]} is not one of: ${allowed.join(", ")}`;
  }
  return `dcctl: ${msg.replace(/\s*\n\s*/g, " ")} (see dcctl --help)`;
}

export interface Bounds {
  min: number;
  max: number;
  /** Whole numbers only (a count), or any number within the bounds (seconds). */
  whole?: boolean;
  /** What the number counts, for the message: "jobs at once", "seconds". */
  unit?: string;
}

/** A number flag within its bounds, or one line naming the flag and saying the range (exit 2). */
export function boundedNumber(command: string, flag: string, value: number, b: Bounds): number {
  if (Number.isFinite(value) && value >= b.min && value <= b.max && (!b.whole || Number.isInteger(value))) return value;
  const given = Number.isNaN(value) ? "is not a number" : `${value} is out of range`;
  throw new InputError([`${command}: --${flag} ${given}: give ${b.whole ? "a whole number" : "a number"} from ${b.min} to ${b.max}${b.unit ? ` (${b.unit})` : ""}`]);
}

/** The seconds to wait for a lock: 0 (do not wait) up to a day, which no backup window outlasts. */
export function waitSeconds(command: string, value: number): number {
  return boundedNumber(command, "wait", value, { min: 0, max: 86_400, unit: "seconds to wait for a lock" });
}

/** A folder a command writes into: made when missing; one line naming the flag when it cannot be made or written. */
export function outputFolder(command: string, flag: string, path: string): string {
  try {
    makeDir(path);
    accessSync(path, constants.W_OK | constants.X_OK);
  } catch (e) {
    throw new InputError([`${command}: --${flag} ${path}: ${(e as NodeJS.ErrnoException).code ?? errorMessage(e)}`]);
  }
  return path;
}

/**
 * A file a command (or a program it starts) will write: its folder must exist and be writable, and it must not be a
 * folder itself. Checked before the work that ends in writing it (a browser's start, a restic run).
 */
export function outputFile(command: string, flag: string, path: string): string {
  const folder = dirname(resolve(path));
  const refuse = (why: string): never => {
    throw new InputError([`${command}: --${flag} ${path}: ${why}`]);
  };
  let kind: "folder" | "other" | "none";
  try {
    kind = statSync(folder).isDirectory() ? "folder" : "other";
  } catch {
    kind = "none";
  }
  if (kind === "none") refuse(`no folder ${folder} to write it in`);
  if (kind === "other") refuse(`${folder} is not a folder`);
  try {
    accessSync(folder, constants.W_OK | constants.X_OK);
  } catch (e) {
    refuse(`cannot write in ${folder}: ${(e as NodeJS.ErrnoException).code ?? errorMessage(e)}`);
  }
  try {
    if (statSync(path).isDirectory()) refuse("is a folder; name a file");
  } catch (e) {
    if (e instanceof InputError) throw e;
  }
  return path;
}
