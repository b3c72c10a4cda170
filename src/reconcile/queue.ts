import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import PQueue from 'p-queue';
import type { Logger } from 'pino';
import { AppvisorError, codeOf, isTerminal } from '../errors.js';
import { type BackoffInput, backoffDelay, KeyedBackoff } from './backoff.js';

/** What one reconcile run is handed besides its key. */
export interface ReconcileContext {
  /** Aborted when the queue closes (after its grace) or the run outlives `stepTimeoutMs`. */
  readonly signal: AbortSignal;
  /** `log.child({app: key, reconcileId})`. */
  readonly log: Logger;
  /** Short random id of this run, also in every log line and event of it. */
  readonly reconcileId: string;
}

/** What a successful run may ask for. */
export interface ReconcileResult {
  /** Run the key again after this many milliseconds (0: right after the runs already queued). */
  readonly requeueAfterMs?: number;
  /**
   * Neither a failure nor a success, so the key's backoff is kept: the run started work that
   * goes on (an app's start) and asks, with `requeueAfterMs`, to look again when it must be done
   * (a start that then fails backs off from where the failures before it left), or it was
   * overtaken (its record changed, its lock was lost) and runs again.
   */
  readonly inProgress?: boolean;
}

/**
 * Reconciles one key. Throwing a terminal error (`isTerminal`) parks the key until the next
 * `add(key)`; any other throw retries it with backoff. It may call `add()` for any key, but
 * must not await `onIdle()` or `close()` of its own queue (that would wait for itself).
 */
// biome-ignore lint/suspicious/noConfusingVoidType: a reconciler with nothing to ask for just returns.
export type Reconciler = (key: string, context: ReconcileContext) => Promise<ReconcileResult | void>;

/** Queue settings as a caller passes them. */
export interface ReconcileQueueOptions {
  readonly reconcile: Reconciler;
  /** Parent logger; each run logs through `log.child({app, reconcileId})`. */
  readonly log: Logger;
  /** Per-key retry backoff after retryable failures. @default {baseMs: 1000, maxMs: 300000, factor: 2, jitter: 0} */
  readonly backoff?: BackoffInput;
  /** Period of the full resync (`addAll(keys())`); 0 turns it off. @default 300000 */
  readonly resyncMs?: number;
  /**
   * The keys a resync adds. Without it there is no resync. It may return a promise, so that it
   * can refresh its sources first (re-read manifests, list records): one resync runs at a time,
   * and a period that comes while one is still under way is skipped.
   */
  readonly keys?: () => Iterable<string> | PromiseLike<Iterable<string>>;
  /** Overall guard: abort a run's signal after this many milliseconds. @default undefined (no guard) */
  readonly stepTimeoutMs?: number;
  /** Most runs at once, each of a different key (a key never runs twice at once). @default 1 */
  readonly concurrency?: number;
}

/** Options of `close()`. */
export interface CloseOptions {
  /** How long a running reconcile may go on before its signal is aborted. @default 10000 */
  readonly graceMs?: number;
}

export const QUEUE_EVENTS = {
  start: 'reconcile:start',
  end: 'reconcile:end',
  idle: 'idle',
} as const;

/** `ok`: succeeded; `retry`: failed, retried with backoff; `terminal`: failed, waits for `add()`. */
export type ReconcileOutcome = 'ok' | 'retry' | 'terminal';

export interface ReconcileStartEvent {
  readonly key: string;
  readonly reconcileId: string;
}

export interface ReconcileEndEvent {
  readonly key: string;
  readonly reconcileId: string;
  readonly durationMs: number;
  readonly outcome: ReconcileOutcome;
  /** What the run threw (outcomes `retry` and `terminal`). */
  readonly error?: unknown;
  /** Set when the queue will run the key again by itself: in this many milliseconds. */
  readonly nextRunInMs?: number;
  /** Outcome `ok` of a run whose work goes on (`ReconcileResult.inProgress`). */
  readonly inProgress?: boolean;
}

/** The typed event map of `ReconcileQueue`. */
export interface ReconcileQueueEvents {
  [QUEUE_EVENTS.start]: [ReconcileStartEvent];
  [QUEUE_EVENTS.end]: [ReconcileEndEvent];
  /** Nothing queued and nothing running (timers may still be pending). */
  [QUEUE_EVENTS.idle]: [];
}

