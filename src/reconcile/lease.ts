/**
 * Holding the leader lease (src/state/lease.ts) from a process: renewed on a timer, and given up
 * *locally* the moment it may have run out. The server's expiry decides when another replica may
 * take it; this side stops a little before that (a margin for the two clocks' rates), so a leader
 * that cannot renew in time — the database is unreachable, the process was paused — has stopped
 * provisioning before anyone else starts. The term fences whatever write still arrives late.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { DatabaseUrl } from '../dialects/url.js';
import { AppvisorError, messageOf } from '../errors.js';
import { describeHolder } from '../serve/replica-identity.js';
import type { Fence, StateStore } from '../state/types.js';
import { acquireReconcileLock, type ReconcileLock } from './lock.js';

export type LeaseStore = Pick<
  StateStore,
  'takeLease' | 'renewLease' | 'releaseLease' | 'readLease' | 'target'
>;

export interface LeaseTiming {
  /** How long a take or renewal holds the lease on the server's clock. @default 10000 */
  readonly ttlMs?: number;
  /** How often the holder renews (and a follower tries to take it). @default ttlMs / 4 */
  readonly renewMs?: number;
}

export const DEFAULT_LEASE_TTL_MS = 10_000;

/** The timing with its defaults, checked. */
export function leaseTiming(t: LeaseTiming = {}): { ttlMs: number; renewMs: number; marginMs: number } {
  const ttlMs = t.ttlMs ?? DEFAULT_LEASE_TTL_MS;
  const renewMs = t.renewMs ?? Math.max(50, Math.floor(ttlMs / 4));
  if (renewMs >= ttlMs)
    throw new Error(`the lease renewal (${renewMs} ms) must come before it runs out (${ttlMs} ms)`);
  return { ttlMs, renewMs, marginMs: Math.min(1_000, Math.floor(ttlMs / 5)) };
}

/** A lease this process holds, until it is released or lost. */
export interface HeldLease {
  readonly fence: Fence;
  /** Aborted, with LOCK_LOST as its reason, when the lease is lost: stop at once. */
  readonly signal: AbortSignal;
  readonly held: boolean;
  /** Gives the lease up (idempotent); the signal stays unaborted. */
  release(): Promise<void>;
}

class RenewedLease implements HeldLease {
  readonly fence: Fence;
  readonly #store: LeaseStore;
  readonly #holder: string;
  readonly #timing: ReturnType<typeof leaseTiming>;
  readonly #log: Logger | undefined;
  readonly #lost = new AbortController();
  #renewTimer: NodeJS.Timeout | undefined;
  #deadline: NodeJS.Timeout | undefined;
  #state: 'held' | 'lost' | 'released' = 'held';
  #releasing: Promise<void> | undefined;

  constructor(
    store: LeaseStore,
    holder: string,
    fence: Fence,
    startedAt: number,
    timing: ReturnType<typeof leaseTiming>,
    log: Logger | undefined,
  ) {
    this.#store = store;
    this.#holder = holder;
    this.fence = fence;
    this.#timing = timing;
    this.#log = log;
    this.#extendFrom(startedAt);
    this.#scheduleRenewal();
  }

  get signal(): AbortSignal {
    return this.#lost.signal;
  }

  get held(): boolean {
    return this.#state === 'held';
  }

  /** The server extended the lease at some moment after `startedAt`: stop a margin before startedAt + ttl. */
  #extendFrom(startedAt: number): void {
    clearTimeout(this.#deadline);
    const left = startedAt + this.#timing.ttlMs - this.#timing.marginMs - performance.now();
    this.#deadline = setTimeout(() => this.#lose('it could not be renewed in time'), Math.max(0, left));
    this.#deadline.unref();
  }

  #scheduleRenewal(): void {
    this.#renewTimer = setTimeout(() => void this.#renew(), this.#timing.renewMs);
    this.#renewTimer.unref();
  }

  async #renew(): Promise<void> {
    if (this.#state !== 'held') return;
    const startedAt = performance.now();
    try {
      const renewed = await this.#store.renewLease(this.#holder, this.fence, this.#timing.ttlMs);
      if (this.#state !== 'held') return;
      if (!renewed) {
        this.#lose('another replica holds it now, or it ran out');
        return;
      }
      this.#extendFrom(startedAt);
    } catch (err) {
      // Tried again on the next tick; the deadline gives it up if none comes through in time.
      this.#log?.warn({ err: messageOf(err), term: this.fence.term }, 'could not renew the leader lease');
    }
    if (this.#state === 'held') this.#scheduleRenewal();
  }

  #lose(why: string): void {
    if (this.#state !== 'held') return;
    this.#state = 'lost';
    this.#stopTimers();
    const err = new AppvisorError('LOCK_LOST', {
      target: this.#store.target,
      detail: `leader lease: ${why}`,
    });
    this.#log?.error(
      { term: this.fence.term, err: err.message },
      'lost the leader lease; provisioning stops',
    );
    this.#lost.abort(err);
  }

  #stopTimers(): void {
    clearTimeout(this.#renewTimer);
    clearTimeout(this.#deadline);
  }

  release(): Promise<void> {
    this.#releasing ??= (async () => {
      const wasHeld = this.#state === 'held';
      this.#state = 'released';
      this.#stopTimers();
      if (!wasHeld) return;
      await this.#store.releaseLease(this.#holder, this.fence).catch((err: unknown) => {
        // It runs out by itself on the server.
        this.#log?.warn({ err: messageOf(err) }, 'could not release the leader lease; it runs out by itself');
      });
    })();
    return this.#releasing;
  }
}

