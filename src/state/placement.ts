/**
 * Where the state store's tables live, settled by `migrate()` before any migration runs, inside
 * its transaction and under its lock, so two processes opening one store at once never both
 * create or move it:
 *
 * - PostgreSQL: the schema `appvisor` (STORE_SCHEMA), which appvisor creates. A store an older
 *   appvisor left in `public` (its tables beside the main app's) is moved there, in the same
 *   transaction: all tables or none.
 * - MySQL/MariaDB and SQLite: the main database itself, beside everything else.
 *
 * A store found in place is appvisor's own. Otherwise nothing is written where tables appvisor
 * did not create already live, unless `adopt` (settings `mainDatabase.adopt`).
 */
import { dialectNamed } from '../dialects/registry.js';
import type { SqlClient } from '../providers/provider.js';
import { STORE_SCHEMA, TABLES, tableExists } from './dialect.js';
import { refuseForeignTables } from './foreign-tables.js';

/** Where appvisor before the `appvisor` schema kept the store on PostgreSQL. */
export const LEGACY_STORE_SCHEMA = 'public';

export interface Placement {
  /** PostgreSQL: the schema the store was moved from on this open. */
  readonly movedFrom?: string;
}

/**
 * Makes sure the store's tables can be created or found through `tx`: on PostgreSQL its
 * connections' search_path is STORE_SCHEMA, so unqualified names resolve there. Throws
 * ADOPT_REFUSED before writing anything when a new store would join foreign tables.
 */
export async function placeStore(
  tx: SqlClient,
  opts: { readonly target: string; readonly adopt: boolean },
): Promise<Placement> {
  if (await tableExists(tx, TABLES.meta)) return {};
  await refuseForeignTables(tx, {
    known: Object.values(TABLES),
    adopt: opts.adopt,
    what: 'the state store',
    where: opts.target,
  });
  const dialect = dialectNamed(tx.dialect);
  if (!dialect.schemas) return {};
  // Only when missing: even CREATE SCHEMA IF NOT EXISTS needs the database's CREATE right, which
  // a user whose DBA created the schema for it may lack. (The lock keeps others from racing here.)
  if (!(await dialect.store.schemaExists(tx, STORE_SCHEMA))) await tx.exec(`CREATE SCHEMA ${STORE_SCHEMA}`);
  if (!(await tableExists(tx, `${LEGACY_STORE_SCHEMA}.${TABLES.meta}`))) return {};
  // Indexes and the history id sequence move with their tables.
  for (const table of Object.values(TABLES)) {
    if (await tableExists(tx, `${LEGACY_STORE_SCHEMA}.${table}`)) {
      await tx.exec(`ALTER TABLE ${LEGACY_STORE_SCHEMA}.${table} SET SCHEMA ${STORE_SCHEMA}`);
    }
  }
  return { movedFrom: LEGACY_STORE_SCHEMA };
}
