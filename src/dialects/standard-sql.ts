/** State store SQL that PostgreSQL and SQLite spell the same way (`ON CONFLICT`, `CREATE INDEX IF NOT EXISTS`). */
import type { StoreSql } from './types.js';

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
