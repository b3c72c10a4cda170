/** The state store's SQL on MySQL/MariaDB. */
import { AppvisorError } from '../../errors.js';
import { noSchemas, pooledBatch } from '../standard-sql.js';
import type { StoreSql } from '../types.js';
import { mysqlLockName } from './lock.js';

/** How long a process waits for another one's migration. */
const MIGRATE_WAIT_SECONDS = 60;

export const store: StoreSql = {
  nowMs: 'CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)',
  maxConnections: 'SELECT @@max_connections AS n',
  ...pooledBatch,
  types: {
    // 191 × 4 bytes (utf8mb4) fits the smallest InnoDB index prefix limit (767 bytes).
    key: 'VARCHAR(191)',
    text: 'TEXT',
    json: 'LONGTEXT',
    bool: 'TINYINT',
    int: 'BIGINT',
    serialPk: 'BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY',
    // Binary collation: keys compare byte for byte, as on the other dialects.
    tableOptions: ' ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin',
  },
  upsertClause: (_key, others) =>
    ` ON DUPLICATE KEY UPDATE ${others.map((c) => `${c} = VALUES(${c})`).join(', ')}`,
  // A no-op update rather than INSERT IGNORE, which would also hide unrelated errors.
  ignoreDuplicateClause: (key) => ` ON DUPLICATE KEY UPDATE ${key} = ${key}`,
  ...noSchemas,
  async tableExists(client, table) {
    const rows = await client.query(
      'SELECT 1 AS x FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?',
      [table],
    );
    return rows.length > 0;
  },
  listTables: (client) =>
    client.query('SELECT table_name AS t FROM information_schema.tables WHERE table_schema = DATABASE()'),
  // Each DDL statement commits at once: all columns in one, so nothing is half-done.
  addColumns: (table, columns) => [
    `ALTER TABLE ${table} ${columns.map((c) => `ADD COLUMN ${c}`).join(', ')}`,
  ],
  // No CREATE INDEX IF NOT EXISTS: the index is declared in its table.
  index: (_table, name, columns) => ({ inline: `INDEX ${name} (${columns.join(', ')})` }),
  // A named lock on the migration's connection, released by the returned function.
  async lockForMigration(tx, namespace, target) {
    const [row] = await tx.query<{ db: string | null }>('SELECT DATABASE() AS db');
    const name = mysqlLockName(namespace, row?.db ?? undefined);
    const [got] = await tx.query<{ ok: number | null }>('SELECT GET_LOCK(?, ?) AS ok', [
      name,
      MIGRATE_WAIT_SECONDS,
    ]);
    if (Number(got?.ok) !== 1) {
      throw new AppvisorError('STATE_STORE_FAILED', {
        target,
        detail: `another process kept migrating the store for over ${MIGRATE_WAIT_SECONDS} s`,
      });
    }
    return async () => {
      await tx.query('SELECT RELEASE_LOCK(?)', [name]);
    };
  },
};
