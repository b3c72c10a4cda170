/**
 * The provider contract: one narrow, idempotent implementation per SQL dialect.
 * Every method takes `{signal}` so the executor can bound it with a timeout.
 */

export type Dialect = 'sqlite' | 'postgres' | 'mysql';

export interface OpOptions {
  readonly signal?: AbortSignal;
}

/** Where a provider reports problems it handles itself, such as a dropped idle connection (pino fits). */
export interface ProviderLog {
  warn(obj: object, msg?: string): void;
}

/** A minimal SQL client used by the state store and by apps. `?` placeholders on every dialect. */
export interface SqlClient {
  readonly dialect: Dialect;
  query<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /**
   * Runs one writing statement and resolves with the number of rows it changed: what a
   * compare-and-set (`UPDATE … WHERE version = ?`) needs to know whether it won.
   */
  execute(sql: string, params?: readonly unknown[]): Promise<number>;
  /** Runs several statements without parameters (DDL, migrations). */
  exec(sql: string): Promise<void>;
  /** Runs `fn` in one transaction on one connection. */
  transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** What a provider sees of a database or schema on the server. */
export interface Observation {
  readonly exists: boolean;
  /** The ownership marker appvisor left on it when it created it, if any. */
  readonly owner?: string;
}

export type OperationResult = 'unchanged' | 'created' | 'deleted';

/** Connection settings handed to an app (for an ORM), secrets included: never log them. */
export interface ConnectionSettings {
  readonly dialect: Dialect;
  /** URL for postgres/mysql; absent for sqlite. */
  readonly url?: string;
  /** File path for sqlite. */
  readonly filename?: string;
  readonly database: string;
  /** PostgreSQL schema for new-schema apps (the pool's search_path is set to it). */
  readonly schema?: string;
}

/** An app's database as handed to the app: a ready client and the settings behind it. */
export interface AppDatabase {
  readonly dialect: Dialect;
  readonly client: SqlClient;
  readonly connection: ConnectionSettings;
}

export interface Provider {
  readonly dialect: Dialect;
  /** A redacted description of the server for messages (no password). */
  readonly server: string;

  observeDatabase(name: string, opts?: OpOptions): Promise<Observation>;
  /** Creates the database and marks it as created by `owner`. 'unchanged' if it exists already. */
  createDatabase(name: string, owner: string, opts?: OpOptions): Promise<OperationResult>;
  dropDatabase(name: string, opts?: OpOptions): Promise<OperationResult>;

  /** Schemas exist only on PostgreSQL; other providers throw UNSUPPORTED_MODE. */
  observeSchema(schema: string, opts?: OpOptions): Promise<Observation>;
  createSchema(schema: string, owner: string, opts?: OpOptions): Promise<OperationResult>;
  dropSchema(schema: string, opts?: OpOptions): Promise<OperationResult>;

  /** Opens a pool (or handle) on a database, optionally scoped to a schema. */
  openDatabase(
    name: string,
    opts?: {
      schema?: string;
      maxConnections?: number;
      /** Who holds the connections (PostgreSQL `application_name`, seen in pg_stat_activity). */
      label?: string;
    },
  ): Promise<AppDatabase>;

  /**
   * Runs `work` on one connection to database `name` (scoped to `schema`) and gives it back or
   * closes it afterwards: one of the provider's own connections where it can lend one
   * (PostgreSQL: a schema in the database it is connected to), else a new one. For the short
   * work of a reconcile (migrations, a claim), not for a running app.
   */
  withConnection<T>(
    name: string,
    opts: { schema?: string },
    work: (client: SqlClient) => Promise<T>,
  ): Promise<T>;

  /**
   * Objects an interrupted create left half-made on this server (PostgreSQL `_avtmp_*` databases,
   * SQLite `.<name>.<hex>.tmp` files) that carry an ownership marker, with that marker.
   * Unmarked ones are never listed: appvisor touches only what carries its own marker.
   */
  listLeftovers(opts?: OpOptions): Promise<readonly Leftover[]>;
  /** Removes leftover `name` if it still carries `owner` (checked again first); else 'unchanged'. */
  sweepLeftover(name: string, owner: string, opts?: OpOptions): Promise<OperationResult>;

  /**
   * Everything on this server an app's target could name, with its ownership marker: what
   * `observeDatabase`/`observeSchema` would answer for any name, in one read (`state export`
   * keeps it so a plan made offline sees what an online plan would). Only reads.
   */
  catalog(opts?: OpOptions): Promise<Catalog>;

  /** Closes the provider's own admin connections. */
  close(): Promise<void>;
}

/** One database or schema as `catalog` lists it. */
export interface CatalogEntry {
  readonly name: string;
  /** Its ownership marker, when it carries one. */
  readonly owner?: string;
}

/** What a server holds (see Provider.catalog). */
export interface Catalog {
  readonly databases: readonly CatalogEntry[];
  /** The schemas of the provider's own database; absent where the dialect has none. */
  readonly schemas?: readonly CatalogEntry[];
}

/** A half-made object on a server and the ownership marker it carries. */
export interface Leftover {
  readonly name: string;
  readonly owner: string;
}
