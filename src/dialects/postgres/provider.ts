import crypto from 'node:crypto';
import pg from 'pg';
import { AppvisorError } from '../../errors.js';
import { abortable, abortReason } from '../../providers/abort.js';
import { onNewConnection } from '../../providers/connection.js';
import type {
  AppDatabase,
  Catalog,
  CatalogEntry,
  Leftover,
  Observation,
  OperationResult,
  OpOptions,
  Provider,
  ProviderLog,
  SqlClient,
} from '../../providers/provider.js';
import type { ConnectionBudget } from '../../providers/sql/budget.js';
import { validateLeftover, validateOwner } from '../identifiers.js';
import { type DatabaseUrl, serverOf, withDatabase } from '../url.js';
import { PostgresClient } from './client.js';
import { asError, isConnectionLoss, translateError } from './errors.js';
import { quoteIdentifier, quoteLiteral, validateIdentifier } from './identifiers.js';
import type { PoolOptions } from './pool.js';
import { SchemaClient } from './schema-client.js';
import { PostgresSessionClient } from './session-client.js';
import { SharedSchemaPool } from './shared-pool.js';

export interface PostgresProviderOptions {
  /** Receives errors of idle admin and app connections (server restarts); nothing else. */
  readonly log?: ProviderLog;
  /** Admin pool size. @default 2 */
  readonly maxAdminConnections?: number;
  /** Idle admin and app connections close after this long. @default 10000 */
  readonly idleTimeoutMillis?: number;
  /** @default 5000 */
  readonly connectTimeoutMillis?: number;
  /** Shared limit on the open connections of the app pools this provider opens. */
  readonly budget?: ConnectionBudget;
  /**
   * Connections of the one pool all new-schema apps of a database share; 0: a pool per app
   * instead, its search_path set when each connection starts. @default 10
   */
  readonly schemaPoolSize?: number;
}

/** The shared pool's size when the settings name none (see bench/README.md for the measurement). */
export const DEFAULT_SCHEMA_POOL_SIZE = 10;

/** Most connections one app holds at once when its opener names no maxConnections. */
const DEFAULT_APP_CONNECTIONS = 10;

/** Databases a provider never creates or drops, whatever a manifest says. */
const RESERVED_DATABASES = new Set(['postgres', 'template0', 'template1']);
const RESERVED_SCHEMAS = new Set(['public', 'information_schema']);

/** SQLSTATE 42P04 duplicate_database, 42P06 duplicate_schema, 23505 unique_violation (a concurrent CREATE). */
const DUPLICATE_STATES = new Set(['42P04', '42P06', '23505']);

/** The temporary name a database is created under before its rename (see createDatabase). */
const TEMP_PREFIX = '_avtmp_';
const TEMP_NAME = /^_avtmp_[0-9a-f]{16}$/;
/** The temporary name of a schema a restore loads into (src/dialects/postgres/transfer.ts). */
const TEMP_SCHEMA_PREFIX = '_avtmps_';
const TEMP_SCHEMA_NAME = /^_avtmps_[0-9a-f]{16}$/;
/** Either kind of leftover `listLeftovers` reports. */
const LEFTOVER_NAME = /^_avtmps?_[0-9a-f]{16}$/;

/**
 * A fresh temporary name that `listLeftovers` finds (once it carries a marker) and
 * `sweepLeftover` removes: a database (an interrupted create, a restore's load or its old data
 * set aside) or a schema in the provider's database (a new-schema restore).
 */
export function temporaryName(kind: 'database' | 'schema'): string {
  return `${kind === 'database' ? TEMP_PREFIX : TEMP_SCHEMA_PREFIX}${crypto.randomBytes(8).toString('hex')}`;
}

/** Whether `name` is one of {@link temporaryName}'s names of that kind. */
export function isTemporaryName(kind: 'database' | 'schema', name: string): boolean {
  return (kind === 'database' ? TEMP_NAME : TEMP_SCHEMA_NAME).test(name);
}

/**
 * PostgreSQL: `new-database` on the server of `url`, `new-schema` inside the database of `url`.
 * Ownership markers are `COMMENT ON DATABASE` / `COMMENT ON SCHEMA`, written so that an object
 * with the real name never exists without its marker.
 */
