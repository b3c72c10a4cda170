/**
 * The state store in the main database (SQLite, PostgreSQL or MySQL/MariaDB): app records,
 * secrets and a short reconcile history per app. It creates and migrates its own tables; on
 * PostgreSQL they live in their own schema `appvisor` (see placement.ts).
 */
import type { Logger } from 'pino';
import { dialectFor, parseDatabaseUrl } from '../dialects/registry.js';
import type { DatabaseUrl } from '../dialects/url.js';
import { AppvisorError } from '../errors.js';
import type { SqlClient } from '../providers/provider.js';
import { retryingDeadlocks } from './deadlock.js';
import { STORE_SCHEMA } from './dialect.js';
import { guard, requireDatabase, type StoreTarget } from './errors.js';
import { migrate } from './migrations.js';
import {
  ensureSecretRow,
  finishRun,
  raiseTerm,
  removeRecord,
  selectHistory,
  selectRecord,
  selectRecords,
  selectSecret,
  selectTerm,
  writeIntent,
  writeRecord,
} from './queries.js';
import {
  pruneReplicaRows,
  removeReplica,
  selectMaxConnections,
  selectReplicas,
  touchReplicaRow,
  upsertReplica,
} from './replicas.js';
import {
  type AppRecord,
  type Fence,
  type HistoryEntry,
  MAIN_APP,
  type OperatorIntent,
  type ReplicaHeartbeat,
  type ReplicaList,
  type StateStore,
} from './types.js';

/** How often an operator's intent is tried again when a reconcile wrote the record in between. */
const INTENT_ATTEMPTS = 5;

export interface StateStoreOptions {
  /** Base for relative `sqlite:` paths. @default process.cwd() */
  readonly cwd?: string;
  /** History entries kept per app; older ones are dropped on append. @default 50 */
  readonly historyLimit?: number;
  /** Connections in the pool (PostgreSQL, MySQL). @default 4 */
  readonly maxConnections?: number;
  /**
   * Whether a new store may be created beside tables appvisor did not create (in the main
   * database; PostgreSQL: in the schema `appvisor`). Settings `mainDatabase.adopt`. @default false
   */
  readonly adopt?: boolean;
  readonly log?: Logger;
}

/** Resolved options. */
const DEFAULTS = { historyLimit: 50, maxConnections: 4 } as const;

class SqlStateStore implements StateStore {
  readonly storeId: string;
  readonly target: string;
  readonly #client: SqlClient;
  readonly #where: StoreTarget;
  readonly #historyLimit: number;
  #closing: Promise<void> | undefined;

  constructor(client: SqlClient, where: StoreTarget, storeId: string, historyLimit: number) {
    this.#client = client;
    this.#where = where;
    this.target = where.target;
    this.storeId = storeId;
    this.#historyLimit = historyLimit;
  }

  #run<T>(operation: string, fn: (client: SqlClient) => Promise<T>): Promise<T> {
    if (this.#closing) {
      return Promise.reject(
        new AppvisorError('STATE_STORE_FAILED', {
          target: this.target,
          detail: `${operation}: the store is closed`,
        }),
      );
    }
    return guard(this.#where, operation, () => retryingDeadlocks(() => fn(this.#client)));
  }

