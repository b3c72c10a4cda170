import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { AppvisorError } from '../../errors.js';
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
  SqlClient,
} from '../../providers/provider.js';
import { validateLeftover, validateOwner } from '../identifiers.js';
import { SqliteClient } from './client.js';
import { translateError } from './errors.js';
import { isValidName, validateIdentifier } from './identifiers.js';
import { sqliteServer } from './url.js';

export interface SqliteProviderOptions {
  /** The data folder; app databases are files in its `apps/` subfolder. */
  readonly dataDir: string;
}

/** The table inside each app database that holds appvisor's ownership marker. */
export const OWNER_TABLE = '_appvisor_owner';
/** Longer than a file-time tick on the filesystems appvisor runs on (Linux: a jiffy, ≤ 10 ms). */
const MTIME_TICK_NS = 50_000_000n;

/** The hidden name a database file is built under before it is linked into place. */
const TEMP_FILE = /^\.[A-Za-z_][A-Za-z0-9_-]*\.[0-9a-f]{12}\.tmp$/;

/** A database's own file, `<name>.sqlite` (hidden temporary files are not databases). */
const DATABASE_FILE = /^([^.].*)\.sqlite$/;

/** Files SQLite keeps next to a database; a stale one must never meet a new database of the same name. */
const SIDE_FILES = ['-wal', '-shm', '-journal'] as const;

/**
 * SQLite: the "server" is the data folder and database `x` is the file `<dataDir>/apps/x.sqlite`.
 * The ownership marker is a one-row table inside the file, written before the file appears
 * under its real name.
 */
export class SqliteProvider implements Provider {
  readonly dialect = 'sqlite' as const;
  readonly server: string;
  readonly #appsDir: string;
  /**
   * The temporary files the data folder held at its last listing, and the folder's mtime then.
   * Every app's observation asks for leftovers, and listing a folder of 10,000 databases takes
   * 5–8 ms where a stat takes microseconds; any entry added, removed or renamed changes the
   * folder's mtime, so an unchanged one means the same temporary files.
   */
  #tempListing: { readonly mtimeNs: bigint; readonly names: readonly string[] } | undefined;
  /** App handles by database name, closed when their database is dropped. */
  readonly #open = new Map<string, Set<SqliteClient>>();

  constructor(options: SqliteProviderOptions) {
    const dataDir = path.resolve(options.dataDir);
    this.server = sqliteServer(dataDir);
    this.#appsDir = path.join(dataDir, 'apps');
  }

