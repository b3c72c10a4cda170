/** State store SQL that PostgreSQL and SQLite spell the same way (`ON CONFLICT`, `CREATE INDEX IF NOT EXISTS`). */
import type { StoreSql } from './types.js';

/** Refused inside a batch's transaction, so that it rolls back; never leaves executeBatch. */
class BatchRefused extends Error {
  constructor(readonly index: number) {
    super(`statement ${index} of the batch changed other rows than expected`);
  }
}

/**
 * Dialects with a pool: the batch on one pooled connection in its transaction (other callers
 * use other connections, or wait for one).
 */
export const pooledBatch: Pick<StoreSql, 'executeBatch'> = {
  async executeBatch(client, statements) {
    try {
      await client.transaction(async (tx) => {
        for (const [index, { sql, params, expect }] of statements.entries()) {
          const changed = await tx.execute(sql, params);
          if (expect !== undefined && changed !== expect) throw new BatchRefused(index);
        }
      });
      return undefined;
    } catch (err) {
      if (err instanceof BatchRefused) return err.index;
      throw err;
    }
  },
};

export const onConflict: Pick<StoreSql, 'upsertClause' | 'ignoreDuplicateClause' | 'index'> = {
  upsertClause: (key, others) =>
    ` ON CONFLICT (${key}) DO UPDATE SET ${others.map((c) => `${c} = excluded.${c}`).join(', ')}`,
  ignoreDuplicateClause: (key) => ` ON CONFLICT (${key}) DO NOTHING`,
  index: (table, name, columns) => ({
    statement: `CREATE INDEX IF NOT EXISTS ${name} ON ${table} (${columns.join(', ')})`,
  }),
};

/** For dialects without schemas. */
export const noSchemas: Pick<StoreSql, 'schemaExists'> = {
  schemaExists: async () => false,
};