export class PostgresProvider implements Provider {
  readonly dialect = 'postgres' as const;
  readonly server: string;
  readonly #url: DatabaseUrl;
  /** The database the admin pool connects to, which holds new-schema schemas. */
  readonly #database: string;
  readonly #pool: pg.Pool;
  readonly #options: PostgresProviderOptions;
  /** The shared pool of each database that has new-schema apps open, by database name. */
  readonly #sharedPools = new Map<string, SharedSchemaPool>();
  #serverVersion: number | undefined;

  constructor(url: DatabaseUrl, options: PostgresProviderOptions = {}) {
    if (url.dialect !== 'postgres')
      throw new TypeError(`PostgresProvider needs a postgres URL, got ${url.redacted}`);
    this.#url = url;
    this.#options = options;
    this.#database = url.database ?? 'postgres';
    this.server = serverOf(url);
    this.#pool = new pg.Pool({
      connectionString: withDatabase(url, this.#database),
      max: options.maxAdminConnections ?? 2,
      idleTimeoutMillis: options.idleTimeoutMillis ?? 10_000,
      connectionTimeoutMillis: options.connectTimeoutMillis ?? 5_000,
      allowExitOnIdle: true,
    });
    // Unhandled, an idle connection dropped by the server would crash the process.
    this.#pool.on('error', (err) => this.#warn(err, 'idle admin connection failed'));
  }

  async observeDatabase(name: string, opts: OpOptions = {}): Promise<Observation> {
    validateIdentifier('database', name);
    return this.#run(`observe database "${name}"`, opts.signal, (c) => this.#observeDatabase(c, name));
  }

  async createDatabase(name: string, owner: string, opts: OpOptions = {}): Promise<OperationResult> {
    const quoted = quoteIdentifier('database', name);
    validateOwner(owner);
    this.#refuseReserved('database', name);
    return this.#run(`create database "${name}"`, opts.signal, async (client) => {
      if ((await this.#observeDatabase(client, name)).exists) return 'unchanged';
      // CREATE DATABASE cannot run in a transaction: create and mark it under a temporary name,
      // then rename, so a crash never leaves an unmarked database under the real name.
      const temp = pg.escapeIdentifier(temporaryName('database'));
      await client.query(`CREATE DATABASE ${temp}`);
      try {
        await client.query(`COMMENT ON DATABASE ${temp} IS ${quoteLiteral(owner)}`);
        await client.query(`ALTER DATABASE ${temp} RENAME TO ${quoted}`);
        return 'created';
      } catch (err) {
        await client.query(`DROP DATABASE IF EXISTS ${temp}`).catch(() => undefined);
        if (isDuplicate(err)) return 'unchanged';
        throw err;
      }
    });
  }

  async dropDatabase(name: string, opts: OpOptions = {}): Promise<OperationResult> {
    const quoted = quoteIdentifier('database', name);
    this.#refuseReserved('database', name, 'drop');
    return this.#run(`drop database "${name}"`, opts.signal, async (client) => {
      if (!(await this.#observeDatabase(client, name)).exists) return 'unchanged';
      if ((await this.#version(client)) >= 130000) {
        // FORCE terminates the app's open connections, which would otherwise block the drop.
        await client.query(`DROP DATABASE IF EXISTS ${quoted} WITH (FORCE)`);
      } else {
        await client.query(
          'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
          [name],
        );
        await client.query(`DROP DATABASE IF EXISTS ${quoted}`);
      }
      return 'deleted';
    });
  }

  /**
   * Temporary databases on the server and temporary schemas in the provider's database that
   * carry a marker: an interrupted create's, or what a killed restore left (its load, or the old
   * data it set aside). Unmarked ones are not appvisor's to sweep.
   */
  async listLeftovers(opts: OpOptions = {}): Promise<readonly Leftover[]> {
    return this.#run('list leftover temporary databases and schemas', opts.signal, async (client) => {
      const { rows } = await client.query<{ name: string; owner: string | null }>(
        `SELECT datname AS name, shobj_description(oid, 'pg_database') AS owner FROM pg_database
          WHERE starts_with(datname, $1)
         UNION ALL
         SELECT nspname, obj_description(oid, 'pg_namespace') FROM pg_namespace
          WHERE starts_with(nspname, $2)
         ORDER BY name`,
        [TEMP_PREFIX, TEMP_SCHEMA_PREFIX],
      );
      return rows
        .filter((r) => LEFTOVER_NAME.test(r.name) && r.owner)
        .map((r) => ({ name: r.name, owner: r.owner! }));
    });
  }

  /** Every database on the server and every schema of the provider's database (the system ones left out). */
  async catalog(opts: OpOptions = {}): Promise<Catalog> {
    return this.#run('list databases and schemas', opts.signal, async (client) => {
      const databases = await client.query<{ name: string; owner: string | null }>(
        `SELECT datname AS name, shobj_description(oid, 'pg_database') AS owner FROM pg_database
          WHERE NOT datistemplate ORDER BY datname`,
      );
      // pg_* and information_schema are PostgreSQL's own: no app's schema can be named so.
      const schemas = await client.query<{ name: string; owner: string | null }>(
        `SELECT nspname AS name, obj_description(oid, 'pg_namespace') AS owner FROM pg_namespace
          WHERE NOT starts_with(nspname, 'pg_') AND nspname <> 'information_schema' ORDER BY nspname`,
      );
      return { databases: catalogEntries(databases.rows), schemas: catalogEntries(schemas.rows) };
    });
  }

  async sweepLeftover(name: string, owner: string, opts: OpOptions = {}): Promise<OperationResult> {
    validateLeftover('database', name, LEFTOVER_NAME, owner);
    if (TEMP_SCHEMA_NAME.test(name)) {
      return this.#run(`sweep temporary schema "${name}"`, opts.signal, async (client) => {
        const seen = await this.#observeSchema(client, name);
        if (!seen.exists || seen.owner !== owner) return 'unchanged';
        await client.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(name)} CASCADE`);
        return 'deleted';
      });
    }
    return this.#run(`sweep temporary database "${name}"`, opts.signal, async (client) => {
      const seen = await this.#observeDatabase(client, name);
      if (!seen.exists || seen.owner !== owner) return 'unchanged';
      // A killed restore's child may still hold a connection to its temporary database.
      const force = (await this.#version(client)) >= 130000 ? ' WITH (FORCE)' : '';
      await client.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)}${force}`);
      return 'deleted';
    });
  }

  async observeSchema(schema: string, opts: OpOptions = {}): Promise<Observation> {
    validateIdentifier('schema', schema);
    return this.#run(`observe schema "${schema}"`, opts.signal, (c) => this.#observeSchema(c, schema));
  }

  async createSchema(schema: string, owner: string, opts: OpOptions = {}): Promise<OperationResult> {
    const quoted = quoteIdentifier('schema', schema);
    validateOwner(owner);
    this.#refuseReserved('schema', schema);
    return this.#run(
      `create schema "${schema}" in database "${this.#database}"`,
      opts.signal,
      async (client) => {
        if ((await this.#observeSchema(client, schema)).exists) return 'unchanged';
        try {
          // One query of two statements runs as one implicit transaction (the simple query
          // protocol): the schema never exists without its marker, in one round trip.
          await client.query(
            `CREATE SCHEMA ${quoted}; COMMENT ON SCHEMA ${quoted} IS ${quoteLiteral(owner)}`,
          );
          return 'created';
        } catch (err) {
          if (isDuplicate(err)) return 'unchanged';
          throw err;
        }
      },
    );
  }

  async dropSchema(schema: string, opts: OpOptions = {}): Promise<OperationResult> {
    const quoted = quoteIdentifier('schema', schema);
    this.#refuseReserved('schema', schema);
    return this.#run(
      `drop schema "${schema}" in database "${this.#database}"`,
      opts.signal,
      async (client) => {
        if (!(await this.#observeSchema(client, schema)).exists) return 'unchanged';
        await client.query(`DROP SCHEMA IF EXISTS ${quoted} CASCADE`);
        return 'deleted';
      },
    );
  }

  async openDatabase(
    name: string,
    opts: { schema?: string; maxConnections?: number; label?: string } = {},
  ): Promise<AppDatabase> {
    validateIdentifier('database', name);
    if (opts.schema !== undefined) validateIdentifier('schema', opts.schema);
    const url = withDatabase(this.#url, name);
    const client: SqlClient =
      opts.schema && this.#options.schemaPoolSize !== 0
        ? new SchemaClient(
            this.#sharedPool(name),
            opts.schema,
            opts.maxConnections ?? DEFAULT_APP_CONNECTIONS,
          )
        : new PostgresClient({
            ...this.#poolOptions(name),
            ...(opts.schema ? { schema: opts.schema } : {}),
            ...(opts.maxConnections ? { max: opts.maxConnections } : {}),
            ...(opts.label ? { applicationName: opts.label } : {}),
          });
    return {
      dialect: 'postgres',
      client,
      connection: {
        dialect: 'postgres',
        url,
        database: name,
        ...(opts.schema ? { schema: opts.schema } : {}),
      },
    };
  }

  async withConnection<T>(
    name: string,
    opts: { schema?: string },
    work: (client: SqlClient) => Promise<T>,
  ): Promise<T> {
    validateIdentifier('database', name);
    if (opts.schema === undefined || name !== this.#database) return onNewConnection(this, name, opts, work);
    validateIdentifier('schema', opts.schema);
    // A schema in the admin pool's own database: an admin connection saves opening one. The
    // search_path is the schema's for the work only; DISCARD ALL then puts the session back as
    // a new one (whatever the work SET), and a connection the work failed on is dropped.
    const conn = await this.#pool.connect();
    let failure: Error | undefined;
    const onLost = (err: Error): void => {
      failure = err;
    };
    conn.on('error', onLost);
    try {
      await conn.query(`SET search_path TO ${pg.escapeIdentifier(opts.schema)}`);
      const result = await work(new PostgresSessionClient(conn));
      await conn.query('DISCARD ALL');
      return result;
    } catch (err) {
      failure ??= asError(err);
      throw err;
    } finally {
      conn.off('error', onLost);
      conn.release(failure);
    }
  }

  async close(): Promise<void> {
    const shared = [...this.#sharedPools.values()];
    this.#sharedPools.clear();
    await Promise.allSettled(shared.map((pool) => pool.end()));
    if (!this.#pool.ended && !this.#pool.ending) await this.#pool.end();
  }

  /**
   * The pool the new-schema apps of database `name` share. It takes budget slots like any
   * pool, but lends none of its idle connections to other pools: a handful of connections
   * that every app reuses are what keeps the count low, and closing them would churn.
   */
  #sharedPool(name: string): SharedSchemaPool {
    let shared = this.#sharedPools.get(name);
    if (!shared) {
      const created = new SharedSchemaPool(
        {
          ...this.#poolOptions(name),
          max: this.#options.schemaPoolSize ?? DEFAULT_SCHEMA_POOL_SIZE,
          applicationName: `appvisor:schemas:${name}`,
        },
        () => {
          if (this.#sharedPools.get(name) === created) this.#sharedPools.delete(name);
        },
      );
      shared = created;
      this.#sharedPools.set(name, shared);
    }
    return shared;
  }

  #poolOptions(name: string): PoolOptions {
    return {
      connectionString: withDatabase(this.#url, name),
      idleTimeoutMillis: this.#options.idleTimeoutMillis ?? 10_000,
      connectionTimeoutMillis: this.#options.connectTimeoutMillis ?? 5_000,
      onError: (err) => this.#warn(err, `idle connection to database "${name}" failed`),
      ...(this.#options.budget ? { budget: this.#options.budget } : {}),
    };
  }

  async #observeDatabase(client: pg.PoolClient, name: string): Promise<Observation> {
    const { rows } = await client.query<{ owner: string | null }>(
      `SELECT shobj_description(oid, 'pg_database') AS owner FROM pg_database WHERE datname = $1`,
      [name],
    );
    return observation(rows);
  }

  async #observeSchema(client: pg.PoolClient, schema: string): Promise<Observation> {
    const { rows } = await client.query<{ owner: string | null }>(
      `SELECT obj_description(oid, 'pg_namespace') AS owner FROM pg_namespace WHERE nspname = $1`,
      [schema],
    );
    return observation(rows);
  }

  async #version(client: pg.PoolClient): Promise<number> {
    if (this.#serverVersion === undefined) {
      const { rows } = await client.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`);
      this.#serverVersion = Number(rows[0]?.v ?? 0);
    }
    return this.#serverVersion;
  }

  /** System objects are never touched; the database the provider is connected to is never dropped. */
  #refuseReserved(kind: 'database' | 'schema', name: string, op: 'create' | 'drop' = 'create'): void {
    const connected = kind === 'database' && op === 'drop' && name === this.#database;
    const reserved =
      kind === 'database'
        ? RESERVED_DATABASES.has(name)
        : RESERVED_SCHEMAS.has(name) || name.startsWith('pg_');
    if (connected || reserved) {
      throw new AppvisorError('INVALID_IDENTIFIER', {
        kind,
        name: JSON.stringify(name),
        reason: connected ? 'it is the main database' : 'it is reserved by PostgreSQL',
      });
    }
  }

  /**
   * Runs `fn` on one admin connection, translating driver errors. On abort the caller gets the
   * signal's reason at once; the running statement is cancelled on the server and the
   * connection discarded when it settles.
   */
  async #run<T>(
    operation: string,
    signal: AbortSignal | undefined,
    fn: (c: pg.PoolClient) => Promise<T>,
  ): Promise<T> {
    let client: pg.PoolClient | undefined;
    let aborted = false;
    const work = async (): Promise<T> => {
      const acquired = await this.#pool.connect();
      // pg-pool listens for errors only on idle clients; a connection lost while checked out
      // would otherwise throw an unhandled 'error' at the process.
      let lost: Error | undefined;
      const onLost = (err: Error): void => {
        lost = err;
      };
      acquired.on('error', onLost);
      const release = (err?: unknown): void => {
        acquired.off('error', onLost);
        const discard = aborted || lost !== undefined || (err !== undefined && isConnectionLoss(err));
        acquired.release(discard ? (lost ?? asError(err ?? new Error('aborted'))) : undefined);
      };
      if (aborted) {
        release();
        throw abortReason(signal!);
      }
      client = acquired;
      try {
        const result = await fn(acquired);
        release();
        return result;
      } catch (err) {
        release(err);
        throw err;
      }
    };
    try {
      return await abortable(work, signal, () => {
        aborted = true;
        if (client) this.#cancelBackend(client);
      });
    } catch (err) {
      if (signal?.aborted && err === signal.reason) throw err;
      throw translateError(err, { server: this.server, operation });
    }
  }

  /** Best effort: asks the server to cancel what `client` is running, on a separate connection. */
  #cancelBackend(client: pg.PoolClient): void {
    const pid = (client as unknown as { processID?: number }).processID;
    if (!pid) return;
    const canceller = new pg.Client({
      connectionString: withDatabase(this.#url, this.#database),
      connectionTimeoutMillis: 2_000,
    });
    canceller.on('error', () => undefined);
    canceller
      .connect()
      .then(() => canceller.query('SELECT pg_cancel_backend($1)', [pid]))
      .catch(() => undefined)
      .finally(() => canceller.end().catch(() => undefined));
  }

  #warn(err: Error, msg: string): void {
    this.#options.log?.warn({ err, server: this.server }, msg);
  }
}

function catalogEntries(rows: readonly { name: string; owner: string | null }[]): CatalogEntry[] {
  return rows.map((r) => (r.owner ? { name: r.name, owner: r.owner } : { name: r.name }));
}

function observation(rows: readonly { owner: string | null }[]): Observation {
  const row = rows[0];
  if (!row) return { exists: false };
  return row.owner ? { exists: true, owner: row.owner } : { exists: true };
}

function isDuplicate(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && DUPLICATE_STATES.has(code);
}