const DEFAULT_RESYNC_MS = 300_000;
const DEFAULT_GRACE_MS = 10_000;
/**
 * Crashes of one key less than this apart are a crash loop: the first crash is restarted at
 * once, each one after it waits the backoff (1 s, 2 s, … 5 min). A minute without a crash
 * starts the count over.
 */
const CRASH_WINDOW_MS = 60_000;

function invalid(detail: string): AppvisorError {
  return new AppvisorError('CONFIG_INVALID', { detail: `reconcile queue: ${detail}` });
}

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1)
    throw invalid(`${name} must be a whole number ≥ 1, got ${value}`);
  return value;
}

function nonNegative(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < 0) throw invalid(`${name} must be a number ≥ 0, got ${value}`);
  return value;
}

/**
 * A keyed, coalescing work queue (client-go `workqueue` semantics on p-queue). A key is only a
 * name: each run reads the current state afresh, so any number of `add(key)` calls while the
 * key waits collapse into one run, and adds while it runs give exactly one more run afterwards.
 * Up to `concurrency` runs at once, never two of one key: a running key is never queued (an
 * add marks it dirty instead), and a queued key is never queued twice.
 */
export class ReconcileQueue extends EventEmitter<ReconcileQueueEvents> {
  readonly #reconcile: Reconciler;
  readonly #log: Logger;
  readonly #backoff: KeyedBackoff;
  /** Recent crashes per key (see retryAfterCrash). */
  readonly #crashes = new Map<string, { count: number; at: number }>();
  readonly #stepTimeoutMs: number | undefined;
  readonly #keys: ReconcileQueueOptions['keys'];
  readonly #pq: PQueue;
  /** Keys in p-queue that have not started yet. */
  readonly #queued = new Set<string>();
  /** Keys added while they were running: each gets one more run when the current one ends. */
  readonly #dirty = new Set<string>();
  /** Delayed re-adds (backoff or requeueAfterMs); a key with a timer is neither queued nor running. */
  readonly #timers = new Map<string, NodeJS.Timeout>();
  /** The running keys, each with the controller of its run's signal. */
  readonly #active = new Map<string, AbortController>();
  /**
   * Operations waiting for their key (see `exclusive`), first come first served. A key is handed
   * to the first of them when its run or operation ends, before any reconcile can take it back.
   */
  readonly #waiting = new Map<string, { controller: AbortController; take: () => void }[]>();
  /** Operations under way (settled: they never reject), which a close waits for as for runs. */
  readonly #operations = new Set<Promise<void>>();
  #resyncTimer: NodeJS.Timeout | undefined;
  /** Set while an asynchronous `keys()` is under way. */
  #resyncing = false;
  #closed = false;
  #closePromise: Promise<void> | undefined;

  constructor(options: ReconcileQueueOptions) {
    super();
    this.#reconcile = options.reconcile;
    this.#log = options.log;
    this.#backoff = new KeyedBackoff(options.backoff);
    this.#keys = options.keys;
    this.#pq = new PQueue({ concurrency: positiveInteger('concurrency', options.concurrency, 1) });
    const stepTimeoutMs = nonNegative('stepTimeoutMs', options.stepTimeoutMs, 0);
    this.#stepTimeoutMs = stepTimeoutMs > 0 ? stepTimeoutMs : undefined;
    const resyncMs = nonNegative('resyncMs', options.resyncMs, DEFAULT_RESYNC_MS);
    this.#pq.on('idle', () => this.#emit(QUEUE_EVENTS.idle));
    if (resyncMs > 0 && this.#keys) {
      this.#resyncTimer = setInterval(() => this.#resync(), resyncMs);
      // A safety net, not work in progress: it alone must not keep the process alive.
      this.#resyncTimer.unref();
    }
  }

  /** Keys waiting to run. */
  get size(): number {
    return this.#queued.size;
  }

  /** Runs in progress (at most `concurrency`). */
  get pending(): number {
    return this.#active.size;
  }

  /** Keys waiting on a timer (backoff or `requeueAfterMs`). */
  get scheduled(): number {
    return this.#timers.size;
  }

