import { Worker } from "node:worker_threads";

/** What a sampler saw: how often it read the process table, and every distinct command line with the pids that had it. */
export interface ArgvSamples {
  samples: number;
  /** Command line (arguments joined by single spaces) → the pids seen running it. */
  cmdlines: Map<string, Set<number>>;
  /** The command lines that contain `text`. */
  containing(text: string): string[];
  /** How many distinct processes ran a command line matching `re`. */
  processes(re: RegExp): number;
}

export interface ArgvSampler {
  stop(): Promise<ArgvSamples>;
}

/*
 * Runs in a worker thread, so that it keeps its pace while the test's own thread is busy (the Automation API, a
 * spawnSync): every `everyMs` it reads /proc/<pid>/cmdline of every process, which is what `ps` shows any user.
 */
const workerSource = `
const { parentPort, workerData } = require("node:worker_threads");
const { readdirSync, readFileSync } = require("node:fs");
const seen = new Map();
let samples = 0;
function sample() {
  samples++;
  for (const pid of readdirSync("/proc")) {
    if (!/^\\d+$/.test(pid)) continue;
    let raw;
    try { raw = readFileSync("/proc/" + pid + "/cmdline", "utf8"); } catch { continue; }
    if (!raw) continue;
    const line = raw.replace(/\\0$/, "").split("\\0").join(" ");
    let pids = seen.get(line);
    if (!pids) seen.set(line, (pids = new Set()));
    pids.add(Number(pid));
  }
}
sample();
const timer = setInterval(sample, workerData.everyMs);
parentPort.postMessage("started");
parentPort.on("message", () => {
  clearInterval(timer);
  sample();
  parentPort.postMessage({ samples, cmdlines: [...seen].map(([line, pids]) => [line, [...pids]]) });
  parentPort.close();
});
`;

/** Runs `fn` while sampling the process table; the sampler stops however `fn` ends. */
export async function sampleArgvDuring<T>(fn: () => Promise<T>, everyMs = 20): Promise<{ result: T; seen: ArgvSamples }> {
  const sampler = await startArgvSampler(everyMs);
  let result: T;
  try {
    result = await fn();
  } catch (e) {
    await sampler.stop();
    throw e;
  }
  return { result, seen: await sampler.stop() };
}

/** Starts sampling the process table; resolves once the first sample is taken. */
export async function startArgvSampler(everyMs = 20): Promise<ArgvSampler> {
  const worker = new Worker(workerSource, { eval: true, workerData: { everyMs } });
  await new Promise<void>((resolve, reject) => {
    worker.once("message", () => resolve());
    worker.once("error", reject);
  });
  return {
    stop: () =>
      new Promise<ArgvSamples>((resolve, reject) => {
        worker.once("error", reject);
        worker.once("message", (m: { samples: number; cmdlines: [string, number[]][] }) => {
          const cmdlines = new Map(m.cmdlines.map(([line, pids]) => [line, new Set(pids)]));
          void worker.terminate();
          resolve({
            samples: m.samples,
            cmdlines,
            containing: (text) => [...cmdlines.keys()].filter((l) => l.includes(text)),
            processes: (re) => new Set([...cmdlines].filter(([l]) => re.test(l)).flatMap(([, pids]) => [...pids])).size,
          });
        });
        worker.postMessage("stop");
      }),
  };
}
