import { dialectForScheme, dialectNamed, dialects, orList, schemeOf } from '../dialects/registry.js';
import { redactUrl } from '../dialects/url.js';
import { AppvisorError } from '../errors.js';
import type { AppManifest } from '../manifests/types.js';
import { STORE_SCHEMA } from '../state/dialect.js';
import type { InventoryItem } from '../state/types.js';
import type { DatabaseTarget, PlanOptions } from './model.js';

const INSPECT = Symbol.for('nodejs.util.inspect.custom');

/**
 * A `serverRef` for a connection URL. The executor reads `url` (password included) to connect,
 * but the property is not enumerable and JSON/inspection show the redacted URL, so a step that
 * is logged or printed never carries the password.
 */
export function connectionRef(url: string): { readonly url: string } {
  const shown = Object.freeze({ url: redactUrl(url) });
  const ref = {};
  Object.defineProperties(ref, {
    url: { value: url, enumerable: false },
    toJSON: { value: () => shown, enumerable: false },
    [INSPECT]: { value: () => shown, enumerable: false },
  });
  return Object.freeze(ref) as { readonly url: string };
}

function unsupported(detail: string): AppvisorError {
  return new AppvisorError('UNSUPPORTED_MODE', { detail });
}

/**
 * Where the manifest's database lives. Returns (does not throw) an UNSUPPORTED_MODE error
 * when the mode cannot work with this main database or connection URL.
 */
export function resolveTarget(m: AppManifest, main: PlanOptions['main']): DatabaseTarget | AppvisorError {
  const db = m.database;
  switch (db.mode) {
    case 'new-database':
      return {
        dialect: main.dialect,
        server: main.server,
        serverRef: 'main',
        kind: 'database',
        database: db.name,
      };
    case 'new-schema':
      if (!dialectNamed(main.dialect).schemas) {
        return unsupported(
          `new-schema needs a PostgreSQL main database; the main database is ${main.dialect}`,
        );
      }
      if ((db.schema ?? m.name) === STORE_SCHEMA) {
        // Adopted or not, the state store's own schema is never an app's.
        return unsupported(
          `schema ${STORE_SCHEMA} holds appvisor's state store; set database.schema to another name`,
        );
      }
      return {
        dialect: 'postgres',
        server: main.server,
        serverRef: 'main',
        kind: 'schema',
        database: main.database,
        schema: db.schema ?? m.name,
      };
    case 'new-connection': {
      const url = db.connection?.url;
      if (url === undefined || url === '') return unsupported('new-connection needs database.connection.url');
      const scheme = schemeOf(url);
      const dialect = scheme === undefined ? undefined : dialectForScheme(scheme);
      if (!dialect?.remote) {
        const accepted = dialects.filter((d) => d.remote).flatMap((d) => d.schemes.map((s) => `${s}//`));
        return unsupported(
          `database.connection.url must start with ${orList(accepted)} (got ${scheme ?? 'no scheme'})`,
        );
      }
      return {
        dialect: dialect.name,
        server: redactUrl(url),
        serverRef: connectionRef(url),
        kind: 'database',
        database: db.name,
      };
    }
    default:
      return unsupported(`database.mode ${String((db as { mode: unknown }).mode)} is not supported`);
  }
}

/** `crm on postgres 127.0.0.1:5432` / `crm in database main on postgres …` (the target without its kind). */
export function locateTarget(t: DatabaseTarget): string {
  const where = `on ${t.dialect} ${t.server}`;
  return t.kind === 'schema' ? `${t.schema} in database ${t.database} ${where}` : `${t.database} ${where}`;
}

/** `database crm on postgres 127.0.0.1:5432` / `schema crm in database main on postgres …`. */
export function describeTarget(t: DatabaseTarget): string {
  return `${t.kind} ${locateTarget(t)}`;
}

/** Whether an inventory item is the object `t` points at (same server, kind and names). */
export function isTargetOf(item: InventoryItem, t: DatabaseTarget): boolean {
  if (item.kind !== t.kind || item.dialect !== t.dialect || item.server !== t.server) return false;
  return t.kind === 'schema'
    ? item.name === t.schema && item.database === t.database
    : item.name === t.database;
}

/** The target an inventory item describes, on the given server. */
export function targetOfItem(item: InventoryItem, serverRef: DatabaseTarget['serverRef']): DatabaseTarget {
  return item.kind === 'schema'
    ? {
        dialect: item.dialect,
        server: item.server,
        serverRef,
        kind: 'schema',
        database: item.database ?? '',
        schema: item.name,
      }
    : { dialect: item.dialect, server: item.server, serverRef, kind: 'database', database: item.name };
}