  /** The keys being reconciled right now. */
  get running(): readonly string[] {
    return [...this.#active.keys()];
  }

  /**
   * Marks `key` dirty. A key already waiting is not queued twice; a running key runs once more
   * after the current run. A key waiting out a backoff runs promptly (its failure count stays
   * until a success). Ignored after `close()`.
   */
  add(key: string): void {
    if (this.#closed) return;
    this.#clearTimer(key);
    this.#enqueue(key);
  }

  /**
   * Work a run left going (an app's start) failed after the run: counts as the key's failure,
   * and the key runs again after its backoff (an immediate `add` would retry a failing start
   * without one). Ignored while the key runs: that run's own outcome decides.
   */
  retryAfterFailure(key: string): void {
    if (this.#closed || this.#active.has(key)) return;
    const delayMs = this.#backoff.fail(key);
    this.#log.info(
      { app: key, nextRunInMs: delayMs, failures: this.#backoff.failures(key) },
      'start failed; retrying after the backoff',
    );
    this.#schedule(key, delayMs);
  }

  /**
   * The running instance of `key` crashed, or its watchdog ended it (an isolated app, SPEC §8.3):
   * the key runs again (its plan restarts the app) at once for a first crash, as a service
   * manager restarts a service that died, and after the queue's backoff for each further crash
   * within CRASH_WINDOW_MS of the one before — so an app that dies whenever it starts never
   * spins, while one hung by a rare request is back within its watchdog and a cold start.
   * Ignored while the key runs: that run's own outcome decides.
   */
  retryAfterCrash(key: string): void {
    if (this.#closed || this.#active.has(key)) return;
    const now = Date.now();
    const last = this.#crashes.get(key);
    const count = last !== undefined && now - last.at < CRASH_WINDOW_MS ? last.count + 1 : 1;
    this.#crashes.set(key, { count, at: now });
    const delayMs = count === 1 ? 0 : backoffDelay(count - 1, this.#backoff.options);
    this.#log.info({ app: key, nextRunInMs: delayMs, crashes: count }, 'app crashed; restarting it');
    this.#schedule(key, delayMs);
  }

  /**
   * Marks `key` dirty in `delayMs`, unless it is queued, running or waiting on a timer already:
   * that run, which reads everything afresh, covers it. A wake-up for work that is not due yet
   * (an idle stop), without a run now.
   */
  addAfter(key: string, delayMs: number): void {
    if (this.#closed || this.#queued.has(key) || this.#active.has(key) || this.#timers.has(key)) return;
    this.#schedule(key, delayMs);
  }

  /**
   * Runs `work` for `key` while no reconcile of it runs, and holds its reconciles back until it
   * ends: an operation on one app (a backup, a restore, a secret rotation) serialized with its
   * reconciles. Adds meanwhile give one run afterwards. Waits for a reconcile under way; an
   * operation waiting gets the key before any reconcile queued after that run. `work`'s signal
   * aborts when the queue closes (after the grace, as a run's does).
   * @throws AppvisorError SHUTTING_DOWN once the queue is closed
   */
  async exclusive<T>(key: string, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (this.#closed) throw new AppvisorError('SHUTTING_DOWN');
    const controller = new AbortController();
    if (this.#active.has(key)) {
      await new Promise<void>((take) => {
        const queue = this.#waiting.get(key) ?? [];
        queue.push({ controller, take });
        this.#waiting.set(key, queue);
      });
      if (this.#closed) {
        // Handed the key just before the close, or woken by the close (the key not ours).
        if (this.#active.get(key) === controller) this.#active.delete(key);
        throw new AppvisorError('SHUTTING_DOWN');
      }
    } else {
      this.#active.set(key, controller);
    }
    const running = work(controller.signal);
    const settled = running.then(
      () => undefined,
      () => undefined,
    );
    this.#operations.add(settled);
    try {
      return await running;
    } finally {
      this.#operations.delete(settled);
      this.#handOn(key);
    }
  }

  /**
   * The key's run or operation ended: the key goes to the next operation waiting for it (marked
   * active at once, so a reconcile queued meanwhile waits), or is free, and runs once more if an
   * add came meanwhile.
   */
  #handOn(key: string): void {
    const next = this.#waiting.get(key)?.shift();
    if (this.#waiting.get(key)?.length === 0) this.#waiting.delete(key);
    if (next) {
      this.#active.set(key, next.controller);
      next.take();
      return;
    }
    this.#active.delete(key);
    if (!this.#closed && this.#dirty.delete(key)) this.#enqueue(key);
  }

  /** `add()` for each key. */
  addAll(keys: Iterable<string>): void {
    for (const key of keys) this.add(key);
  }

  /**
   * Resolves when nothing is queued or running. Runs queued meanwhile (dirty keys, keys added
   * by a reconcile, `requeueAfterMs: 0`) are waited for; keys waiting on a timer (backoff,
   * `requeueAfterMs` > 0, the resync) are not. Must not be awaited inside a reconcile.
   */
  onIdle(): Promise<void> {
    return this.#pq.onIdle();
  }

  /**
   * Stops accepting adds, stops the resync, drops queued keys and timers, lets the running
   * reconciles finish for up to `graceMs`, then aborts their signals and waits for them to return.
   * Calling it again returns the same promise.
   */
  close(options: CloseOptions = {}): Promise<void> {
    this.#closePromise ??= this.#shutdown(nonNegative('graceMs', options.graceMs, DEFAULT_GRACE_MS));
    return this.#closePromise;
  }

  async #shutdown(graceMs: number): Promise<void> {
    this.#closed = true;
    clearInterval(this.#resyncTimer);
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    this.#queued.clear();
    this.#dirty.clear();
    this.#pq.clear();
    // Operations still waiting for a key give up (exclusive throws SHUTTING_DOWN).
    const waiting = [...this.#waiting.values()].flat();
    this.#waiting.clear();
    for (const w of waiting) w.take();
    if (this.#active.size === 0) return;
    if (graceMs > 0) {
      let graceTimer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<void>((resolve) => {
        graceTimer = setTimeout(resolve, graceMs);
      });
      await Promise.race([this.#allSettled(), graceOver]);
      clearTimeout(graceTimer);
    }
    if (this.#active.size > 0) {
      const reason = new DOMException('the reconcile queue is closing', 'AbortError');
      for (const controller of this.#active.values()) controller.abort(reason);
      await this.#allSettled();
    }
  }

  /** Runs and operations both done. */
  async #allSettled(): Promise<void> {
    await Promise.all([this.#pq.onIdle(), ...this.#operations]);
  }

  #enqueue(key: string): void {
    if (this.#closed) return;
    if (this.#active.has(key)) {
      this.#dirty.add(key);
      return;
    }
    if (this.#queued.has(key)) return;
    this.#queued.add(key);
    // #run never rejects; the catch only keeps a broken invariant from becoming an unhandled rejection.
    this.#pq
      .add(() => this.#run(key))
      .catch((err: unknown) => {
        this.#log.error({ err, app: key }, 'reconcile queue task failed');
      });
  }

  #schedule(key: string, delayMs: number): void {
    this.#clearTimer(key);
    const timer = setTimeout(() => {
      this.#timers.delete(key);
      this.#enqueue(key);
    }, delayMs);
    this.#timers.set(key, timer);
  }

  #clearTimer(key: string): void {
    const timer = this.#timers.get(key);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.#timers.delete(key);
  }

  #resync(): void {
    if (this.#resyncing) return;
    this.#resyncing = true;
    // keys() may refresh its sources first (a promise): one resync at a time either way.
    Promise.resolve()
      .then(() => this.#keys?.() ?? [])
      .then(
        (listed) => this.#addResynced(listed),
        (err: unknown) => {
          // A source closed by the shutdown under way is no error worth a line.
          if (!this.#closed) this.#log.error({ err }, 'resync could not list the keys');
        },
      )
      .finally(() => {
        this.#resyncing = false;
      });
  }

  #addResynced(keys: Iterable<string>): void {
    // A key waiting out its backoff runs when its timer fires; a resync must not defeat the backoff.
    for (const key of keys) if (!this.#timers.has(key)) this.add(key);
  }

  async #run(key: string): Promise<void> {
    this.#queued.delete(key);
    if (this.#closed) return;
    if (this.#active.has(key)) {
      // An operation holds the key (see `exclusive`): this run follows it.
      this.#dirty.add(key);
      return;
    }
    const reconcileId = randomBytes(4).toString('hex');
    const log = this.#log.child({ app: key, reconcileId });
    const controller = new AbortController();
    this.#active.set(key, controller);
    const stepTimeoutMs = this.#stepTimeoutMs;
    const guard =
      stepTimeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            controller.abort(
              new AppvisorError('STEP_TIMEOUT', { step: 'reconcile', app: key, ms: stepTimeoutMs }),
            );
          }, stepTimeoutMs);
    const started = performance.now();
    this.#emit(QUEUE_EVENTS.start, { key, reconcileId });
    log.debug('reconcile started');

    let outcome: ReconcileOutcome;
    let error: unknown;
    let delayMs: number | undefined;
    let inProgress = false;
    try {
      const result = await this.#reconcile(key, { signal: controller.signal, log, reconcileId });
      outcome = 'ok';
      inProgress = result?.inProgress === true;
      if (!inProgress) this.#backoff.reset(key);
      delayMs = requeueDelay(result);
    } catch (err) {
      error = err;
      if (isTerminal(err)) {
        outcome = 'terminal';
        // The next run follows a manifest change; it starts with a fresh backoff.
        this.#backoff.reset(key);
      } else {
        outcome = 'retry';
        delayMs = this.#backoff.fail(key);
      }
    } finally {
      clearTimeout(guard);
      this.#active.delete(key);
    }
    const durationMs = Math.round(performance.now() - started);
    // An operation waiting for the key takes it first; a dirty run follows the operation.
    const handed = this.#waiting.has(key);
    if (handed) this.#handOn(key);

    let nextRunInMs: number | undefined;
    if (handed) {
      if (delayMs !== undefined && delayMs > 0) {
        nextRunInMs = delayMs;
        this.#schedule(key, delayMs);
      } else if (delayMs === 0) this.#dirty.add(key);
    } else if (!this.#closed) {
      if (this.#dirty.delete(key)) {
        // An add during the run means newer state: run again now; that run decides about retries.
        nextRunInMs = 0;
        this.#enqueue(key);
      } else if (delayMs === 0) {
        nextRunInMs = 0;
        this.#enqueue(key);
      } else if (delayMs !== undefined) {
        nextRunInMs = delayMs;
        this.#schedule(key, delayMs);
      }
    }

    logEnd(log, { outcome, error, durationMs, nextRunInMs, failures: this.#backoff.failures(key) });
    this.#emit(QUEUE_EVENTS.end, {
      key,
      reconcileId,
      durationMs,
      outcome,
      ...(error === undefined ? {} : { error }),
      ...(nextRunInMs === undefined ? {} : { nextRunInMs }),
      ...(inProgress ? { inProgress } : {}),
    });
  }

  /** Listeners feed metrics and SSE; a broken listener must not break the queue. */
  #emit<K extends keyof ReconcileQueueEvents>(event: K, ...args: ReconcileQueueEvents[K]): void {
    try {
      (this.emit as (event: K, ...args: ReconcileQueueEvents[K]) => boolean)(event, ...args);
    } catch (err) {
      this.#log.error({ err, event }, 'a reconcile queue listener threw');
    }
  }
}

// biome-ignore lint/suspicious/noConfusingVoidType: mirrors Reconciler's result.
function requeueDelay(result: ReconcileResult | void): number | undefined {
  const ms = result?.requeueAfterMs;
  return typeof ms === 'number' && Number.isFinite(ms) && ms >= 0 ? ms : undefined;
}

interface EndInfo {
  readonly outcome: ReconcileOutcome;
  readonly error: unknown;
  readonly durationMs: number;
  readonly nextRunInMs: number | undefined;
  readonly failures: number;
}

function logEnd(log: Logger, { outcome, error, durationMs, nextRunInMs, failures }: EndInfo): void {
  switch (outcome) {
    case 'ok':
      log.debug({ durationMs, nextRunInMs }, 'reconcile finished');
      return;
    case 'terminal':
      log.error({ err: error, code: codeOf(error), durationMs }, 'reconcile failed; waiting for a change');
      return;
    case 'retry':
      if (nextRunInMs === undefined) {
        log.warn({ err: error, code: codeOf(error), durationMs }, 'reconcile failed while closing');
      } else {
        log.warn(
          { err: error, code: codeOf(error), durationMs, failures, retryInMs: nextRunInMs },
          'reconcile failed; retrying',
        );
      }
      return;
  }
}
