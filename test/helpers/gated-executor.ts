import { Transform, type TransformCallback } from "node:stream";
import type { ExecOptions, ExecResult, ExecStream, Executor } from "../../hosts/index.js";

/**
 * An executor whose streamed commands stall after `afterBytes` of output until release(): the command (pg_dump, say)
 * then blocks on a full pipe in the middle of its output, so a test can break it there on purpose, deterministically.
 */
export interface GatedExecutor extends Executor {
  /** Resolves once a stream has passed `afterBytes` and is being held. */
  readonly reached: Promise<void>;
  release(): void;
}

export function gatedExecutor(inner: Executor, afterBytes: number): GatedExecutor {
  let passed = 0;
  let released = false;
  let held: (() => void) | undefined;
  let onReached: () => void = () => undefined;
  const reached = new Promise<void>((resolve) => (onReached = resolve));

  const gate = () =>
    new Transform({
      transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
        passed += chunk.length;
        if (released || passed < afterBytes) return cb(null, chunk);
        // Not calling back holds every later chunk too: backpressure reaches the command.
        held = () => cb(null, chunk);
        onReached();
      },
    });

  return {
    target: inner.target,
    reached,
    release() {
      released = true;
      const h = held;
      held = undefined;
      h?.();
    },
    run: (argv: string[], opts?: ExecOptions): Promise<ExecResult> => inner.run(argv, opts),
    stream(argv: string[], opts?: ExecOptions): ExecStream {
      const s = inner.stream(argv, opts);
      const out = s.stdout.pipe(gate());
      s.stdout.on("error", (e) => out.destroy(e));
      return { stdout: out, done: s.done, kill: () => s.kill() };
    },
    close: () => inner.close(),
  };
}
