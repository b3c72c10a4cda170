import pg from 'pg';
import type { ConnectionBudget } from '../../providers/sql/budget.js';
import { redactUrl } from '../url.js';

export interface PoolOptions {
  readonly connectionString: string;
  /** @default 10 */
  readonly max?: number;
  /** Idle connections close after this long, so idle apps hold no server connections. @default 10000 */
  readonly idleTimeoutMillis?: number;
  /** @default 5000 */
  readonly connectionTimeoutMillis?: number;
  /** Called when an idle pooled connection fails (server restart); the pool replaces it. */
  readonly onError?: (err: Error) => void;
  /** Shared limit on open connections to this server; each connection holds a slot while open. */
  readonly budget?: ConnectionBudget;
  /** `application_name` of the connections (shown in pg_stat_activity). */
  readonly applicationName?: string;
  /** Server settings every connection starts with (`-c name=value …`). */
  readonly startupOptions?: string;
}

/** How long a new connection waits for a budget slot. */
const BUDGET_WAIT_MS = 10_000;

/** A pg.Pool whose every connection is counted by `budget`, when there is one. */
export function createPool(options: PoolOptions): pg.Pool {
  const budget = options.budget;
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.max ?? 10,
    idleTimeoutMillis: options.idleTimeoutMillis ?? 10_000,
    // With a budget, a connection may first wait for a slot, then connect.
    connectionTimeoutMillis: (options.connectionTimeoutMillis ?? 5_000) + (budget ? BUDGET_WAIT_MS : 0),
    ...(budget ? { Client: budgetedClient(budget, redactUrl(options.connectionString)) } : {}),
    // PostgreSQL truncates it at 63 bytes anyway.
    ...(options.applicationName ? { application_name: options.applicationName.slice(0, 63) } : {}),
    // Let the process exit while idle connections remain.
    allowExitOnIdle: true,
    ...(options.startupOptions ? { options: options.startupOptions } : {}),
  });
  // An idle client losing its server emits 'error' on the pool; unhandled, it would crash the process.
  pool.on('error', options.onError ?? (() => undefined));
  return pool;
}

/**
 * Lets `budget` close the pool's idle connections for connections waiting for a slot, and closes
 * one as soon as it goes idle while others wait. Returns the unregister function.
 */
export function lendIdleConnections(pool: pg.Pool, budget: ConnectionBudget): () => void {
  const unregister = budget.register(() => reclaimIdle(pool));
  // After pg-pool has put the connection in its idle list (hence the microtask).
  const onRelease = (): void => {
    if (budget.waiting > 0) queueMicrotask(() => budget.reclaim());
  };
  pool.on('release', onRelease);
  return () => {
    unregister();
    pool.off('release', onRelease);
  };
}

/**
 * A pg.Client that takes a budget slot before it connects and gives it back when it ends
 * (pg-pool creates clients through this class, so every pooled connection is counted).
 */
function budgetedClient(budget: ConnectionBudget, server: string): typeof pg.Client {
  type Callback = (err?: Error) => void;
  // pg's overloads (callback or promise) do not survive subclassing in TypeScript; this is the
  // slice of pg.Client the subclass touches.
  const Base = pg.Client as unknown as new (
    config?: pg.ClientConfig,
  ) => {
    connect(callback?: Callback): Promise<void> | undefined;
    end(callback?: Callback): Promise<void> | undefined;
    once(event: 'end', listener: () => void): unknown;
  };
  class BudgetedClient extends Base {
    #release: (() => void) | undefined;
    #ended = false;

    override connect(callback?: Callback): Promise<void> | undefined {
      const connecting = budget
        .acquire(BUDGET_WAIT_MS, () => server)
        .then(async (release) => {
          if (this.#ended) {
            // The pool gave up on this client while it waited (its own timeout).
            release();
            throw new Error('connection abandoned while waiting for the connection budget');
          }
          this.#release = release;
          this.once('end', release);
          try {
            await super.connect();
          } catch (err) {
            release();
            throw err;
          }
        });
      if (!callback) return connecting;
      connecting.then(() => callback(), callback);
      return undefined;
    }

    override end(callback?: Callback): Promise<void> | undefined {
      this.#ended = true;
      this.#release?.();
      return super.end(callback);
    }
  }
  return BudgetedClient as unknown as typeof pg.Client;
}

/**
 * Closes the pool's oldest idle connection, if it has one. pg-pool has no public way to do
 * this; its `_idle` list and `_remove` are used when present, and without them the budget
 * simply waits for the idle timeout.
 */
function reclaimIdle(pool: pg.Pool): boolean {
  const internals = pool as unknown as { _idle?: { client: unknown }[]; _remove?: (client: unknown) => void };
  const item = internals._idle?.[0];
  if (!item || typeof internals._remove !== 'function') return false;
  internals._remove(item.client);
  return true;
}