  listRecords(): Promise<AppRecord[]> {
    return this.#run('list records', selectRecords);
  }
  getRecord(name: string): Promise<AppRecord | undefined> {
    return this.#run(`read record ${name}`, (c) => selectRecord(c, name));
  }
  beginTerm(): Promise<Fence> {
    return this.#run('begin a reconcile lock term', raiseTerm);
  }
  currentTerm(): Promise<number> {
    return this.#run('read the reconcile lock term', selectTerm);
  }
  putRecord(record: AppRecord, fence: Fence): Promise<AppRecord> {
    return this.#run(`write record ${record.name}`, (c) => writeRecord(c, this.target, record, fence));
  }
  deleteRecord(name: string, version: number, fence: Fence): Promise<void> {
    return this.#run(`delete record ${name}`, (c) => removeRecord(c, this.target, name, version, fence));
  }
  setIntent(
    name: string,
    intent: OperatorIntent,
    accept?: (record: AppRecord) => void,
  ): Promise<AppRecord | undefined> {
    return this.#run(`record the operator's ${intent.action} of ${name}`, async (c) => {
      // A compare-and-set on the version just read: a reconcile writing the record in between
      // makes it read and try again, never overwrite (nor be overwritten).
      for (let attempt = 1; ; attempt++) {
        const record = await selectRecord(c, name);
        if (!record) return undefined;
        accept?.(record);
        const written = await writeIntent(c, record, intent);
        if (written) return written;
        if (attempt === INTENT_ATTEMPTS) {
          throw new AppvisorError('STATE_CONFLICT', {
            app: name,
            expected: record.version ?? 0,
            actual: 'changing',
          });
        }
      }
    });
  }
  getSecret(name: string): Promise<string | undefined> {
    return this.#run(`read secret ${name}`, (c) => selectSecret(c, name));
  }
  ensureSecret(name: string, secret: string, fence: Fence): Promise<string> {
    return this.#run(`store secret ${name}`, (c) => ensureSecretRow(c, this.target, name, secret, fence));
  }
  ensureMainSecret(secret: string): Promise<string> {
    return this.#run('store secret main', (c) =>
      ensureSecretRow(c, this.target, MAIN_APP, secret, undefined),
    );
  }
  finishRun(
    record: AppRecord | undefined,
    entry: HistoryEntry,
    fence: Fence,
  ): Promise<AppRecord | undefined> {
    return this.#run(`record the reconcile of ${entry.app}`, (c) =>
      finishRun(c, this.target, { record, entry, keep: this.#historyLimit }, fence),
    );
  }
  listHistory(name: string, limit = this.#historyLimit): Promise<HistoryEntry[]> {
    return this.#run(`read history of ${name}`, (c) => selectHistory(c, name, limit));
  }
  writeReplica(beat: ReplicaHeartbeat): Promise<void> {
    return this.#run(`write the heartbeat of replica ${beat.id}`, (c) => upsertReplica(c, beat));
  }
  touchReplica(id: string): Promise<boolean> {
    return this.#run(`touch the heartbeat of replica ${id}`, (c) => touchReplicaRow(c, id));
  }
  listReplicas(): Promise<ReplicaList> {
    return this.#run('list replicas', selectReplicas);
  }
  deleteReplica(id: string): Promise<void> {
    return this.#run(`delete the heartbeat of replica ${id}`, (c) => removeReplica(c, id));
  }
  pruneReplicas(olderThanMs: number): Promise<number> {
    return this.#run('prune dead replicas', (c) => pruneReplicaRows(c, olderThanMs));
  }
  serverMaxConnections(): Promise<number | undefined> {
    return this.#run('read max_connections', selectMaxConnections);
  }

  close(): Promise<void> {
    this.#closing ??= this.#client.close();
    return this.#closing;
  }
}

const sqliteMigrations = new Map<string, Promise<unknown>>();

/**
 * Runs SQLite migrations of one file one at a time within this process. A migration holds a
 * write transaction across awaits; a second handle on the same file would busy-wait for it
 * synchronously, blocking the very event loop the first one needs to finish. Other processes
 * simply wait their turn (busy_timeout).
 */
function oneAtATime<T>(file: string | undefined, fn: () => Promise<T>): Promise<T> {
  if (file === undefined) return fn();
  const run = (sqliteMigrations.get(file) ?? Promise.resolve()).then(fn, fn);
  const tail = run.then(
    () => undefined,
    () => undefined,
  );
  sqliteMigrations.set(file, tail);
  void tail.then(() => {
    if (sqliteMigrations.get(file) === tail) sqliteMigrations.delete(file);
  });
  return run;
}

/**
 * Opens the state store at `url` (`sqlite:FILE`, `postgres://…/db`, `mysql://…/db`), creating
 * its tables on first use and migrating them to the current layout. The database itself must
 * exist (SQLite: the file and its folder are created).
 */
export async function openStateStore(
  url: string | DatabaseUrl,
  opts: StateStoreOptions = {},
): Promise<StateStore> {
  const parsed = typeof url === 'string' ? parseDatabaseUrl(url, opts.cwd) : url;
  const where: StoreTarget = { dialect: parsed.dialect, target: parsed.redacted };
  requireDatabase(parsed);
  const historyLimit = opts.historyLimit ?? DEFAULTS.historyLimit;
  if (!Number.isInteger(historyLimit) || historyLimit < 1) {
    throw new AppvisorError('CONFIG_INVALID', {
      detail: `historyLimit must be a positive integer, got ${historyLimit}`,
    });
  }
  const client = await guard(where, 'open', async () =>
    dialectFor(parsed).openClient(parsed, {
      // PostgreSQL: search_path = appvisor on every connection (ignored elsewhere). The store's
      // SQL stays written once with unqualified names for every dialect, and the read-only
      // reader finds a moved and a not-yet-moved store alike by its own search_path; qualified
      // names would thread a schema through every query for one dialect's sake.
      schema: STORE_SCHEMA,
      max: opts.maxConnections ?? DEFAULTS.maxConnections,
      onError: (err) => opts.log?.warn({ err, target: where.target }, 'state store connection lost'),
    }),
  );
  try {
    const { from, to, storeId, movedFrom } = await guard(where, 'create or migrate tables', () =>
      oneAtATime(parsed.filename, () => migrate(client, where.target, { adopt: opts.adopt ?? false })),
    );
    if (movedFrom) {
      opts.log?.info(
        { target: where.target, from: movedFrom, to: STORE_SCHEMA },
        'state store tables moved to their own schema',
      );
    }
    if (from !== to) opts.log?.info({ target: where.target, from, to }, 'state store tables migrated');
    return new SqlStateStore(client, where, storeId, historyLimit);
  } catch (err) {
    await client.close().catch(() => undefined);
    throw err;
  }
}
