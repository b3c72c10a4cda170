/**
 * The few places where the state store's SQL differs between SQLite, PostgreSQL and MySQL:
 * column types, upserts and "insert unless present". Everything else is written once.
 */
import crypto from 'node:crypto';
import type { Dialect, SqlClient } from '../providers/provider.js';

/** The state store's tables. */
export const TABLES = {
  meta: 'appvisor_meta',
  apps: 'appvisor_apps',
  secrets: 'appvisor_secrets',
  history: 'appvisor_history',
} as const;

/**
 * PostgreSQL: the schema of the state store's tables, apart from the main app's (and anyone
 * else's) in `public`; the store's connections put it on their search_path (see placement.ts).
 */
export const STORE_SCHEMA = 'appvisor';

/** Column types per dialect, for migrations. */
export interface ColumnTypes {
  /** A primary or indexed key: MySQL cannot index TEXT without a length. */
  readonly key: string;
  /** Short text (file names, hashes, statuses, ISO timestamps). */
  readonly text: string;
  /** JSON documents of any size. */
  readonly json: string;
  readonly bool: string;
  readonly int: string;
  /** An auto-incrementing integer primary key, column definition included. */
  readonly serialPk: string;
  /** Appended to CREATE TABLE. */
  readonly tableOptions: string;
}

const TYPES: Readonly<Record<Dialect, ColumnTypes>> = {
  sqlite: {
    key: 'TEXT',
    text: 'TEXT',
    json: 'TEXT',
    bool: 'INTEGER',
    int: 'INTEGER',
    serialPk: 'INTEGER PRIMARY KEY AUTOINCREMENT',
    tableOptions: '',
  },
  postgres: {
    key: 'TEXT',
    text: 'TEXT',
    json: 'TEXT',
    bool: 'SMALLINT',
    int: 'BIGINT',
    serialPk: 'BIGSERIAL PRIMARY KEY',
    tableOptions: '',
  },
  mysql: {
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
};

export function columnTypes(dialect: Dialect): ColumnTypes {
  return TYPES[dialect];
}

type Row = Readonly<Record<string, unknown>>;

function insertParts(row: Row): { columns: string[]; sql: string; params: unknown[] } {
  const columns = Object.keys(row);
  const placeholders = columns.map(() => '?').join(', ');
  return { columns, sql: `(${columns.join(', ')}) VALUES (${placeholders})`, params: Object.values(row) };
}

/** Inserts `row`, or replaces every other column of the row with the same `key`. */
export async function upsert(client: SqlClient, table: string, key: string, row: Row): Promise<void> {
  const { columns, sql, params } = insertParts(row);
  const others = columns.filter((c) => c !== key);
  const update =
    client.dialect === 'mysql'
      ? ` ON DUPLICATE KEY UPDATE ${others.map((c) => `${c} = VALUES(${c})`).join(', ')}`
      : ` ON CONFLICT (${key}) DO UPDATE SET ${others.map((c) => `${c} = excluded.${c}`).join(', ')}`;
  await client.query(`INSERT INTO ${table} ${sql}${update}`, params);
}

/**
 * Inserts `row` unless a row with the same `key` exists (then does nothing). Atomic on every
 * dialect, so concurrent callers never fail and exactly one row wins.
 */
export async function insertIfAbsent(client: SqlClient, table: string, key: string, row: Row): Promise<void> {
  const { sql, params } = insertParts(row);
  // MySQL: a no-op update rather than INSERT IGNORE, which would also hide unrelated errors.
  const tail =
    client.dialect === 'mysql'
      ? ` ON DUPLICATE KEY UPDATE ${key} = ${key}`
      : ` ON CONFLICT (${key}) DO NOTHING`;
  await client.query(`INSERT INTO ${table} ${sql}${tail}`, params);
}

/** Whether `table` exists in the database (PostgreSQL: on the search_path) without touching it. */
export async function tableExists(client: SqlClient, table: string): Promise<boolean> {
  switch (client.dialect) {
    case 'sqlite':
      return (
        (await client.query("SELECT 1 AS x FROM sqlite_master WHERE type = 'table' AND name = ?", [table]))
          .length > 0
      );
    case 'postgres': {
      const rows = await client.query<{ t: string | null }>('SELECT to_regclass(?)::text AS t', [table]);
      return rows[0]?.t != null;
    }
    case 'mysql':
      return (
        (
          await client.query(
            'SELECT 1 AS x FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?',
            [table],
          )
        ).length > 0
      );
  }
}

/**
 * A PostgreSQL advisory lock key for `namespace`: a signed 64-bit integer (as a decimal string,
 * for `?::bigint`) from its SHA-256, so it is the same on every server version and process.
 */
export function advisoryLockKey(namespace: string): string {
  const digest = crypto.createHash('sha256').update(namespace).digest();
  return digest.readBigInt64BE(0).toString();
}

/**
 * A MySQL `GET_LOCK` name for `namespace` scoped to `database` (MySQL's named locks are
 * server-wide). Names longer than MySQL's 64-character limit are shortened with a hash.
 */
export function mysqlLockName(namespace: string, database: string | undefined): string {
  const name = `${namespace}:${database ?? ''}`;
  if (name.length <= 64) return name;
  return `${namespace}:${crypto
    .createHash('sha256')
    .update(database ?? '')
    .digest('hex')}`.slice(0, 64);
}
