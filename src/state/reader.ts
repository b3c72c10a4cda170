/**
 * A read-only view of the state store, for `appvisor plan`, which must change nothing anywhere:
 * it never creates the SQLite file, its folder or any table, and issues only SELECTs — on
 * connections that the database itself keeps read-only, as a second line of defence.
 */
import type { Logger } from 'pino';
import { dialectNamed, parseDatabaseUrl } from '../dialects/registry.js';
import type { DatabaseUrl } from '../dialects/url.js';
import type { SqlClient } from '../providers/provider.js';
import { openRecord } from '../secrets/at-rest.js';
import type { MasterKey } from '../secrets/envelope.js';
import { STORE_SCHEMA, TABLES, tableExists } from './dialect.js';
import { guard, requireDatabase, type StoreTarget } from './errors.js';
import { checkVersion, readMeta } from './migrations.js';
import { LEGACY_STORE_SCHEMA } from './placement.js';
import { selectHistory, selectRecord, selectRecords, selectSecret, selectSecretNames } from './queries.js';
import type { AppRecord, HistoryEntry, StateReader } from './types.js';

export interface StateReaderOptions {
  /** Base for relative `sqlite:` paths. @default process.cwd() */
  readonly cwd?: string;
  /** Entries `listHistory` returns when no limit is given. @default 50 */
  readonly historyLimit?: number;
  readonly log?: Logger;
  /**
   * The master key, when one is at hand: records' sealed connection URLs are opened with it
   * (secrets never are). Without it they stay sealed. @default none
   */
  readonly masterKey?: MasterKey;
}

/** A store that does not exist yet: no records, no secrets, no history. */
class EmptyStateReader implements StateReader {
  readonly storeId = undefined;
  readonly target: string;

  constructor(target: string) {
    this.target = target;
  }

  async listRecords(): Promise<AppRecord[]> {
    return [];
  }
  async getRecord(): Promise<AppRecord | undefined> {
    return undefined;
  }
  async getSecret(): Promise<string | undefined> {
    return undefined;
  }
  async listSecretNames(): Promise<string[]> {
    return [];
  }
  async listHistory(): Promise<HistoryEntry[]> {
    return [];
  }
  async close(): Promise<void> {}
}

class SqlStateReader implements StateReader {
  readonly storeId: string;
  readonly target: string;
  readonly #client: SqlClient;
  readonly #where: StoreTarget;
  readonly #historyLimit: number;
  readonly #masterKey: MasterKey | undefined;

  constructor(
    client: SqlClient,
    where: StoreTarget,
    storeId: string,
    historyLimit: number,
    masterKey: MasterKey | undefined,
  ) {
    this.#masterKey = masterKey;
    this.#client = client;
    this.#where = where;
    this.target = where.target;
    this.storeId = storeId;
    this.#historyLimit = historyLimit;
  }

  listRecords(): Promise<AppRecord[]> {
    return guard(this.#where, 'list records', async () =>
      (await selectRecords(this.#client)).map((r) => openRecord(r, this.#masterKey)),
    );
  }
  getRecord(name: string): Promise<AppRecord | undefined> {
    return guard(this.#where, `read record ${name}`, async () => {
      const record = await selectRecord(this.#client, name);
      return record && openRecord(record, this.#masterKey);
    });
  }
  getSecret(name: string): Promise<string | undefined> {
    return guard(this.#where, `read secret ${name}`, () => selectSecret(this.#client, name));
  }
  listSecretNames(): Promise<string[]> {
    return guard(this.#where, 'list secret names', () => selectSecretNames(this.#client));
  }
  listHistory(name: string, limit = this.#historyLimit): Promise<HistoryEntry[]> {
    return guard(this.#where, `read history of ${name}`, () => selectHistory(this.#client, name, limit));
  }
  close(): Promise<void> {
    return this.#client.close();
  }
}

/** A connection that only reads (undefined: a SQLite file that does not exist), as `plan` uses. */
export function openReadOnlyClient(parsed: DatabaseUrl, log: Logger | undefined): SqlClient | undefined {
  // Unqualified names find the store in its own schema, or where an older appvisor left it
  // until the next `serve`/`apply` moves it (plan must not move it). A schema that does not
  // exist is skipped; a store in neither reads as empty.
  return dialectNamed(parsed.dialect).openReadOnlyClient(parsed, {
    searchPath: [STORE_SCHEMA, LEGACY_STORE_SCHEMA],
    onError: (err) => log?.warn({ err }, 'state store connection lost'),
  });
}

/**
 * Opens the state store read-only. A store that does not exist (no SQLite file, no tables)
 * reads as empty, with `storeId` undefined; nothing is created either way.
 */
export async function openStateReader(
  url: string | DatabaseUrl,
  opts: StateReaderOptions = {},
): Promise<StateReader> {
  const parsed = typeof url === 'string' ? parseDatabaseUrl(url, opts.cwd) : url;
  const where: StoreTarget = { dialect: parsed.dialect, target: parsed.redacted };
  requireDatabase(parsed);
  const client = await guard(where, 'open', async () => openReadOnlyClient(parsed, opts.log));
  if (!client) return new EmptyStateReader(where.target);
  try {
    const storeId = await guard(where, 'open', async () => {
      if (!(await tableExists(client, TABLES.meta))) return undefined;
      checkVersion(await readMeta(client, 'schema_version'), where.target);
      return readMeta(client, 'store_id');
    });
    if (storeId === undefined) {
      await client.close();
      return new EmptyStateReader(where.target);
    }
    return new SqlStateReader(client, where, storeId, opts.historyLimit ?? 50, opts.masterKey);
  } catch (err) {
    await client.close().catch(() => undefined);
    throw err;
  }
}
