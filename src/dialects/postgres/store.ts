/** The state store's SQL on PostgreSQL. */
import { onConflict, pooledBatch } from '../standard-sql.js';
import type { StoreSql } from '../types.js';
import { advisoryLockKey } from './lock.js';

export const store: StoreSql = {
  nowMs: '(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::bigint',
  // SHOW max_connections, as a SELECT so the column has a name.
  maxConnections: "SELECT current_setting('max_connections')::int AS n",
  types: {
    key: 'TEXT',
    text: 'TEXT',
    json: 'TEXT',
    bool: 'SMALLINT',
    int: 'BIGINT',
    serialPk: 'BIGSERIAL PRIMARY KEY',
    tableOptions: '',
  },
  async notify(client, channel, payload) {
    await client.query('SELECT pg_notify(?, ?)', [channel, payload]);
  },
  ...onConflict,
  ...pooledBatch,
  async tableExists(client, table) {
    const rows = await client.query<{ t: string | null }>('SELECT to_regclass(?)::text AS t', [table]);
    return rows[0]?.t != null;
  },
  listTables: (client, inSchema) =>
    // pg_class rather than information_schema, which hides tables this user has no right on.
    client.query(
      `SELECT n.nspname AS s, c.relname AS t FROM pg_catalog.pg_class c
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = COALESCE(?::name, current_schema()) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')`,
      [inSchema ?? null],
    ),
  async schemaExists(client, schema) {
    const rows = await client.query('SELECT 1 AS x FROM pg_catalog.pg_namespace WHERE nspname = ?', [schema]);
    return rows.length > 0;
  },
  addColumns: (table, columns) => [
    `ALTER TABLE ${table} ${columns.map((c) => `ADD COLUMN IF NOT EXISTS ${c}`).join(', ')}`,
  ],
  // A transaction-level advisory lock: DDL is transactional here, the commit releases it.
  async lockForMigration(tx, namespace) {
    await tx.query('SELECT pg_advisory_xact_lock(?::bigint)', [advisoryLockKey(namespace)]);
    return async () => undefined;
  },
};
