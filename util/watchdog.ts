/**
 * Fires once when `touch()` has not been called for `ms`: the "no progress for so long" rule of backup jobs, whose
 * data may be terabytes (so no overall deadline fits) but which must never wait for ever on a frozen peer.
 * `describe` says where the work stood, for the error line; it is asked at the moment the watchdog fires.
 */
export class Watchdog {
  private last = Date.now();
  private readonly timer: NodeJS.Timeout;
  private readonly listeners: ((why: string) => void)[] = [];
  /** Why it fired, once it has. */
  fired?: string;

  constructor(
    readonly ms: number,
    private readonly describe: (idleMs: number) => string,
  ) {
    // Checking a few times per period keeps detection within ~1.25 × ms without a timer per touch.
    this.timer = setInterval(() => this.check(), Math.max(50, Math.min(1000, ms / 4)));
    this.timer.unref();
  }

  touch(): void {
    this.last = Date.now();
  }

  /** Calls `fn` when the watchdog fires (at once if it already has). */
  onFire(fn: (why: string) => void): void {
    if (this.fired !== undefined) fn(this.fired);
    else this.listeners.push(fn);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private check(): void {
    const idle = Date.now() - this.last;
    if (this.fired !== undefined || idle < this.ms) return;
    this.fired = this.describe(idle);
    this.stop();
    for (const fn of this.listeners.splice(0)) fn(this.fired);
  }
}
