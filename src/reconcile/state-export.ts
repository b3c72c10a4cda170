/**
 * `appvisor state export` without the CLI around it: reads the state store and the database
 * servers the records and the manifests point at, as `plan` does, and puts what the planner
 * needs into one document (src/state/export-format.ts). Read-only everywhere, like `plan`: it
 * creates no store, no master key, nothing on a server.
 */
import PQueue from 'p-queue';
import { describeMainDatabase } from '../config/main-database.js';
import type { Settings } from '../config/types.js';
import { parseDatabaseUrl } from '../dialects/registry.js';
import { redactUrl } from '../dialects/url.js';
import { translateDbError } from '../providers/errors.js';
import { ProviderSet } from '../providers/set.js';
import { isSealed } from '../secrets/envelope.js';
import { loadMasterKey } from '../secrets/master-key.js';
import {
  type ExportedDataEmpty,
  type ExportedServer,
  STATE_EXPORT_FORMAT,
  STATE_EXPORT_VERSION,
  type StateExport,
  serverKey,
} from '../state/export-format.js';
import { mainDatabaseRefusals } from '../state/main-check.js';
import { openStateReader } from '../state/reader.js';
import type { AppRecord } from '../state/types.js';
import { type ManifestReadOptions, readDesired } from './commands.js';
import { configDigest } from './config-digest.js';
import type { DatabaseTarget, Desired, PlanOptions } from './model.js';
import { liveObservations } from './observation-source.js';
import { parseOwner } from './owner.js';
import { connectionRef, resolveTarget, targetOfItem } from './target.js';

/** Servers asked at once, and apps whose data is checked at once. */
const CONCURRENCY = 8;

/** Reads everything `plan --state` needs, and nothing secret. */
export async function exportState(settings: Settings, opts: ManifestReadOptions = {}): Promise<StateExport> {
  const mainUrl = parseDatabaseUrl(settings.database.url);
  const main = describeMainDatabase(mainUrl, settings.dataDir);
  const desired = await readDesired(settings, opts);
  // The key when one is at hand (never created): the records' sealed connection URLs name the
  // servers to read; without it those servers are left out, as `plan` without a key leaves them.
  const masterKey = await loadMasterKey({ env: opts.env, dataDir: settings.dataDir, create: false });
  const reader = await openStateReader(mainUrl, masterKey ? { masterKey } : {});
  const providers = new ProviderSet(mainUrl, { dataDir: settings.dataDir });
  try {
    const storeId = reader.storeId;
    const records = await reader.listRecords();
    const secrets = await reader.listSecretNames();
    const places = serversToRead(desired, records, main);
    const servers = await readServers(places, providers, storeId);
    const dataEmpty = await readDataEmpty(records, places, servers, providers);
    const refusals = await mainDatabaseRefusals(mainUrl, { adopt: false });
    return {
      format: STATE_EXPORT_FORMAT,
      version: STATE_EXPORT_VERSION,
      exportedAt: new Date().toISOString(),
      storeId: storeId ?? null,
      main,
      hasMainSecret: secrets.includes('main'),
      secrets,
      records: records.map(withoutSecrets),
      servers,
      dataEmpty,
      mainRefusals: refusals.map((err) => err.toJSON()),
    };
  } finally {
    await providers.close();
    await reader.close();
  }
}

/** A server to read: how to reach it, by its redacted name. */
type Place = Pick<DatabaseTarget, 'dialect' | 'server' | 'serverRef'>;

/** The main server, the manifests' servers and the records' servers (where their URL is at hand). */
function serversToRead(
  desired: Desired,
  records: readonly AppRecord[],
  main: PlanOptions['main'],
): Map<string, Place> {
  const places = new Map<string, Place>();
  const add = (p: Place) => {
    if (!places.has(serverKey(p))) places.set(serverKey(p), p);
  };
  add({ dialect: main.dialect, server: main.server, serverRef: 'main' });
  for (const { manifest } of desired.apps.values()) {
    const target = resolveTarget(manifest, main);
    if (!(target instanceof Error)) add(target);
  }
  for (const record of records) {
    const url = record.spec.database.connection?.url;
    for (const item of record.inventory) {
      if (item.dialect === main.dialect && item.server === main.server) continue;
      if (url !== undefined && !isSealed(url) && redactUrl(url) === item.server) {
        add({ dialect: item.dialect, server: item.server, serverRef: connectionRef(url) });
      }
    }
  }
  return places;
}

