/**
 * What appvisor knows about one SQL dialect, in one place: the URL schemes that select it, the
 * server identity inventory records are matched by, how to open a client, how its driver's
 * errors read, SQLite's reconcile lock, the state store's SQL and the provider. Every caller reaches
 * a dialect through the registry (registry.ts); adding a dialect is one more folder beside
 * postgres/, mysql/ and sqlite/, listed there.
 */
import type { AppvisorError } from '../errors.js';
import type { Dialect, Provider, ProviderLog, SqlClient } from '../providers/provider.js';
import type { ConnectionBudget } from '../providers/sql/budget.js';
import type { DbErrorContext } from './errors.js';
import type { IdentifierKind, IdentifierRules } from './identifiers.js';
import type { DatabaseUrl } from './url.js';

export interface OpenOptions {
  /** PostgreSQL only: search_path for every connection. */
  readonly schema?: string;
  /** Pool size for server dialects. */
  readonly max?: number;
  readonly onError?: (err: Error) => void;
}

export interface ReadOnlyOptions {
  /** Where unqualified names are looked up, first match wins (dialects with schemas). */
  readonly searchPath?: readonly string[];
  readonly onError?: (err: Error) => void;
}

export interface ProviderOptions {
  /** The data folder; SQLite app databases live in its `apps/` subfolder. */
  readonly dataDir: string;
  /** Receives problems a provider handles itself (an idle connection dropped by the server). */
  readonly log?: ProviderLog;
  /** PostgreSQL: most open connections of all app pools on this server. */
  readonly budget?: ConnectionBudget;
  /** PostgreSQL: connections of the pool the new-schema apps of one database share (0: a pool per app). */
  readonly schemaPoolSize?: number;
  /**
   * PostgreSQL, MySQL: the provider's own connections (creates, drops, observations, and the
   * migrations of schemas in its database): one per reconcile running at once. @default 2
   */
  readonly adminConnections?: number;
}

/** How a driver error reads: the server is gone, it refused us, or the statement failed. */
export type DbErrorKind = 'unreachable' | 'permission' | 'failed';

/** SQLite's way of holding the reconcile lock (see src/reconcile/lock.ts). */
export interface LockSession {
  /** One attempt, without waiting: true when this session now holds the lock. */
  tryLock(): Promise<boolean>;
  /** Rejects when the session can no longer be holding the lock. */
  check(): Promise<void>;
  /** Releases the lock and closes the session. */
  release(): Promise<void>;
  /** Drops the session without ceremony (the server or OS releases whatever it held). */
  destroy(): void;
  /** Called once if the session's connection dies by itself. */
  onDeath(listener: (err: Error) => void): void;
}

/** Column types per dialect, for the state store's migrations. */
export interface ColumnTypes {
  /** A primary or indexed key: MySQL cannot index TEXT without a length. */
  readonly key: string;
  /** Short text (file names, hashes, statuses, ISO timestamps). */
  readonly text: string;
  /** JSON documents of any size. */
  readonly json: string;
  readonly bool: string;
  readonly int: string;
  /** An auto-incrementing integer primary key, column definition included. */
  readonly serialPk: string;
  /** Appended to CREATE TABLE. */
  readonly tableOptions: string;
}

/** The places where the state store's SQL differs between dialects; the rest is written once. */
/** One statement of a batch, and how many rows it must change (any number when absent). */
export interface BatchStatement {
  readonly sql: string;
  readonly params: readonly unknown[];
  readonly expect?: number;
}

export interface StoreSql {
  readonly types: ColumnTypes;
  /**
   * Runs `statements` in order in one transaction. Resolves with undefined once all are
   * committed, or rolls back and resolves with the index of the first that did not change the
   * rows it expected. Nothing another caller of the client runs comes in between.
   */
  executeBatch(client: SqlClient, statements: readonly BatchStatement[]): Promise<number | undefined>;
  /** The tail of `INSERT … VALUES (…)` that replaces `others` on a duplicate `key`. */
  upsertClause(key: string, others: readonly string[]): string;
  /** The tail of `INSERT … VALUES (…)` that makes a duplicate `key` a no-op. */
  ignoreDuplicateClause(key: string): string;
  /** Whether `table` exists (dialects with schemas: on the search_path, or `schema.table`). */
  tableExists(client: SqlClient, table: string): Promise<boolean>;
  /**
   * The tables and views in the database a client would create its own in (`inSchema`: that
   * schema, on dialects with schemas), with the schema they were found in where there is one.
   */
  listTables(client: SqlClient, inSchema?: string): Promise<{ s?: string; t: string }[]>;
  /** Whether `schema` exists (dialects with schemas; the others have none and say false). */
  schemaExists(client: SqlClient, schema: string): Promise<boolean>;
  /** Statements adding `columns` (full definitions) to `table`, each safe to run again where DDL is not transactional. */
  addColumns(table: string, columns: readonly string[]): string[];
  /**
   * An index on `table`: either a clause for its CREATE TABLE (`inline`) or a statement run
   * after it (`statement`), whichever the dialect can repeat safely.
   */
  index(table: string, name: string, columns: readonly string[]): { inline?: string; statement?: string };
  /**
   * Serializes the store's migrations across processes on `tx`'s connection (inside the
   * migration's transaction); resolves with the release.
   */
  lockForMigration(tx: SqlClient, namespace: string, target: string): Promise<() => Promise<void>>;
  /**
   * An SQL expression for the database server's clock in milliseconds since the epoch: the one
   * clock every replica compares lease expiries and heartbeats against, whatever their own say.
   */
  readonly nowMs: string;
  /**
   * Sends `payload` to the listeners of `channel` (PostgreSQL NOTIFY); absent where the server
   * has no such thing, and replicas there learn of changes by polling alone.
   */
  notify?(client: SqlClient, channel: string, payload: string): Promise<void>;
  /**
   * A query giving the server's connection limit as one row `{n}` (undefined: the dialect has
   * no server, SQLite), against which the replicas' connection budgets are weighed.
   */
  readonly maxConnections?: string;
}

