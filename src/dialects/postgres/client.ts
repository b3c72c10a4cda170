import pg from 'pg';
import type { SqlClient } from '../../providers/provider.js';
import type { ConnectionBudget } from '../../providers/sql/budget.js';
import { redactUrl } from '../url.js';
import { toNumberedPlaceholders } from './placeholders.js';

export interface PostgresClientOptions {
  readonly connectionString: string;
  /** Sets `search_path` on every connection of the pool. */
  readonly schema?: string;
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
}

/** How long a new connection waits for a budget slot. */
const BUDGET_WAIT_MS = 10_000;

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

type Queryable = pg.Pool | pg.PoolClient;

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

/** A SqlClient over a `pg` pool (or, inside a transaction, one pooled connection). */
export class PostgresClient implements SqlClient {
  readonly dialect = 'postgres' as const;
  readonly pool: pg.Pool;
  readonly #target: Queryable;

  constructor(options: PostgresClientOptions | { pool: pg.Pool; target: Queryable }) {
    if ('pool' in options) {
      this.pool = options.pool;
      this.#target = options.target;
      return;
    }
    const budget = options.budget;
    this.pool = new pg.Pool({
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
      ...(options.schema ? { options: `-c search_path=${quoteSearchPath(options.schema)}` } : {}),
    });
    // An idle client losing its server emits 'error' on the pool; unhandled, it would crash the process.
    const onError = options.onError ?? (() => undefined);
    this.pool.on('error', onError);
    this.#target = this.pool;
    if (budget) {
      this.#unregister = budget.register(() => reclaimIdle(this.pool));
      // A connection going idle while others wait for a slot is closed at once, after pg-pool
      // has put it in its idle list (hence the microtask).
      this.pool.on('release', () => {
        if (budget.waiting > 0) queueMicrotask(() => budget.reclaim());
      });
    }
  }

  #unregister: (() => void) | undefined;

  async query<T = Record<string, unknown>>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
    const result = await this.#target.query(toNumberedPlaceholders(sql), params as unknown[]);
    return result.rows as T[];
  }

  async execute(sql: string, params: readonly unknown[] = []): Promise<number> {
    const result = await this.#target.query(toNumberedPlaceholders(sql), params as unknown[]);
    return result.rowCount ?? 0;
  }

  async exec(sql: string): Promise<void> {
    await this.#target.query(sql);
  }

  async transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> {
    if (this.#target !== this.pool) return fn(this);
    const conn = await this.pool.connect();
    let broken = false;
    // pg-pool listens for errors only on idle clients; a connection lost mid-transaction
    // would otherwise throw an unhandled 'error' at the process.
    const onLost = (): void => {
      broken = true;
    };
    conn.on('error', onLost);
    try {
      await conn.query('BEGIN');
      const result = await fn(new PostgresClient({ pool: this.pool, target: conn }));
      await conn.query('COMMIT');
      return result;
    } catch (err) {
      try {
        await conn.query('ROLLBACK');
      } catch {
        broken = true;
      }
      throw err;
    } finally {
      conn.off('error', onLost);
      conn.release(broken);
    }
  }

  async close(): Promise<void> {
    if (this.#target !== this.pool) return;
    this.#unregister?.();
    if (!this.pool.ended) await this.pool.end();
  }
}

/** `search_path` takes identifiers; quote the schema like an identifier (double quotes doubled). */
function quoteSearchPath(schema: string): string {
  return `"${schema.replace(/"/g, '""')}"`.replace(/ /g, '\\ ');
}
