/** What the lock sessions of server dialects share: a dedicated connection that holds the lock. */
import type { LockSession } from './types.js';

/** Calls its listener at most once, even when death is reported before anyone listens. */
export class DeathWatch {
  #listener: ((err: Error) => void) | undefined;
  #error: Error | undefined;

  fire = (err: Error): void => {
    if (this.#error) return;
    this.#error = err;
    this.#listener?.(err);
  };

  listen = (listener: (err: Error) => void): void => {
    this.#listener = listener;
    if (this.#error) listener(this.#error);
  };
}

/** The dedicated connection, as a lock session needs it. */
export interface LockConnection {
  query(sql: string): Promise<unknown>;
  /** Closes the connection politely. */
  end(): Promise<void>;
  /** Drops the connection at once; never throws. */
  destroy(): void;
}

/**
 * A session on `conn`: the lock is the server's (`tryLock`/`unlock`), so it goes with the
 * connection; `check` proves the connection still lives.
 */
export function connectionSession(
  conn: LockConnection,
  death: DeathWatch,
  lock: { tryLock(): Promise<boolean>; unlock(): Promise<void> },
): LockSession {
  return {
    tryLock: () => lock.tryLock(),
    async check() {
      await conn.query('SELECT 1');
    },
    async release() {
      try {
        await lock.unlock();
      } finally {
        await conn.end();
      }
    },
    destroy: () => conn.destroy(),
    onDeath: death.listen,
  };
}
