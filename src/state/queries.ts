/** The state store's statements, written once for every dialect (`?` placeholders). */
import type { SqlClient } from '../providers/provider.js';
import { insertIfAbsent, TABLES, upsert } from './dialect.js';
import {
  type AppRow,
  HISTORY_COLUMNS,
  type HistoryRow,
  historyToRow,
  intentToColumn,
  recordToRow,
  rowToHistory,
  rowToRecord,
} from './rows.js';
import type { AppRecord, HistoryEntry, OperatorIntent } from './types.js';

const { apps, secrets, history } = TABLES;
// `*`, not the column list: the read-only reader may meet a store one layout behind (it cannot
// migrate), and a column added later then simply reads as absent.
const APP_SELECT = `SELECT * FROM ${apps}`;

export async function selectRecords(client: SqlClient): Promise<AppRecord[]> {
  const rows = await client.query<AppRow>(`${APP_SELECT} ORDER BY name`);
  return rows.map(rowToRecord);
}

export async function selectRecord(client: SqlClient, name: string): Promise<AppRecord | undefined> {
  const [row] = await client.query<AppRow>(`${APP_SELECT} WHERE name = ?`, [name]);
  return row ? rowToRecord(row) : undefined;
}

export async function writeRecord(client: SqlClient, record: AppRecord): Promise<void> {
  await upsert(client, apps, 'name', recordToRow(record));
}

export async function writeIntent(
  client: SqlClient,
  name: string,
  intent: OperatorIntent,
): Promise<AppRecord | undefined> {
  await client.query(`UPDATE ${apps} SET operator_intent = ? WHERE name = ?`, [intentToColumn(intent), name]);
  return selectRecord(client, name);
}

export async function removeRecord(client: SqlClient, name: string): Promise<void> {
  await client.query(`DELETE FROM ${apps} WHERE name = ?`, [name]);
}

export async function selectSecret(client: SqlClient, name: string): Promise<string | undefined> {
  const [row] = await client.query<{ secret: string }>(`SELECT secret FROM ${secrets} WHERE name = ?`, [
    name,
  ]);
  return row?.secret;
}

/** Inserts the secret unless one exists, then reads back whichever is stored. */
export async function ensureSecretRow(client: SqlClient, name: string, secret: string): Promise<string> {
  await insertIfAbsent(client, secrets, 'name', { name, secret, created_at: new Date().toISOString() });
  const stored = await selectSecret(client, name);
  // Only a concurrent delete between the two statements gets here.
  if (stored === undefined) throw new Error(`the secret of ${name} vanished while it was being stored`);
  return stored;
}

export async function selectHistory(client: SqlClient, app: string, limit: number): Promise<HistoryEntry[]> {
  const rows = await client.query<HistoryRow>(
    `SELECT ${HISTORY_COLUMNS.join(', ')} FROM ${history} WHERE app = ? ORDER BY id DESC LIMIT ?`,
    [app, limit],
  );
  return rows.map(rowToHistory);
}

/**
 * Appends an entry, then drops all but the newest `keep` of that app. Two statements, no
 * transaction: a trim that fails is done by the next append, and a SQLite transaction held
 * across awaits would stall other handles on the file in this process. The cut-off id is read
 * first because MySQL allows neither LIMIT in an IN subquery nor the target table in a
 * DELETE's subquery.
 */
export async function insertHistory(client: SqlClient, entry: HistoryEntry, keep: number): Promise<void> {
  const row = historyToRow(entry);
  const columns = Object.keys(row);
  await client.query(
    `INSERT INTO ${history} (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`,
    Object.values(row),
  );
  const [cut] = await client.query<{ id: number | string }>(
    `SELECT id FROM ${history} WHERE app = ? ORDER BY id DESC LIMIT 1 OFFSET ?`,
    [entry.app, keep],
  );
  if (cut) await client.query(`DELETE FROM ${history} WHERE app = ? AND id <= ?`, [entry.app, cut.id]);
}