/** One attempt at the lease: held from now on (renewed), or undefined while another holds it. */
export async function tryTakeLease(
  store: LeaseStore,
  holder: string,
  opts: LeaseTiming & { readonly force?: boolean; readonly log?: Logger } = {},
): Promise<HeldLease | undefined> {
  const timing = leaseTiming(opts);
  const startedAt = performance.now();
  const fence = await store.takeLease(holder, timing.ttlMs, opts.force ? { force: true } : {});
  return fence && new RenewedLease(store, holder, fence, startedAt, timing, opts.log);
}

/** How a one-off command (`apply`) names itself as the lease's holder; a server's id never starts so. */
export const COMMAND_HOLDER_PREFIX = 'apply:';

export interface AcquireLeaseOptions extends LeaseTiming {
  readonly url: DatabaseUrl;
  readonly holder: string;
  /** How long to wait for another one-off command's lease. @default 0 */
  readonly waitMs?: number;
  readonly pollMs?: number;
  readonly log?: Logger;
}

/**
 * The lease for a one-off command such as `apply`, held (renewed) until released. A serving
 * replica leads continuously and reconciles apps.d itself, so its lease is refused at once with
 * LOCK_HELD naming it; another command's is waited for up to `waitMs`. SQLite: the store's file
 * lock too, released with the lease.
 */
export async function acquireLease(store: LeaseStore, opts: AcquireLeaseOptions): Promise<HeldLease> {
  const waitMs = opts.waitMs ?? 0;
  const started = performance.now();
  const waited = (): number => performance.now() - started;
  for (;;) {
    const holder = (await store.readLease())?.holder;
    if (holder !== undefined && !holder.startsWith(COMMAND_HOLDER_PREFIX)) {
      throw leaseHeld(store.target, holder, waited());
    }
    let fileLock: ReconcileLock | undefined;
    if (opts.url.dialect === 'sqlite') {
      fileLock = await acquireReconcileLock(opts.url, { waitMs: 0 }).catch((err: unknown) => {
        if (err instanceof AppvisorError && err.code === 'LOCK_HELD') return undefined;
        throw err;
      });
    }
    if (opts.url.dialect !== 'sqlite' || fileLock) {
      const lease = await tryTakeLease(store, opts.holder, {
        ...opts,
        ...(fileLock ? { force: true } : {}),
      }).catch(async (err: unknown) => {
        await fileLock?.release();
        throw err;
      });
      if (lease) return fileLock ? withFileLock(lease, fileLock) : lease;
      await fileLock?.release();
    }
    if (waited() >= waitMs) {
      throw leaseHeld(store.target, (await store.readLease().catch(() => undefined))?.holder, waited());
    }
    await sleep(Math.min(opts.pollMs ?? 200, waitMs));
  }
}

/** LOCK_HELD naming who holds the store (`note` says more, e.g. that SQLite runs one replica). */
export function leaseHeld(target: string, holder: string | undefined, ms: number, note = ''): AppvisorError {
  return new AppvisorError('LOCK_HELD', {
    target,
    holder: holder ? ` (${describeHolder(holder)}${note})` : '',
    ms: Math.round(ms),
  });
}

/** The lease, with the SQLite file lock it was taken under: lost with it, released with it. */
export function withFileLock(lease: HeldLease, lock: ReconcileLock): HeldLease {
  const lost = AbortSignal.any([lease.signal, abortedWhenLost(lock, lease)]);
  return {
    fence: lease.fence,
    signal: lost,
    get held() {
      return lease.held && lock.held;
    },
    async release() {
      await lease.release();
      await lock.release();
    },
  };
}

function abortedWhenLost(lock: ReconcileLock, lease: HeldLease): AbortSignal {
  const controller = new AbortController();
  void lock.lost.then((reason) => {
    controller.abort(reason);
    // Its renewals stop too: the lease is no longer this process's to hold.
    void lease.release();
  });
  return controller.signal;
}
