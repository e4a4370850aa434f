import { formatDuration } from "./duration.js";

/**
 * What the operator sees while a run goes on. Plain lines, one per event, when stdout is not a terminal (logs, CI,
 * systemd); on a terminal the same lines plus a status line of the running steps that refreshes every second.
 */
export interface Progress {
  line(text: string): void;
  running(ids: string[]): void;
  close(): void;
}

export function silentProgress(): Progress {
  return { line: () => undefined, running: () => undefined, close: () => undefined };
}

export function plainProgress(out: NodeJS.WriteStream = process.stdout): Progress {
  return {
    line: (text) => void out.write(`${new Date().toISOString().slice(11, 19)} ${text}\n`),
    running: () => undefined,
    close: () => undefined,
  };
}

export function terminalProgress(out: NodeJS.WriteStream = process.stdout): Progress {
  let ids: string[] = [];
  let since = Date.now();
  const clear = () => out.write("\r\x1b[2K");
  const status = () => {
    if (ids.length) out.write(`\r\x1b[2K… running ${ids.join(", ")} (${formatDuration(Date.now() - since)})`);
  };
  const timer = setInterval(status, 1000);
  timer.unref();
  return {
    line: (text) => {
      clear();
      out.write(`${new Date().toISOString().slice(11, 19)} ${text}\n`);
      status();
    },
    running: (next) => {
      if (next.join() !== ids.join()) since = Date.now();
      ids = next;
      clear();
      status();
    },
    close: () => {
      clearInterval(timer);
      clear();
    },
  };
}

export function progressFor(out: NodeJS.WriteStream = process.stdout): Progress {
  return out.isTTY ? terminalProgress(out) : plainProgress(out);
}