/** Each server's catalog and this store's leftovers on it; a server that cannot be read, its error. */
async function readServers(
  places: ReadonlyMap<string, Place>,
  providers: ProviderSet,
  storeId: string | undefined,
): Promise<ExportedServer[]> {
  const queue = new PQueue({ concurrency: CONCURRENCY });
  const read = async (place: Place): Promise<ExportedServer> => {
    const at = { dialect: place.dialect, server: place.server };
    try {
      const provider = providers.forTarget(place);
      const catalog = await provider.catalog();
      const leftovers = (await provider.listLeftovers()).filter(
        (l) => storeId !== undefined && parseOwner(l.owner)?.storeId === storeId,
      );
      return { ...at, ...catalog, leftovers };
    } catch (err) {
      return {
        ...at,
        error: translateDbError(err, {
          dialect: place.dialect,
          server: place.server,
          operation: 'list databases for state export',
        }).toJSON(),
      };
    }
  };
  return Promise.all([...places.values()].map((p) => queue.add(() => read(p)) as Promise<ExportedServer>));
}

/**
 * Whether each recorded app's data is empty, for the apps whose record names an owning
 * application: a pull request that changes the application needs the answer (empty data moves,
 * other data is refused). Only SELECTs; an app whose data cannot be read is left out (the
 * offline plan then says it was not observed).
 */
async function readDataEmpty(
  records: readonly AppRecord[],
  places: ReadonlyMap<string, Place>,
  servers: readonly ExportedServer[],
  providers: ProviderSet,
): Promise<ExportedDataEmpty[]> {
  const byKey = new Map(servers.map((s) => [serverKey(s), s]));
  // What an online plan asks: the same check, read once here for the offline one.
  const live = liveObservations(providers);
  const queue = new PQueue({ concurrency: CONCURRENCY });
  const found: ExportedDataEmpty[] = [];
  const check = async (target: DatabaseTarget): Promise<void> => {
    try {
      const { value: empty } = await live.dataEmpty(target);
      const { dialect, server, kind, database, schema } = target;
      found.push({ dialect, server, kind, database, ...(schema !== undefined ? { schema } : {}), empty });
    } catch {
      // Left out: not observed.
    }
  };
  const work: Promise<void>[] = [];
  for (const record of records) {
    if (record.application === undefined) continue;
    for (const item of record.inventory) {
      const place = places.get(serverKey(item));
      const server = byKey.get(serverKey(item));
      if (!place || !server || server.error) continue;
      const listed = item.kind === 'schema' ? server.schemas : server.databases;
      if (!listed?.some((e) => e.name === item.name)) continue;
      const target = targetOfItem(item, place.serverRef);
      work.push(queue.add(() => check(target)) as Promise<void>);
    }
  }
  await Promise.all(work);
  return found.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

/**
 * A record as the export prints it: its connection URL with the password as `***`, never
 * sealed, and its config only as a digest (configDigest).
 */
function withoutSecrets(record: AppRecord): AppRecord {
  const config = configDigest(record.spec.config);
  const url = record.spec.database.connection?.url;
  if (url === undefined) return { ...record, spec: { ...record.spec, config } };
  const shown = isSealed(url) ? sealedServer(record) : redactUrl(url);
  const database = {
    ...record.spec.database,
    connection: { ...record.spec.database.connection, url: shown },
  };
  return { ...record, spec: { ...record.spec, config, database } };
}

/**
 * A sealed URL (no master key at hand) as the record's own inventory names its server (the
 * redacted URL it was created on); a record with no such item says only that it is sealed.
 */
function sealedServer(record: AppRecord): string {
  const item = record.inventory.find((i) => /^[a-z][a-z0-9+.-]*:\/\//i.test(i.server));
  return item?.server ?? 'sealed (export with the master key at hand to name the server)';
}
