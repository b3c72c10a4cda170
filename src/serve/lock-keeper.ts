import type { Logger } from 'pino';
import { messageOf } from '../errors.js';
import type { DatabaseUrl } from '../providers/url.js';
import { acquireReconcileLock, type ReconcileLock } from '../reconcile/lock.js';

/**
 * Holds the reconcile lock while the queue has work and lets it go when the queue is idle, so
 * `appvisor apply` (or a second server on the same state store) can take its turn in between.
 * A lock whose connection dies is dropped; the next reconcile takes it again.
 */
export class LockKeeper {
  readonly #url: DatabaseUrl;
  readonly #log: Logger;
  readonly #waitMs: number;
  #lock: ReconcileLock | undefined;
  #acquiring: Promise<ReconcileLock> | undefined;

  constructor(url: DatabaseUrl, options: { log: Logger; waitMs?: number }) {
    this.#url = url;
    this.#log = options.log;
    this.#waitMs = options.waitMs ?? 30_000;
  }

  /** Takes the lock unless it is held; rejects with LOCK_HELD after the wait. */
  async ensure(signal?: AbortSignal): Promise<void> {
    if (this.#lock?.held) return;
    this.#acquiring ??= acquireReconcileLock(this.#url, {
      waitMs: this.#waitMs,
      log: this.#log,
      ...(signal ? { signal } : {}),
    }).finally(() => {
      this.#acquiring = undefined;
    });
    const lock = await this.#acquiring;
    this.#lock = lock;
    lock.lost.then((reason) => {
      if (this.#lock === lock) this.#lock = undefined;
      this.#log.warn(
        { err: messageOf(reason) },
        'reconcile lock lost; it is taken again on the next reconcile',
      );
    });
  }

  async release(): Promise<void> {
    const lock = this.#lock;
    this.#lock = undefined;
    await lock?.release();
  }
}
