/**
 * When a piece of work last made progress. Shared by the watchdogs of its parts (the items of one backup job), it
 * makes a stall limit span the whole work: a part that starts after a long silence does not get a fresh limit.
 */
export class ProgressClock {
  last = Date.now();

  touch(): void {
    this.last = Date.now();
  }

  idleMs(now = Date.now()): number {
    return now - this.last;
  }
}

/**
 * Fires once when `touch()` has not been called for `ms`: the "no progress for so long" rule of backup jobs, whose
 * data may be terabytes (so no overall deadline fits) but which must never wait for ever on a frozen peer. Never
 * touched, it is a plain deadline. `describe` says where the work stood, for the error line; it is asked at the
 * moment the watchdog fires. Given a `clock`, idle time counts from the clock's last progress, which may be older
 * than this watchdog.
 */
export class Watchdog {
  private readonly timer: NodeJS.Timeout;
  private readonly listeners: ((why: string) => void)[] = [];
  /** Why it fired, once it has. */
  fired?: string;

  constructor(
    readonly ms: number,
    private readonly describe: (idleMs: number) => string,
    private readonly clock: ProgressClock = new ProgressClock(),
  ) {
    // Checking a few times per period keeps detection within ~1.25 × ms without a timer per touch.
    this.timer = setInterval(() => this.check(), Math.max(50, Math.min(1000, ms / 4)));
    this.timer.unref();
  }

  touch(): void {
    this.clock.touch();
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
    const idle = this.clock.idleMs();
    if (this.fired !== undefined || idle < this.ms) return;
    this.fired = this.describe(idle);
    this.stop();
    for (const fn of this.listeners.splice(0)) fn(this.fired);
  }
}
