/**
 * The reconcile lock of a SQLite store: an OS file lock on `<main file>.lock`, which the
 * operating system drops when its holder dies (even by SIGKILL), so a store has one server (and
 * `apply` runs only without one). Server dialects have no such lock: their replicas and `apply`
 * coordinate through the leader lease in the store (src/reconcile/lease.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { dialectNamed, parseDatabaseUrl } from '../dialects/registry.js';
import type { LockSession } from '../dialects/types.js';
import type { DatabaseUrl } from '../dialects/url.js';
import { AppvisorError, messageOf } from '../errors.js';
import { abortReason } from '../providers/abort.js';
import type { Dialect } from '../providers/provider.js';

export interface ReconcileLockOptions {
  /** How long to wait while another process holds the lock before failing with LOCK_HELD. @default 0 */
  readonly waitMs?: number;
  /** Aborts the wait; the acquire then rejects with the signal's reason. */
  readonly signal?: AbortSignal;
  readonly log?: Logger;
  /** Base for relative `sqlite:` paths. @default process.cwd() */
  readonly cwd?: string;
  /** How often the connection holding the lock is checked (and kept from idling out). @default 15000 */
  readonly checkIntervalMs?: number;
  /** Pause between attempts while waiting. @default 200 */
  readonly pollMs?: number;
}

/** A held reconcile lock. */
export interface ReconcileLock {
  readonly dialect: Dialect;
  /** Redacted description of the main database. */
  readonly target: string;
  /** True until released or lost. */
  readonly held: boolean;
  /**
   * Resolves (never rejects) with the reason if the lock is lost while held: its connection
   * died, so another process may take it. Stop reconciling when it does. Never settles after
   * `release()`.
   */
  readonly lost: Promise<AppvisorError>;
  /** Releases the lock; safe to call more than once. */
  release(): Promise<void>;
}

const NAMESPACE = 'appvisor:reconcile';

/** How long `serve` and `apply` wait for another process's reconcile lock, unless set otherwise. */
export const DEFAULT_LOCK_WAIT_MS = 30_000;

class HeldLock implements ReconcileLock {
  readonly dialect: Dialect;
  readonly target: string;
  readonly lost: Promise<AppvisorError>;
  readonly #session: LockSession;
  readonly #log: Logger | undefined;
  readonly #timer: NodeJS.Timeout;
  #state: 'held' | 'lost' | 'released' = 'held';
  #checking = false;
  #releasing: Promise<void> | undefined;
  #resolveLost!: (err: AppvisorError) => void;

  constructor(session: LockSession, url: DatabaseUrl, checkIntervalMs: number, log: Logger | undefined) {
    this.dialect = url.dialect;
    this.target = url.redacted;
    this.#session = session;
    this.#log = log;
    this.lost = new Promise((resolve) => {
      this.#resolveLost = resolve;
    });
    this.#timer = setInterval(() => this.#check(), checkIntervalMs);
    this.#timer.unref();
    // Last: a death reported before this point is replayed at once.
    session.onDeath((err) => this.#lose(err));
  }

  get held(): boolean {
    return this.#state === 'held';
  }

  #check(): void {
    if (this.#checking || this.#state !== 'held') return;
    this.#checking = true;
    this.#session
      .check()
      .catch((err: unknown) => this.#lose(err))
      .finally(() => {
        this.#checking = false;
      });
  }

  #lose(cause: unknown): void {
    if (this.#state !== 'held') return;
    this.#state = 'lost';
    clearInterval(this.#timer);
    this.#session.destroy();
    const err = new AppvisorError('LOCK_LOST', { target: this.target, detail: messageOf(cause) }, { cause });
    this.#log?.error({ err, target: this.target }, 'lost the reconcile lock');
    this.#resolveLost(err);
  }

  release(): Promise<void> {
    this.#releasing ??= this.#release();
    return this.#releasing;
  }

  async #release(): Promise<void> {
    const wasHeld = this.#state === 'held';
    this.#state = 'released';
    clearInterval(this.#timer);
    if (!wasHeld) return;
    try {
      await this.#session.release();
      this.#log?.debug({ target: this.target }, 'reconcile lock released');
    } catch (err) {
      // The connection is gone, and with it the lock.
      this.#log?.warn({ err, target: this.target }, 'reconcile lock: release failed; connection dropped');
      this.#session.destroy();
    }
  }
}

/**
 * Takes the reconcile lock of the state store at `url` (the main database URL), waiting up to
 * `waitMs` while another process holds it. Fails with LOCK_HELD when it stays held, with
 * DB_UNREACHABLE when the server cannot be reached, and with the signal's reason on abort.
 */
export async function acquireReconcileLock(
  url: string | DatabaseUrl,
  opts: ReconcileLockOptions = {},
): Promise<ReconcileLock> {
  const parsed = typeof url === 'string' ? parseDatabaseUrl(url, opts.cwd) : url;
  const { signal, log } = opts;
  const dialect = dialectNamed(parsed.dialect);
  const waitMs = Math.max(0, opts.waitMs ?? 0);
  const pollMs = opts.pollMs ?? 200;
  const translate = (err: unknown): unknown =>
    signal?.aborted && err === signal.reason
      ? err
      : dialect.translateError(err, { server: parsed.redacted, operation: 'take the reconcile lock' });

  signal?.throwIfAborted();
  if (!dialect.lockSession) {
    throw new Error(
      `${parsed.dialect} stores have no reconcile lock: replicas coordinate through the leader lease`,
    );
  }
  const session = await dialect.lockSession(parsed, NAMESPACE).catch((err: unknown) => {
    throw translate(err);
  });
  const started = performance.now();
  try {
    let announced = false;
    for (;;) {
      if (await session.tryLock()) break;
      const waited = performance.now() - started;
      if (waited >= waitMs)
        throw new AppvisorError('LOCK_HELD', { target: parsed.redacted, holder: '', ms: Math.round(waited) });
      if (!announced) {
        log?.info(
          { target: parsed.redacted, waitMs },
          'waiting for the reconcile lock held by another appvisor process',
        );
        announced = true;
      }
      try {
        await sleep(Math.min(pollMs, waitMs - waited), undefined, signal ? { signal } : undefined);
      } catch {
        throw abortReason(signal!);
      }
    }
  } catch (err) {
    session.destroy();
    throw translate(err);
  }
  log?.debug(
    { target: parsed.redacted, waitedMs: Math.round(performance.now() - started) },
    'reconcile lock acquired',
  );
  return new HeldLock(session, parsed, opts.checkIntervalMs ?? 15_000, log);
}
