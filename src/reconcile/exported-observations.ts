/**
 * A `state export` as what observing reads (`plan --state FILE`): the store's records and the
 * servers' catalogs from the file, no connection anywhere. What the export could not have seen
 * (a server it does not know) is answered as an online plan would most likely find it, absent,
 * with a note that the plan prints.
 */
import { redactUrl } from '../dialects/url.js';
import { AppvisorError } from '../errors.js';
import type { LoadedManifest } from '../manifests/types.js';
import { type ExportedServer, type StateExport, serverKey } from '../state/export-format.js';
import type { AppRecord } from '../state/types.js';
import { configDigest } from './config-digest.js';
import type { Desired } from './model.js';
import type { ObservationSource } from './observation-source.js';
import type { ObserveDeps } from './observe.js';

/** The store as the export recorded it: records, and which names have a secret (never a value). */
export function exportedStore(doc: StateExport): ObserveDeps['store'] {
  const records = new Map(doc.records.map((r) => [r.name, r]));
  const secrets = new Set(doc.secrets);
  return {
    storeId: doc.storeId ?? undefined,
    listRecords: async (): Promise<AppRecord[]> => [...records.values()],
    getRecord: async (name) => records.get(name),
    // Observing asks only whether there is one; the export never holds a value to give.
    getSecret: async (name) => (secrets.has(name) ? 'exported: present' : undefined),
  };
}

/** The servers as the export saw them. */
export function exportedObservations(doc: StateExport): ObservationSource {
  const servers = new Map(doc.servers.map((s) => [serverKey(s), s]));
  const empties = new Map(
    doc.dataEmpty.map((e) => [objectKey(e.dialect, e.server, e.kind, e.database, e.schema), e.empty]),
  );
  const unknown = (dialect: string, server: string) =>
    `not observed offline: ${dialect} server ${server} is not in the state export, taken as holding nothing`;
  const serverOf = (dialect: string, server: string): ExportedServer | undefined => {
    const found = servers.get(serverKey({ dialect, server }));
    // The server's own error, as an online plan meets it: the app is blocked, not guessed.
    if (found?.error) {
      throw new AppvisorError(found.error.code, {}, { message: `${found.error.message} (at export)` });
    }
    return found;
  };
  return {
    async observe(target) {
      const server = serverOf(target.dialect, target.server);
      if (!server) return { exists: false, unobserved: unknown(target.dialect, target.server) };
      const name = target.kind === 'schema' ? target.schema! : target.database;
      const entries = target.kind === 'schema' ? server.schemas : server.databases;
      const found = entries?.find((e) => e.name === name);
      if (!found) return { exists: false };
      return found.owner === undefined ? { exists: true } : { exists: true, owner: found.owner };
    },
    async leftovers(target) {
      return serverOf(target.dialect, target.server)?.leftovers ?? [];
    },
    async dataEmpty(target) {
      const key = objectKey(target.dialect, target.server, target.kind, target.database, target.schema);
      const value = empties.get(key);
      if (value !== undefined) return { value };
      // Data an app has been running on is rarely empty: refused, as online most likely would.
      return {
        value: false,
        unobserved: `not observed offline: whether the data of ${target.database} is empty, taken as not empty`,
      };
    },
  };
}

function objectKey(dialect: string, server: string, kind: string, database: string, schema?: string): string {
  return JSON.stringify([dialect, server, kind, database, schema ?? null]);
}

/**
 * The manifests as the export's records can be compared with them: connection URLs with their
 * password as `***` and config as its digest, as the export keeps the records' (the hash stays
 * the manifest's own, so an unchanged app stays unchanged). A change of only a password is
 * therefore not seen offline; a change of a config value is (its digest changes).
 */
export function asExportedManifests(desired: Desired): Desired {
  const apps = new Map<string, LoadedManifest>();
  for (const [name, loaded] of desired.apps) {
    const config = configDigest(loaded.manifest.config);
    const url = loaded.manifest.database.connection?.url;
    if (url === undefined || redactUrl(url) === url) {
      apps.set(name, { ...loaded, manifest: { ...loaded.manifest, config } });
      continue;
    }
    const database = {
      ...loaded.manifest.database,
      connection: { ...loaded.manifest.database.connection, url: redactUrl(url) },
    };
    apps.set(name, { ...loaded, manifest: { ...loaded.manifest, config, database } });
  }
  return { ...desired, apps };
}