/** What a change listener tells its owner. */
export interface ListenHandlers {
  onPayload(payload: string): void;
  /** Connected (listening from now on), or lost (`err`) and reconnecting by itself. */
  onState?(listening: boolean, err?: Error): void;
}

export interface ChangeListener {
  close(): Promise<void>;
}

export interface DialectModule {
  readonly name: Dialect;
  /** The URL schemes that select this dialect, lower case with the colon (`postgres:`). */
  readonly schemes: readonly string[];
  /** How a URL of this dialect is written, for messages (`postgres://…`, `sqlite:FILE`). */
  readonly urlForm: string;
  /** A database for `urlForm`'s path in messages about a URL that names none (`/postgres`). */
  readonly exampleDatabase: string;
  /** A database server reached over the network (`scheme://host`), usable for `new-connection`. */
  readonly remote: boolean;
  /** Whether apps can live in a schema of the main database (`new-schema`). */
  readonly schemas: boolean;
  /** Whether app pools on one server share a connection budget. */
  readonly budgeted: boolean;
  /** Whether a URL must name a database for the state store to live in. */
  readonly storeNeedsDatabase: boolean;

  /** Parses a URL with one of `schemes` (relative file paths resolved against `cwd`). */
  parseUrl(url: string, scheme: string, cwd: string): DatabaseUrl;
  /** The URL with relative file paths made absolute against `cwd`, otherwise as given. */
  resolveUrl(url: string, cwd: string): string;
  /**
   * The one string inventory records name this server by (no password): stable across runs and
   * equal for equivalent URLs. `dataDir` is where file-based dialects keep app databases.
   */
  serverIdentity(url: DatabaseUrl, dataDir: string): string;

  /** The client the state store, the runtime and apps use. */
  openClient(url: DatabaseUrl, opts?: OpenOptions): SqlClient;
  /**
   * A client the database itself keeps from writing (`appvisor plan`); undefined when there is
   * nothing to read and opening would create it (a SQLite file that does not exist).
   */
  openReadOnlyClient(url: DatabaseUrl, opts?: ReadOnlyOptions): SqlClient | undefined;

  /** How a driver error reads: socket and file-system codes, then this driver's own. */
  classifyError(err: unknown): DbErrorKind;
  /** A driver error as DB_UNREACHABLE, DB_PERMISSION_DENIED or DB_OPERATION_FAILED. */
  translateError(err: unknown, ctx: Omit<DbErrorContext, 'dialect'>): AppvisorError;

  /**
   * Opens a session for the lock named `namespace` in the database of `url`: SQLite's exclusive
   * file lock, which keeps a store to one server. Absent on server dialects: their replicas and
   * `apply` coordinate through the leader lease in the store (no session lock, which would leak
   * under a pooler in transaction mode and vanish silently with its connection).
   */
  lockSession?(url: DatabaseUrl, namespace: string): Promise<LockSession>;
  /**
   * Listens for `channel`'s notifications on a connection of its own, reconnecting by itself
   * (PostgreSQL LISTEN); absent where the server has none (replicas there poll alone).
   */
  listen?(url: DatabaseUrl, channel: string, handlers: ListenHandlers): ChangeListener;

  readonly store: StoreSql;

  /** Database and schema names: how long they may be, and (server dialects) the driver's quoting. */
  readonly identifiers: {
    readonly rules: IdentifierRules;
    /** Validates `name` and quotes it as an identifier. */
    readonly quoteIdentifier?: (kind: IdentifierKind, name: string) => string;
    readonly quoteLiteral?: (value: string) => string;
  };

  createProvider(url: DatabaseUrl, opts: ProviderOptions): Provider;
}