  /** The file that holds database `name` (validated). */
  fileOf(name: string): string {
    validateIdentifier('database', name);
    return path.join(this.#appsDir, `${name}.sqlite`);
  }

  async observeDatabase(name: string, opts: OpOptions = {}): Promise<Observation> {
    const file = this.fileOf(name);
    opts.signal?.throwIfAborted();
    if (!fs.existsSync(file)) return { exists: false };
    let db: Database.Database | undefined;
    try {
      // Read-only and fileMustExist: observing never creates or changes the database.
      db = new Database(file, { readonly: true, fileMustExist: true });
      db.pragma('busy_timeout = 5000');
      const table = db
        .prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`)
        .get(OWNER_TABLE);
      if (!table) return { exists: true };
      const row = db.prepare(`SELECT owner FROM ${OWNER_TABLE} LIMIT 1`).get() as
        | { owner?: unknown }
        | undefined;
      return typeof row?.owner === 'string' && row.owner !== ''
        ? { exists: true, owner: row.owner }
        : { exists: true };
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      // Someone else's file that is not a SQLite database still exists, without our marker.
      if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') return { exists: true };
      if (code === 'ENOENT' || (code === 'SQLITE_CANTOPEN' && !fs.existsSync(file))) return { exists: false };
      throw this.#translate(err, `observe database file ${file}`);
    } finally {
      db?.close();
    }
  }

  async createDatabase(name: string, owner: string, opts: OpOptions = {}): Promise<OperationResult> {
    const file = this.fileOf(name);
    validateOwner(owner);
    opts.signal?.throwIfAborted();
    if (fs.existsSync(file)) return 'unchanged';
    // Built under a hidden temporary name and linked into place complete, so a crash never
    // leaves a file under the real name without its marker.
    const temp = path.join(this.#appsDir, `.${name}.${crypto.randomBytes(6).toString('hex')}.tmp`);
    try {
      fs.mkdirSync(this.#appsDir, { recursive: true });
      const db = new Database(temp);
      try {
        db.pragma('journal_mode = DELETE');
        db.transaction(() => {
          db.exec(`CREATE TABLE ${OWNER_TABLE} (owner TEXT NOT NULL, created_at TEXT NOT NULL)`);
          db.prepare(`INSERT INTO ${OWNER_TABLE} (owner, created_at) VALUES (?, ?)`).run(
            owner,
            new Date().toISOString(),
          );
        })();
      } finally {
        db.close();
      }
      if (fs.existsSync(file)) return 'unchanged';
      removeSideFiles(file);
      return linkIntoPlace(temp, file) ? 'created' : 'unchanged';
    } catch (err) {
      throw this.#translate(err, `create database file ${file}`);
    } finally {
      for (const leftover of [temp, ...SIDE_FILES.map((suffix) => `${temp}${suffix}`)]) {
        try {
          fs.rmSync(leftover, { force: true });
        } catch {
          // Best effort: a leftover temporary file is hidden and never taken for a database.
        }
      }
    }
  }

  async dropDatabase(name: string, opts: OpOptions = {}): Promise<OperationResult> {
    const file = this.fileOf(name);
    opts.signal?.throwIfAborted();
    for (const client of this.#open.get(name) ?? []) await client.close();
    this.#open.delete(name);
    try {
      const existed = fs.existsSync(file);
      // Side files first: a stale -wal next to a later database of the same name would corrupt it.
      removeSideFiles(file);
      fs.rmSync(file, { force: true });
      return existed ? 'deleted' : 'unchanged';
    } catch (err) {
      throw this.#translate(err, `drop database file ${file}`);
    }
  }

  /** Temporary files of creates that were killed before their link into place, with their marker. */
  async listLeftovers(opts: OpOptions = {}): Promise<readonly Leftover[]> {
    opts.signal?.throwIfAborted();
    let names: readonly string[];
    try {
      names = this.#tempFiles();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw this.#translate(err, `list ${this.#appsDir}`);
    }
    const found: Leftover[] = [];
    for (const name of names) {
      const owner = readOwner(path.join(this.#appsDir, name));
      if (owner !== undefined) found.push({ name, owner });
    }
    return found;
  }

  /** The temporary files' names in the data folder, sorted; listed again only when it changed. */
  #tempFiles(): readonly string[] {
    const { mtimeNs } = fs.statSync(this.#appsDir, { bigint: true });
    if (this.#tempListing?.mtimeNs === mtimeNs) return this.#tempListing.names;
    const names = fs
      .readdirSync(this.#appsDir)
      .filter((n) => TEMP_FILE.test(n))
      .sort();
    // File times tick coarsely (a few ms): a change in the same tick as the one just seen would
    // leave the mtime as it is, so a listing is kept only once the folder had been still longer.
    const stillNs = BigInt(Date.now()) * 1_000_000n - mtimeNs;
    this.#tempListing = stillNs > MTIME_TICK_NS ? { mtimeNs, names } : undefined;
    return names;
  }

  /** Every database file in the data folder, observed as observeDatabase observes one. */
  async catalog(opts: OpOptions = {}): Promise<Catalog> {
    opts.signal?.throwIfAborted();
    let files: string[];
    try {
      files = fs.readdirSync(this.#appsDir).sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { databases: [] };
      throw this.#translate(err, `list ${this.#appsDir}`);
    }
    const databases: CatalogEntry[] = [];
    for (const file of files) {
      const name = DATABASE_FILE.exec(file)?.[1];
      // A file no database of an app could be (its name is not an identifier) is no app's.
      if (name === undefined || !isValidName(name)) continue;
      const seen = await this.observeDatabase(name, opts);
      if (seen.exists) databases.push(seen.owner === undefined ? { name } : { name, owner: seen.owner });
    }
    return { databases };
  }

  async sweepLeftover(name: string, owner: string, opts: OpOptions = {}): Promise<OperationResult> {
    opts.signal?.throwIfAborted();
    validateLeftover('file', name, TEMP_FILE, owner);
    const file = path.join(this.#appsDir, name);
    if (readOwner(file) !== owner) return 'unchanged';
    try {
      removeSideFiles(file);
      fs.rmSync(file, { force: true });
      return 'deleted';
    } catch (err) {
      throw this.#translate(err, `sweep ${file}`);
    }
  }

  async observeSchema(): Promise<Observation> {
    throw unsupportedSchemas();
  }

  async createSchema(): Promise<OperationResult> {
    throw unsupportedSchemas();
  }

  async dropSchema(): Promise<OperationResult> {
    throw unsupportedSchemas();
  }

  async openDatabase(
    name: string,
    opts: { schema?: string; maxConnections?: number } = {},
  ): Promise<AppDatabase> {
    const file = this.fileOf(name);
    if (opts.schema !== undefined) throw unsupportedSchemas();
    if (!fs.existsSync(file)) {
      throw new AppvisorError('DB_OPERATION_FAILED', {
        operation: `open database "${name}"`,
        dialect: 'sqlite',
        server: this.server,
        detail: `${file} does not exist`,
      });
    }
    let client: SqliteClient;
    try {
      client = new SqliteClient(file, { fileMustExist: true });
    } catch (err) {
      throw this.#translate(err, `open database file ${file}`);
    }
    const handles = this.#open.get(name) ?? new Set();
    for (const h of handles) if (!h.db.open) handles.delete(h);
    handles.add(client);
    this.#open.set(name, handles);
    return { dialect: 'sqlite', client, connection: { dialect: 'sqlite', filename: file, database: name } };
  }

  /** Opening a file is cheap: a handle of its own. */
  withConnection<T>(
    name: string,
    opts: { schema?: string },
    work: (client: SqlClient) => Promise<T>,
  ): Promise<T> {
    return onNewConnection(this, name, opts, work);
  }

  /** Nothing to close: the provider holds no connection of its own (app handles belong to apps). */
  async close(): Promise<void> {}

  #translate(err: unknown, operation: string): AppvisorError {
    return translateError(err, { server: this.server, operation });
  }
}

/** Hard-links `temp` to `file` (fails if `file` exists, unlike rename); false if it already exists. */
function linkIntoPlace(temp: string, file: string): boolean {
  try {
    fs.linkSync(temp, file);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    // File systems without hard links: rename, after a last check.
    if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOSYS') {
      if (fs.existsSync(file)) return false;
      fs.renameSync(temp, file);
      return true;
    }
    throw err;
  }
}

/** The marker inside a database file, or undefined (no file, not a database, no marker). */
function readOwner(file: string): string | undefined {
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    const row = db.prepare(`SELECT owner FROM ${OWNER_TABLE} LIMIT 1`).get() as
      | { owner?: unknown }
      | undefined;
    return typeof row?.owner === 'string' && row.owner !== '' ? row.owner : undefined;
  } catch {
    return undefined;
  } finally {
    db?.close();
  }
}

function removeSideFiles(file: string): void {
  for (const suffix of SIDE_FILES) fs.rmSync(`${file}${suffix}`, { force: true });
}

function unsupportedSchemas(): AppvisorError {
  return new AppvisorError('UNSUPPORTED_MODE', { detail: 'new-schema needs a PostgreSQL main database' });
}
