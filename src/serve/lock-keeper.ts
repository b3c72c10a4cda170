import type { Logger } from 'pino';
import type { DatabaseUrl } from '../dialects/url.js';
import { messageOf } from '../errors.js';
import { acquireReconcileLock, DEFAULT_LOCK_WAIT_MS, type ReconcileLock } from '../reconcile/lock.js';
import type { Fence, StateStore } from '../state/types.js';

/** What a reconcile runs under: the lock's term for its writes, and a signal that aborts when the lock is lost. */
export interface LockTerm {
  readonly fence: Fence;
  /** Aborted (with the reason) when the lock is lost: the run under it stops at its next step. */
  readonly signal: AbortSignal;
}

interface Held {
  readonly lock: ReconcileLock;
  readonly term: LockTerm;
  readonly lost: AbortController;
}

/**
 * Holds the reconcile lock while the queue has work and lets it go when the queue is idle, so
 * `appvisor apply` (or a second server on the same state store) can take its turn in between.
 * Each time it takes the lock it opens a new term in the store: the term fences every write of
 * the reconciles run under it, so a run that outlives its lock writes nothing. A lock whose
 * connection dies is dropped and aborts its runs; the next reconcile takes it again.
 */
export class LockKeeper {
  readonly #url: DatabaseUrl;
  readonly #store: Pick<StateStore, 'beginTerm'>;
  readonly #log: Logger;
  readonly #waitMs: number;
  #held: Held | undefined;
  #acquiring: Promise<Held> | undefined;

  constructor(
    url: DatabaseUrl,
    options: { log: Logger; store: Pick<StateStore, 'beginTerm'>; waitMs?: number },
  ) {
    this.#url = url;
    this.#store = options.store;
    this.#log = options.log;
    this.#waitMs = options.waitMs ?? DEFAULT_LOCK_WAIT_MS;
  }

  /** The term of the held lock, taking the lock first unless it is held; rejects with LOCK_HELD after the wait. */
  async ensure(signal?: AbortSignal): Promise<LockTerm> {
    if (this.#held?.lock.held) return this.#held.term;
    this.#acquiring ??= this.#acquire(signal).finally(() => {
      this.#acquiring = undefined;
    });
    return (await this.#acquiring).term;
  }

  async #acquire(signal: AbortSignal | undefined): Promise<Held> {
    const lock = await acquireReconcileLock(this.#url, {
      waitMs: this.#waitMs,
      log: this.#log,
      ...(signal ? { signal } : {}),
    });
    let fence: Fence;
    try {
      fence = await this.#store.beginTerm();
    } catch (err) {
      await lock.release().catch(() => undefined);
      throw err;
    }
    const lost = new AbortController();
    const held: Held = { lock, term: { fence, signal: lost.signal }, lost };
    this.#held = held;
    lock.lost.then((reason) => {
      // The lock's own LOCK_LOST: the run under this term is aborted with it.
      lost.abort(reason);
      if (this.#held === held) this.#held = undefined;
      this.#log.warn(
        { err: messageOf(reason), term: fence.term },
        'reconcile lock lost; the run under it is aborted, and the lock is taken again on the next reconcile',
      );
    });
    return held;
  }

  async release(): Promise<void> {
    const held = this.#held;
    this.#held = undefined;
    await held?.lock.release();
  }
}
