/**
 * The state store in the main database (SQLite, PostgreSQL or MySQL/MariaDB): app records,
 * secrets, a short reconcile history per app and the admin tokens' hashes. It creates and migrates its own tables; on
 * PostgreSQL they live in their own schema `appvisor` (see placement.ts).
 */
import type { Logger } from 'pino';
import { dialectFor, dialectNamed, parseDatabaseUrl } from '../dialects/registry.js';
import type { DatabaseUrl } from '../dialects/url.js';
import { AppvisorError } from '../errors.js';
import type { SqlClient } from '../providers/provider.js';
import {
  openRecord,
  openSecretRow,
  refuseForeignKeys,
  resealRows,
  resealSpecs,
  sealPlaintextRows,
  sealPlaintextSpecs,
  sealRecord,
  sealSecret,
} from '../secrets/at-rest.js';
import type { MasterKey } from '../secrets/envelope.js';
import { CHANGES_CHANNEL, encodeChanges } from './changes.js';
import { retryingDeadlocks } from './deadlock.js';
import { STORE_SCHEMA } from './dialect.js';
import { guard, requireDatabase, type StoreTarget } from './errors.js';
import { raiseTerm, readLease, releaseLease, renewLease, selectTerm, takeLease } from './lease.js';
import { migrate } from './migrations.js';
import {
  ensureSecretRow,
  finishRun,
  removeRecord,
  rotateSecretRow,
  selectHistory,
  selectRecord,
  selectRecords,
  selectRecordVersions,
  selectSecretRow,
  selectSecretRows,
  selectSpecs,
  writeIntent,
  writeRecord,
  writeResealed,
} from './queries.js';
import {
  pruneReplicaRows,
  removeReplica,
  selectMaxConnections,
  selectReplicas,
  touchReplicaRow,
  upsertReplica,
} from './replicas.js';
import { ensureTokenRow, removeToken, revokeTokenRow, selectTokenByHash, selectTokens } from './tokens.js';
import {
  type AdminTokenRecord,
  type AppRecord,
  type Fence,
  type HistoryEntry,
  type LeaseView,
  MAIN_APP,
  type OperatorIntent,
  type ReplicaHeartbeat,
  type ReplicaList,
  type SecretRotation,
  type SecretSet,
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
  /**
   * The replica this store is opened by: named in its change announcements, so that it can tell
   * its own from the others'. @default '' (not a replica: `apply`, tests)
   */
  readonly origin?: string;
  /**
   * The master key every secret is sealed with (SPEC §8.5; `loadMasterKey`). On open, secrets a
   * store from before sealing holds in plaintext are sealed in place, and a store sealed with
   * another key is refused (MASTER_KEY_INVALID). Absent: secrets can be neither read nor written.
   */
  readonly masterKey?: MasterKey;
}

/** Resolved options. */
const DEFAULTS = { historyLimit: 50, maxConnections: 4 } as const;

class SqlStateStore implements StateStore {
  readonly storeId: string;
  readonly target: string;
  readonly #client: SqlClient;
  readonly #where: StoreTarget;
  readonly #historyLimit: number;
  readonly #origin: string;
  readonly #log: Logger | undefined;
  #masterKey: MasterKey | undefined;
  /** Names changed since the last announcement: one NOTIFY per turn of the event loop, not per write. */
  #unannounced = new Set<string>();
  #announcing: Promise<void> | undefined;
  #closing: Promise<void> | undefined;

  constructor(
    client: SqlClient,
    where: StoreTarget,
    storeId: string,
    opts: { historyLimit: number; origin: string; log: Logger | undefined; masterKey: MasterKey | undefined },
  ) {
    this.#masterKey = opts.masterKey;
    this.#client = client;
    this.#where = where;
    this.target = where.target;
    this.storeId = storeId;
    this.#historyLimit = opts.historyLimit;
    this.#origin = opts.origin;
    this.#log = opts.log;
  }

  get masterKeyId(): string | undefined {
    return this.#masterKey?.id;
  }

  /** Announces that `name`'s record changed, with whatever else changed in this turn. */
  #changed(name: string): void {
    if (!dialectNamed(this.#client.dialect).store.notify) return;
    this.#unannounced.add(name);
    this.#announcing ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
      const names = [...this.#unannounced];
      this.#unannounced = new Set();
      this.#announcing = undefined;
      return this.announce(names);
    });
  }

