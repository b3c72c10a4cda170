/** The state store's SQL on SQLite. */
import { noSchemas, onConflict } from '../standard-sql.js';
import type { StoreSql } from '../types.js';
import type { SqliteClient } from './client.js';

export const store: StoreSql = {
  nowMs: "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)",
  types: {
    key: 'TEXT',
    text: 'TEXT',
    json: 'TEXT',
    bool: 'INTEGER',
    int: 'INTEGER',
    serialPk: 'INTEGER PRIMARY KEY AUTOINCREMENT',
    tableOptions: '',
  },
  ...onConflict,
  ...noSchemas,
  // Synchronous on the one handle (see SqliteClient.executeBatch): no transaction across awaits.
  executeBatch: (client, statements) => (client as SqliteClient).executeBatch(statements),
  async tableExists(client, table) {
    const rows = await client.query("SELECT 1 AS x FROM sqlite_master WHERE type = 'table' AND name = ?", [
      table,
    ]);
    return rows.length > 0;
  },
  listTables: (client) =>
    client.query(
      "SELECT name AS t FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
    ),
  // One column per statement; the DDL is transactional, so nothing is half-done.
  addColumns: (table, columns) => columns.map((c) => `ALTER TABLE ${table} ADD COLUMN ${c}`),
  // The BEGIN IMMEDIATE of the migration's transaction already excludes other writers.
  lockForMigration: async () => async () => undefined,
};
