/**
 * Which replica provisions (SPEC §8.1): the one holding the leader lease. Every replica campaigns
 * on a timer; the leader renews, and loses the role the moment its lease may have run out. The
 * others follow: they serve every app from the applied records and provision nothing.
 *
 * SQLite has one replica: its server holds the store's exclusive file lock for its whole life (a
 * second `serve` fails at start with LOCK_HELD naming the first), and the lease row, forced under
 * that lock, only says who it is.
 */
import type { Logger } from 'pino';
import type { DatabaseUrl } from '../dialects/url.js';
import { AppvisorError, messageOf } from '../errors.js';
import {
  type HeldLease,
  type LeaseStore,
  type LeaseTiming,
  leaseHeld,
  leaseTiming,
  tryTakeLease,
  withFileLock,
} from '../reconcile/lease.js';
import { acquireReconcileLock, type ReconcileLock } from '../reconcile/lock.js';
import type { Fence } from '../state/types.js';

/** What a leader's reconcile runs under: the term for its writes, and a signal that aborts when the lease is lost. */
export interface LockTerm {
  readonly fence: Fence;
  /** Aborted (with LOCK_LOST) when the lease is lost: the run under it stops at its next step. */
  readonly signal: AbortSignal;
}

export interface LeadershipOptions extends LeaseTiming {
  readonly url: DatabaseUrl;
  readonly store: LeaseStore;
  /** This replica's id: the lease's holder while it leads. */
  readonly holder: string;
  readonly log: Logger;
  /** Told when this replica starts or stops leading (every app is then looked at again). */
  readonly onChange?: (leading: boolean) => void;
  /** SQLite: how long a second server waits for the first one's file lock before LOCK_HELD. @default 2000 */
  readonly lockWaitMs?: number;
}

export class Leadership {
  readonly #opts: LeadershipOptions;
  readonly #timing: ReturnType<typeof leaseTiming>;
  /** SQLite: the store's file lock, held for the server's life. */
  #fileLock: ReconcileLock | undefined;
  #lease: HeldLease | undefined;
  #timer: NodeJS.Timeout | undefined;
  #campaigning: Promise<void> | undefined;
  #closed = false;

  constructor(opts: LeadershipOptions) {
    this.#opts = opts;
    this.#timing = leaseTiming(opts);
  }

  get leading(): boolean {
    return this.#lease?.held === true;
  }

  /** The term to reconcile under while this replica leads; undefined while it follows. */
  term(): LockTerm | undefined {
    const lease = this.#lease;
    return lease?.held ? { fence: lease.fence, signal: lease.signal } : undefined;
  }

  /**
   * The first attempt (so that the first reconcile knows its role), then a campaign on a timer.
   * SQLite: rejects with LOCK_HELD naming the holder when another server has the store.
   */
  async start(): Promise<void> {
    if (this.#opts.url.dialect === 'sqlite') await this.#lockFile();
    await this.#campaign();
    this.#schedule();
  }

  async #lockFile(): Promise<void> {
    try {
      this.#fileLock = await acquireReconcileLock(this.#opts.url, {
        waitMs: this.#opts.lockWaitMs ?? 2_000,
        log: this.#opts.log,
      });
    } catch (err) {
      if (!(err instanceof AppvisorError) || err.code !== 'LOCK_HELD') throw err;
      const lease = await this.#opts.store.readLease().catch(() => undefined);
      throw leaseHeld(
        this.#opts.url.redacted,
        lease?.holder,
        Number(err.params.ms ?? 0),
        '; SQLite runs one replica',
      );
    }
  }

  #schedule(): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      void this.#campaign().finally(() => this.#schedule());
    }, this.#timing.renewMs);
    this.#timer.unref();
  }

  #campaign(): Promise<void> {
    this.#campaigning ??= this.#tryToLead().finally(() => {
      this.#campaigning = undefined;
    });
    return this.#campaigning;
  }

  async #tryToLead(): Promise<void> {
    if (this.#closed || this.#lease?.held) return;
    if (this.#fileLock && !this.#fileLock.held) {
      // The file lock was lost (its file removed): lead again only once it is ours again.
      const relocked = await acquireReconcileLock(this.#opts.url, { waitMs: 0 }).catch(() => undefined);
      if (!relocked) return;
      this.#fileLock = relocked;
    }
    let taken: HeldLease | undefined;
    try {
      taken = await tryTakeLease(this.#opts.store, this.#opts.holder, {
        ttlMs: this.#timing.ttlMs,
        renewMs: this.#timing.renewMs,
        log: this.#opts.log,
        ...(this.#fileLock ? { force: true } : {}),
      });
    } catch (err) {
      this.#opts.log.warn({ err: messageOf(err) }, 'could not ask for the leader lease; trying again');
      return;
    }
    if (!taken) return;
    // Under SQLite's file lock: losing the lock loses the lease, and aborts its runs.
    const lease = this.#fileLock ? withFileLock(taken, this.#fileLock) : taken;
    if (this.#closed) {
      await lease.release();
      return;
    }
    this.#lease = lease;
    this.#opts.log.info(
      { term: lease.fence.term, replica: this.#opts.holder },
      'leading: this replica provisions',
    );
    lease.signal.addEventListener(
      'abort',
      () => {
        if (this.#lease === lease) this.#lease = undefined;
        this.#opts.onChange?.(false);
      },
      { once: true },
    );
    this.#opts.onChange?.(true);
  }

  /** Stops campaigning and gives the lease (and the file lock) up, so another replica leads at once. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    // A campaign under way is not waited for (its store may hang): a lease it takes after this
    // is given up at once (see #tryToLead).
    const lease = this.#lease;
    this.#lease = undefined;
    await lease?.release();
    await this.#fileLock?.release();
  }
}