  async announce(names: readonly string[]): Promise<void> {
    const notify = dialectNamed(this.#client.dialect).store.notify;
    if (!notify || names.length === 0 || this.#closing) return;
    try {
      for (const payload of encodeChanges(this.#origin, names))
        await notify(this.#client, CHANGES_CHANNEL, payload);
    } catch (err) {
      // Only a hint: the other replicas' poll finds the change anyway.
      this.#log?.debug({ err, target: this.target }, 'could not announce a change; the poll will find it');
    }
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

  async listRecords(): Promise<AppRecord[]> {
    return (await this.#run('list records', selectRecords)).map((r) => openRecord(r, this.#masterKey));
  }
  async getRecord(name: string): Promise<AppRecord | undefined> {
    const record = await this.#run(`read record ${name}`, (c) => selectRecord(c, name));
    return record && openRecord(record, this.#masterKey);
  }
  beginTerm(): Promise<Fence> {
    return this.#run('begin a reconcile lock term', raiseTerm);
  }
  currentTerm(): Promise<number> {
    return this.#run('read the reconcile lock term', selectTerm);
  }
  takeLease(holder: string, ttlMs: number, opts?: { readonly force?: boolean }): Promise<Fence | undefined> {
    return this.#run('take the leader lease', (c) => takeLease(c, holder, ttlMs, opts));
  }
  renewLease(holder: string, fence: Fence, ttlMs: number): Promise<boolean> {
    return this.#run('renew the leader lease', (c) => renewLease(c, holder, fence, ttlMs));
  }
  releaseLease(holder: string, fence: Fence): Promise<void> {
    return this.#run('release the leader lease', (c) => releaseLease(c, holder, fence));
  }
  readLease(): Promise<LeaseView | undefined> {
    return this.#run('read the leader lease', readLease);
  }
  recordVersions(): Promise<Map<string, number>> {
    return this.#run('list record versions', selectRecordVersions);
  }
  async putRecord(record: AppRecord, fence: Fence): Promise<AppRecord> {
    const written = await this.#run(`write record ${record.name}`, (c) =>
      writeRecord(c, this.target, sealRecord(record, this.#masterKey), fence),
    );
    this.#changed(record.name);
    return { ...record, version: written.version! };
  }
  async deleteRecord(name: string, version: number, fence: Fence): Promise<void> {
    await this.#run(`delete record ${name}`, (c) => removeRecord(c, this.target, name, version, fence));
    this.#changed(name);
  }
  async setIntent(
    name: string,
    intent: OperatorIntent,
    accept?: (record: AppRecord) => void,
  ): Promise<AppRecord | undefined> {
    const written = await this.#run(`record the operator's ${intent.action} of ${name}`, async (c) => {
      // A compare-and-set on the version just read: a reconcile writing the record in between
      // makes it read and try again, never overwrite (nor be overwritten).
      for (let attempt = 1; ; attempt++) {
        const read = await selectRecord(c, name);
        if (!read) return undefined;
        const record = openRecord(read, this.#masterKey);
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
    if (written) this.#changed(name);
    return written;
  }
  async getSecret(name: string): Promise<string | undefined> {
    return (await this.getSecretSet(name))?.current.secret;
  }
  async getSecretSet(name: string): Promise<SecretSet | undefined> {
    const row = await this.#run(`read secret ${name}`, (c) => selectSecretRow(c, name));
    return row && openSecretRow(row, this.#masterKey, Date.now());
  }
  ensureSecret(name: string, secret: string, fence: Fence): Promise<string> {
    return this.#ensureSecret(name, secret, fence);
  }
  ensureMainSecret(secret: string): Promise<string> {
    return this.#ensureSecret(MAIN_APP, secret, undefined);
  }
  async #ensureSecret(name: string, secret: string, fence: Fence | undefined): Promise<string> {
    const sealed = { name, ...sealSecret(name, secret, this.#masterKey) };
    const row = await this.#run(`store secret ${name}`, (c) =>
      ensureSecretRow(c, this.target, sealed, fence),
    );
    // The stored one wins; sealed with another key it is refused, never replaced.
    return openSecretRow(row, this.#masterKey, Date.now()).current.secret;
  }
  async rotateSecret(name: string, rotation: SecretRotation, fence: Fence): Promise<SecretSet> {
    const before = await this.getSecretSet(name);
    if (!before) throw new AppvisorError('APP_NOT_FOUND', { app: name });
    const sealed = sealSecret(name, rotation.secret, this.#masterKey);
    if (sealed.kid === before.current.kid) {
      throw new AppvisorError('CONFIG_INVALID', { detail: `the new secret of ${name} is the current one` });
    }
    const until = rotation.previousUntil;
    await this.#run(`rotate secret ${name}`, (c) =>
      rotateSecretRow(
        c,
        this.target,
        {
          name,
          ...sealed,
          until,
          allRecords: name === MAIN_APP,
          entry: rotation.entry,
          keep: this.#historyLimit,
        },
        fence,
      ),
    );
    // The local poll is told through the records' versions; the other replicas by it or NOTIFY.
    if (name !== MAIN_APP) this.#changed(name);
    else for (const record of await this.recordVersions()) this.#changed(record[0]);
    const after: SecretSet = {
      current: { kid: sealed.kid, secret: rotation.secret },
      ...(Date.parse(until) > Date.now() ? { previous: { ...before.current, until } } : {}),
    };
    return after;
  }
  async rekey(next: MasterKey, fence: Fence): Promise<number> {
    const from = this.#masterKey;
    if (!from)
      throw new AppvisorError('MASTER_KEY_INVALID', {
        source: 'none',
        detail: 'rekey needs the current master key',
      });
    const count = await this.#run('re-seal the secrets under a new master key', async (c) => {
      const rows = await selectSecretRows(c);
      const specs = resealSpecs(await selectSpecs(c), from, next);
      await writeResealed(c, this.target, resealRows(rows, from, next, Date.now()), fence, specs);
      return rows.length;
    });
    this.#masterKey = next;
    return count;
  }
  async finishRun(
    record: AppRecord | undefined,
    entry: HistoryEntry,
    fence: Fence,
  ): Promise<AppRecord | undefined> {
    const sealed = record && sealRecord(record, this.#masterKey);
    const written = await this.#run(`record the reconcile of ${entry.app}`, (c) =>
      finishRun(c, this.target, { record: sealed, entry, keep: this.#historyLimit }, fence),
    );
    if (record) this.#changed(record.name);
    return written && record && { ...record, version: written.version! };
  }
  listHistory(name: string, limit = this.#historyLimit): Promise<HistoryEntry[]> {
    return this.#run(`read history of ${name}`, (c) => selectHistory(c, name, limit));
  }
  ensureAdminToken(token: AdminTokenRecord): Promise<AdminTokenRecord> {
    return this.#run(`store admin token ${token.name}`, (c) => ensureTokenRow(c, token));
  }
  listAdminTokens(): Promise<AdminTokenRecord[]> {
    return this.#run('list admin tokens', selectTokens);
  }
  findAdminToken(hash: string): Promise<AdminTokenRecord | undefined> {
    return this.#run('look up an admin token', (c) => selectTokenByHash(c, hash));
  }
  deleteAdminToken(name: string): Promise<boolean> {
    return this.#run(`delete admin token ${name}`, (c) => removeToken(c, name));
  }
  revokeAdminToken(name: string): Promise<AdminTokenRecord | undefined> {
    return this.#run(`revoke admin token ${name}`, (c) => revokeTokenRow(c, name));
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

/**
 * Refuses a store sealed with another key, then seals the plaintext secrets of a store from
 * before sealing, in one transaction. Each row is a compare-and-set on the plaintext read, so of
 * two processes starting at once the second changes nothing; run again, it finds nothing to do.
 * Resolves with how many rows it sealed.
 */
async function sealStoredSecrets(client: SqlClient, target: string, key: MasterKey): Promise<number> {
  const rows = await selectSecretRows(client);
  refuseForeignKeys(rows, key);
  const plain = sealPlaintextRows(rows, key);
  // Records whose connection URL holds a password in plaintext (written before sealing).
  const specs = sealPlaintextSpecs(await selectSpecs(client), key);
  await writeResealed(client, target, plain, undefined, specs);
  return plain.length + specs.length;
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
    if (opts.masterKey) {
      const { masterKey } = opts;
      const sealed = await guard(where, 'seal the stored secrets', () =>
        oneAtATime(parsed.filename, () => sealStoredSecrets(client, where.target, masterKey)),
      );
      if (sealed > 0) {
        opts.log?.info(
          { target: where.target, secrets: sealed, key: masterKey.id },
          'plaintext secrets in the state store sealed under the master key',
        );
      }
    }
    return new SqlStateStore(client, where, storeId, {
      historyLimit,
      origin: opts.origin ?? '',
      log: opts.log,
      masterKey: opts.masterKey,
    });
  } catch (err) {
    await client.close().catch(() => undefined);
    throw err;
  }
}
