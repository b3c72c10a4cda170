/**
 * The state store's tables, and the few statements whose SQL differs between dialects (column
 * types, upserts, "insert unless present"), each taken from the dialect's `store`
 * (src/dialects/<dialect>/store.ts). Everything else is written once.
 */
import { dialectNamed } from '../dialects/registry.js';
import type { ColumnTypes } from '../dialects/types.js';
import type { Dialect, SqlClient } from '../providers/provider.js';

/** The state store's tables. */
export const TABLES = {
  meta: 'appvisor_meta',
  apps: 'appvisor_apps',
  secrets: 'appvisor_secrets',
  history: 'appvisor_history',
  /** The leader lease: one row, who leads and until when (see lease.ts). */
  lease: 'appvisor_lease',
  /** Every replica's heartbeat: who it is and its apps' runtime statuses (see replicas.ts). */
  replicas: 'appvisor_replicas',
  /** Admin tokens, hashed, shared by every replica (see tokens.ts). */
  tokens: 'appvisor_tokens',
} as const;

/**
 * PostgreSQL: the schema of the state store's tables, apart from the main app's (and anyone
 * else's) in `public`; the store's connections put it on their search_path (see placement.ts).
 */
export const STORE_SCHEMA = 'appvisor';

/** Column types per dialect, for migrations. */
export function columnTypes(dialect: Dialect): ColumnTypes {
  return dialectNamed(dialect).store.types;
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
  const update = dialectNamed(client.dialect).store.upsertClause(key, others);
  await client.query(`INSERT INTO ${table} ${sql}${update}`, params);
}

/**
 * Inserts `row` unless a row with the same `key` exists (then does nothing). Atomic on every
 * dialect, so concurrent callers never fail and exactly one row wins.
 */
export async function insertIfAbsent(client: SqlClient, table: string, key: string, row: Row): Promise<void> {
  const { sql, params } = insertParts(row);
  const tail = dialectNamed(client.dialect).store.ignoreDuplicateClause(key);
  await client.query(`INSERT INTO ${table} ${sql}${tail}`, params);
}

/** Whether `table` exists in the database (PostgreSQL: on the search_path) without touching it. */
export function tableExists(client: SqlClient, table: string): Promise<boolean> {
  return dialectNamed(client.dialect).store.tableExists(client, table);
}
