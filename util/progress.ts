import { createRequire } from "node:module";

/**
 * What the operator sees while long work goes on. Plain lines, one per event, when the output is not a terminal
 * (logs, CI, systemd, cron); on a terminal the same lines with, below them, a spinner naming what is running now
 * and for how long (ora draws and clears it).
 */
export interface Progress {
  line(text: string): void;
  /** What runs at the moment (step ids, job ids); an empty list hides the spinner. */
  running(ids: string[]): void;
  close(): void;
}

const stamp = () => new Date().toISOString().slice(11, 19);

export function silentProgress(): Progress {
  return { line: () => undefined, running: () => undefined, close: () => undefined };
}

export function plainProgress(out: NodeJS.WriteStream = process.stdout): Progress {
  return {
    line: (text) => void out.write(`${stamp()} ${text}\n`),
    running: () => undefined,
    close: () => undefined,
  };
}

export function terminalProgress(out: NodeJS.WriteStream = process.stdout): Progress {
  // Loaded only for a terminal: a timer's run, with no one to watch a spinner, should not pay ~50 ms for it.
  const ora = (createRequire(import.meta.url)("ora") as typeof import("ora")).default;
  const spinner = ora({ stream: out, discardStdin: false });
  let ids: string[] = [];
  let since = Date.now();
  const text = () => {
    const full = `${Math.round((Date.now() - since) / 1000)} s, running ${ids.length}: ${ids.join(", ")}`;
    // One line: a spinner line that wraps cannot be cleared and redrawn in place.
    const width = (out.columns ?? 80) - 3;
    return full.length > width ? `${full.slice(0, width - 1)}…` : full;
  };
  const timer = setInterval(() => {
    if (spinner.isSpinning) spinner.text = text();
  }, 1000);
  timer.unref();
  return {
    line: (line) => {
      if (spinner.isSpinning) spinner.clear();
      out.write(`${stamp()} ${line}\n`);
      if (spinner.isSpinning) spinner.render();
    },
    running: (next) => {
      if (next.join() !== ids.join()) since = Date.now();
      ids = next;
      if (ids.length === 0) spinner.stop();
      else if (spinner.isSpinning) spinner.text = text();
      else spinner.start(text());
    },
    close: () => {
      clearInterval(timer);
      spinner.stop();
    },
  };
}

export function progressFor(out: NodeJS.WriteStream = process.stdout): Progress {
  // A terminal that says it has no columns (`script` without a size, some serial consoles) gets plain lines: ora
  // clearing its line there never ends, writing escape codes for ever.
  return out.isTTY && (out.columns ?? 0) > 0 ? terminalProgress(out) : plainProgress(out);
}
