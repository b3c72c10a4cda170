import pg from 'pg';
import { asError, isConnectionLoss } from './errors.js';
import { createPool, type PoolOptions } from './pool.js';
import { SchemaWaiters } from './schema-waiters.js';

/**
 * Statements that may leave state on their connection after they ran: settings (`SET`, `RESET`,
 * `set_config`, also inside DO blocks, functions and EXECUTE strings), `DISCARD`, temporary
 * objects (found before the search_path), LISTEN, PREPARE, cursors, session advisory locks.
 * `UPDATE … SET` does not match. A false positive only costs one `DISCARD ALL`.
 */
const SESSION_STATE =
  /(?:^|[;'$(]|\b(?:begin|then|else|loop)\b)\s*set\b|\b(?:reset|discard|temp|temporary|pg_temp|listen|prepare|declare|set_config|pg_advisory_lock|pg_advisory_lock_shared)\b/i;

/** Whether `sql` may change its connection's session beyond the statement itself. */
export function touchesSession(sql: string): boolean {
  return SESSION_STATE.test(sql);
}

/**
 * One pg.Pool for the new-schema apps of one database: a handful of connections serve every
 * app, instead of a pool (and its connections) per app. Each checkout gives the connection the
 * app's `search_path` unless it has it already (tracked per connection, so an app running
 * query after query pays nothing); a connection whose session an app may have changed is
 * `DISCARD ALL`ed before it goes back, so the next app, and the next checkout of the same app,
 * start clean. One app holds at most its `maxConnections` of the pool at once (SchemaWaiters).
 * Apps retain the pool; it closes when the last one releases it.
 */
export class SharedSchemaPool {
  readonly #pool: pg.Pool;
  /** The search_path each live connection was given last (a new connection has none). */
  readonly #searchPaths = new WeakMap<pg.PoolClient, string>();
  readonly #waiters = new SchemaWaiters<pg.PoolClient>();
  readonly #onClosed: () => void;
  #users = 0;

  constructor(options: PoolOptions, onClosed: () => void) {
    this.#pool = createPool(options);
    this.#onClosed = onClosed;
  }

  get ended(): boolean {
    return this.#pool.ended || this.#pool.ending;
  }

  /** One more app uses the pool. */
  retain(): void {
    this.#users += 1;
  }

  /** One app stopped using the pool; the last one closes it. */
  async release(): Promise<void> {
    this.#users -= 1;
    if (this.#users <= 0) await this.end();
  }

  /** Closes the pool whoever still uses it (the provider's shutdown). */
  async end(): Promise<void> {
    this.#users = 0;
    this.#onClosed();
    if (!this.ended) await this.#pool.end();
  }

  /**
   * A connection whose search_path is `schema`. A connection that cannot be given it (lost, or
   * hit by a cancel meant for the statement before) is discarded and another one tried once.
   */
  async checkout(schema: string, limit: number): Promise<SchemaSession> {
    try {
      return await this.#checkoutOnce(schema, limit);
    } catch (err) {
      if (this.ended) throw err;
      return this.#checkoutOnce(schema, limit);
    }
  }

  async #checkoutOnce(schema: string, limit: number): Promise<SchemaSession> {
    const conn = await this.#waiters.acquire(schema, limit, () => this.#pool.connect());
    const session = new SchemaSession(conn, (outcome) => this.#giveBack(conn, schema, outcome));
    if (this.#searchPaths.get(conn) !== schema) {
      try {
        await conn.query(`SET search_path TO ${pg.escapeIdentifier(schema)}`);
      } catch (err) {
        session.release(err);
        throw err;
      }
      this.#searchPaths.set(conn, schema);
    }
    return session;
  }

  /**
   * A connection back from a checkout of `schema`: to the schema's next checkout when it is
   * clean, else to the pool (which discards it after an error). After an error or a reset its
   * search_path is unknown.
   */
  #giveBack(conn: pg.PoolClient, schema: string, outcome?: Outcome): void {
    if (outcome !== undefined) this.#searchPaths.delete(conn);
    const reusable = outcome === undefined && this.#searchPaths.get(conn) === schema;
    if (this.#waiters.release(conn, schema, reusable)) return;
    conn.release(outcome instanceof Error ? outcome : undefined);
  }
}

/** How a checkout ended: cleanly (undefined), with its session reset, or broken. */
type Outcome = Error | 'reset';

/** One checked-out connection of a shared pool, for one query or one transaction. */
export class SchemaSession {
  readonly #conn: pg.PoolClient;
  readonly #giveBack: (outcome?: Outcome) => void;
  #dirty = false;
  #lost: Error | undefined;
  readonly #onLost = (err: Error): void => {
    this.#lost = err;
  };

  constructor(conn: pg.PoolClient, giveBack: (outcome?: Outcome) => void) {
    this.#conn = conn;
    this.#giveBack = giveBack;
    // pg-pool listens for errors only on idle clients; a connection lost while checked out
    // would otherwise throw an unhandled 'error' at the process.
    conn.on('error', this.#onLost);
  }

  async query(sql: string, params?: unknown[]): Promise<pg.QueryResult> {
    if (touchesSession(sql)) this.#dirty = true;
    try {
      return await this.#conn.query(sql, params);
    } catch (err) {
      if (isConnectionLoss(err)) this.#lost ??= asError(err);
      throw err;
    }
  }

  /**
   * Gives the connection back: discarded when lost, after `err` (a failed checkout, a failed
   * ROLLBACK) or when a statement left it inside a transaction (a `BEGIN` without its end);
   * cleaned first when a statement may have changed its session. The caller does not wait for
   * the cleaning; the connection is nobody else's until it is done.
   */
  release(err?: unknown): void {
    const broken =
      this.#lost ??
      (err === undefined ? undefined : asError(err)) ??
      (this.#conn.getTransactionStatus() === 'I' ? undefined : new Error('left inside a transaction'));
    if (broken) {
      this.#done(broken);
      return;
    }
    if (!this.#dirty) {
      this.#done();
      return;
    }
    this.#conn.query('DISCARD ALL').then(
      () => this.#done('reset'),
      (discardErr: unknown) => this.#done(asError(discardErr)),
    );
  }

  #done(outcome?: Outcome): void {
    this.#conn.off('error', this.#onLost);
    this.#giveBack(this.#lost ?? outcome);
  }
}
