/**
 * The heartbeat watch of one isolated instance: the host beats every `heartbeatMs`; a silence
 * longer than `watchdogMs` is reported once. A check that itself fires late means the
 * supervisor's own loop was blocked, and the host's beats may be waiting in the queue: they are
 * let in first (setImmediate runs after the poll phase) and the stall is not counted against
 * the app.
 */
import { performance } from 'node:perf_hooks';

export interface WatchdogOptions {
  readonly watchdogMs: number;
  readonly heartbeatMs: number;
  /** Called once, when the host has been silent for longer than watchdogMs. */
  readonly onSilent: (silentMs: number) => void;
}

/** How often the host reports: often enough that a silence means something. */
export function heartbeatMsFor(watchdogMs: number): number {
  return Math.max(20, Math.min(Math.floor(watchdogMs / 5), 1000));
}

export class Watchdog {
  readonly #opts: WatchdogOptions;
  /** Checks run this often: a hang is seen within watchdogMs plus one check. */
  readonly #every: number;
  #timer: NodeJS.Timeout | undefined;
  #lastBeat = 0;
  #nextCheck = 0;
  /** Fired or stopped: it never watches again. */
  #done = false;

  constructor(options: WatchdogOptions) {
    this.#opts = options;
    this.#every = Math.max(20, Math.min(Math.floor(options.heartbeatMs / 2), 250));
  }

  /** A heartbeat arrived; the first one starts the watch. */
  beat(): void {
    this.#lastBeat = performance.now();
    if (this.#timer !== undefined || this.#done) return;
    this.#nextCheck = this.#lastBeat + this.#every;
    this.#timer = setInterval(this.#check, this.#every);
    this.#timer.unref();
  }

  /** Ends the watch for good (the host is being stopped or is gone). */
  stop(): void {
    this.#done = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  readonly #check = (): void => {
    const now = performance.now();
    const late = Math.max(0, now - this.#nextCheck);
    this.#nextCheck = now + this.#every;
    if (late > this.#every) setImmediate(() => this.#judge(late));
    else this.#judge(0);
  };

  #judge(late: number): void {
    if (this.#done) return;
    const silentMs = performance.now() - this.#lastBeat - late;
    if (silentMs <= this.#opts.watchdogMs) return;
    this.stop();
    this.#opts.onSilent(silentMs);
  }
}
