/**
 * Ordered runnables (controller-runtime `manager/runnable_group.go`): started one after the other
 * in the order given, stopped in the reverse order under one grace deadline for all of them.
 */
import type { Logger } from 'pino';
import { messageOf } from '../errors.js';

/** One piece of a running supervisor: a store, a pool set, a server, a watcher. */
export interface Runnable {
  /** Named in the log lines about it. */
  readonly name: string;
  /**
   * Starts it; resolves once it runs. `signal` aborts when the manager is stopped meanwhile: a
   * start that gives up because of it rejects and leaves nothing behind (a start that resolves
   * anyway is stopped with the others).
   */
  start(signal: AbortSignal): Promise<void>;
  /**
   * Stops it within `graceMs`, what the shared deadline has left (possibly 0: stop at once).
   * The manager waits no longer than that; it is called once, and only after a start that resolved.
   */
  stop(graceMs: number): Promise<void>;
}

export interface RunnableManagerOptions {
  readonly log: Logger;
  /** The grace for stopping what was started when a later start fails. @default 10000 */
  readonly unwindGraceMs?: number;
}

export interface StopOptions {
  /** One deadline for stopping all of them: each gets what the ones before it left. @default 10000 */
  readonly graceMs?: number;
}

const DEFAULT_GRACE_MS = 10_000;

/**
 * Starts runnables in order. A start that fails stops the started ones in reverse and `start()`
 * rejects with its error. `stop()` stops the started ones in reverse order within one grace
 * period; one that overruns its share is logged and the rest still stop. `stop()` during
 * `start()` aborts the start under way, waits for it (within the same grace), starts nothing
 * more and stops what runs; `start()` then rejects with the abort reason. Both are idempotent.
 */
export class RunnableManager {
  readonly #runnables: readonly Runnable[];
  readonly #log: Logger;
  readonly #unwindGraceMs: number;
  readonly #abort = new AbortController();
  /** Started and not yet handed to a stop, in start order. */
  readonly #started: Runnable[] = [];
  /** The start loop alone (it never rejects): what `stop()` waits for. */
  #loop: Promise<{ failed: Runnable; error: unknown } | undefined> | undefined;
  #starting: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  /** Set once a stop has taken the list of started runnables: a start finishing later stops itself. */
  #late = false;

  constructor(runnables: readonly Runnable[], options: RunnableManagerOptions) {
    this.#runnables = [...runnables];
    this.#log = options.log;
    this.#unwindGraceMs = options.unwindGraceMs ?? DEFAULT_GRACE_MS;
  }

  /** The names of the runnables running now, in start order. */
  get running(): readonly string[] {
    return this.#started.map((r) => r.name);
  }

  /** Starts every runnable in order; calling it again returns the same promise. */
  start(): Promise<void> {
    this.#starting ??= this.#start();
    return this.#starting;
  }

  /** Stops what runs in reverse start order within `graceMs`; calling it again returns the same promise. */
  stop(options: StopOptions = {}): Promise<void> {
    this.#stopping ??= this.#stop(options.graceMs ?? DEFAULT_GRACE_MS);
    return this.#stopping;
  }

  async #start(): Promise<void> {
    if (this.#stopping) throw new Error('the runnables were stopped before they were started');
    this.#loop = this.#startAll();
    const failure = await this.#loop;
    if (this.#abort.signal.aborted) {
      // stop() was called meanwhile: it unwinds; start() reports the stop once that is done.
      await this.#stopping;
      throw this.#abort.signal.reason;
    }
    if (failure) {
      this.#log.error(
        { runnable: failure.failed.name, err: messageOf(failure.error) },
        'failed to start; stopping what was started',
      );
      await this.stop({ graceMs: this.#unwindGraceMs });
      throw failure.error;
    }
  }

  async #startAll(): Promise<{ failed: Runnable; error: unknown } | undefined> {
    const { signal } = this.#abort;
    for (const runnable of this.#runnables) {
      if (signal.aborted) return undefined;
      this.#log.debug({ runnable: runnable.name }, 'starting');
      try {
        await runnable.start(signal);
      } catch (error) {
        return { failed: runnable, error };
      }
      if (this.#late) {
        // The stop gave up waiting for this start and has finished without it.
        this.#log.warn({ runnable: runnable.name }, 'started after the stop gave up on it; stopping it now');
        void this.#stopOne(runnable, Date.now());
        return undefined;
      }
      this.#started.push(runnable);
    }
    return undefined;
  }

  async #stop(graceMs: number): Promise<void> {
    const deadline = Date.now() + graceMs;
    this.#abort.abort(new DOMException('stopped while starting', 'AbortError'));
    if (this.#loop && !(await settlesBy(this.#loop, deadline))) {
      this.#log.warn({ graceMs }, 'a start still under way after the grace period; stopping the rest');
    }
    this.#late = true;
    const order = this.#started.splice(0).reverse();
    for (const runnable of order) await this.#stopOne(runnable, deadline);
  }

  async #stopOne(runnable: Runnable, deadline: number): Promise<void> {
    const graceMs = Math.max(0, deadline - Date.now());
    this.#log.debug({ runnable: runnable.name, graceMs }, 'stopping');
    let failed: unknown;
    const stopped = Promise.resolve()
      .then(() => runnable.stop(graceMs))
      .catch((err: unknown) => {
        failed = err ?? new Error('stop failed');
      });
    if (!(await settlesBy(stopped, deadline))) {
      this.#log.warn(
        { runnable: runnable.name, graceMs },
        'still stopping after the grace period; stopping the rest anyway',
      );
    } else if (failed !== undefined) {
      this.#log.warn({ runnable: runnable.name, err: messageOf(failed) }, 'failed to stop');
    }
  }
}

/** Whether `work` settles by `deadline` (a rejection counts as settled and is not rethrown). */
async function settlesBy(work: Promise<unknown>, deadline: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()));
  });
  try {
    return await Promise.race([
      work.then(
        () => true,
        () => true,
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** A runnable that opens one thing on start (`value` from then on) and closes it on stop. */
export class Resource<T> implements Runnable {
  readonly name: string;
  readonly #open: (signal: AbortSignal) => Promise<T>;
  readonly #close: (value: T, graceMs: number) => Promise<void> | void;
  #value: T | undefined;
  #opened = false;

  constructor(
    name: string,
    open: (signal: AbortSignal) => Promise<T>,
    close: (value: T, graceMs: number) => Promise<void> | void,
  ) {
    this.name = name;
    this.#open = open;
    this.#close = close;
  }

  /** What `open` returned; throws before the start has finished. */
  get value(): T {
    if (!this.#opened) throw new Error(`${this.name} is not started`);
    return this.#value as T;
  }

  /** What `open` returned, or undefined before the start has finished. */
  get current(): T | undefined {
    return this.#value;
  }

  async start(signal: AbortSignal): Promise<void> {
    this.#value = await this.#open(signal);
    this.#opened = true;
  }

  async stop(graceMs: number): Promise<void> {
    if (this.#opened) await this.#close(this.#value as T, graceMs);
  }
}
