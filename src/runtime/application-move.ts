/**
 * Moving an app to another application (SPEC §8.6), allowed only on empty data.
 *
 * "Empty data": what lets an app move from one application to another. An app's
 * data is empty when its database (or, in new-schema mode, its schema) holds no table or view
 * but appvisor's own bookkeeping — the data version (`appvisor_data_version`), the owning
 * application (`appvisor_application`) and SQLite's ownership marker (`_appvisor_owner`) — and
 * its data version is absent or 0: no migration of any application is recorded as applied.
 * A database whose application's migrations ran holds that application's tables, or at least
 * its data version: it is not empty, whatever rows it has. To empty one, drop its tables and
 * the data version (or give the app another database).
 */
import { AppvisorError } from '../errors.js';
import type { SqlClient } from '../providers/provider.js';
import { foreignTables } from '../state/foreign-tables.js';
import {
  APPLICATION_TABLE,
  DATA_VERSION_TABLE,
  readApplication,
  readDataVersion,
  recordApplication,
} from './migrations.js';

/** appvisor's own tables in an app's database: they never make its data non-empty. */
const OWN_TABLES = [DATA_VERSION_TABLE, APPLICATION_TABLE, '_appvisor_owner'];

/** Whether the app's data on `client` is empty (see the file's comment); issues only SELECTs. */
export async function isDataEmpty(client: SqlClient): Promise<boolean> {
  const { tables } = await foreignTables(client, OWN_TABLES);
  if (tables.length > 0) return false;
  return ((await readDataVersion(client)) ?? 0) === 0;
}

/**
 * Moves the app's data from application `from` to `to`: checked again here, right before the
 * write (the plan's observation may be stale), so data that is not empty, or that a third
 * application owns, is refused with APP_WRONG_APPLICATION and nothing is written. The owner's
 * lineage starts afresh with `to` at version 0 (there is no data to have a lineage of).
 */
export async function moveApplication(db: SqlClient, app: string, from: string, to: string): Promise<void> {
  const owner = await readApplication(db);
  if (owner === to) return;
  const refused = new AppvisorError('APP_WRONG_APPLICATION', { app, data: owner ?? from, code: to });
  if (owner !== undefined && owner !== from) throw refused;
  if (!(await isDataEmpty(db))) throw refused;
  if (owner !== undefined) await db.query(`DELETE FROM ${APPLICATION_TABLE}`);
  await recordApplication(db, to, 0);
}
