/**
 * Tables appvisor did not create, where a client would create its own: the SQLite file, the
 * MySQL database (`DATABASE()`), or on PostgreSQL `current_schema()` — the first schema on the
 * connection's search_path that exists (none yet: nothing to find). Checked before the state
 * store or the main app writes its first table into the main database (SPEC §8.6), so appvisor
 * never quietly takes over someone else's `users` table. Only reads.
 */
import { dialectNamed } from '../dialects/registry.js';
import { AppvisorError } from '../errors.js';
import type { SqlClient } from '../providers/provider.js';

export interface ForeignTables {
  /** PostgreSQL: the schema they are in (set when any table is there). */
  readonly schema?: string;
  /** Sorted. */
  readonly tables: readonly string[];
}

/**
 * The tables and views beside which `client` would create its tables, minus `known`. On
 * PostgreSQL `inSchema` names the schema to look in (default: the connection's current_schema()).
 */
export async function foreignTables(
  client: SqlClient,
  known: Iterable<string>,
  inSchema?: string,
): Promise<ForeignTables> {
  const rows = await dialectNamed(client.dialect).store.listTables(client, inSchema);
  const ours = new Set(known);
  const schema = rows[0]?.s;
  return {
    ...(schema === undefined ? {} : { schema }),
    tables: rows
      .map((r) => String(r.t))
      .filter((t) => !ours.has(t))
      .sort(),
  };
}

export interface ForeignTablesCheck {
  /** Tables appvisor put there itself. */
  readonly known: Iterable<string>;
  /** Settings `mainDatabase.adopt`: skip the check. */
  readonly adopt: boolean;
  /** What would be installed, for the message: `the state store`, `the main app`. */
  readonly what: string;
  /** The main database, redacted (on PostgreSQL the schema is added). */
  readonly where: string;
  /** PostgreSQL: the schema to look in. @default the connection's current_schema() */
  readonly schema?: string;
}

/**
 * Throws ADOPT_REFUSED (terminal) naming one foreign table and the way out, unless
 * `check.adopt`. Issues nothing but a SELECT.
 */
export async function refuseForeignTables(client: SqlClient, check: ForeignTablesCheck): Promise<void> {
  if (check.adopt) return;
  const found = await foreignTables(client, check.known, check.schema);
  const [table, ...more] = found.tables;
  if (table === undefined) return;
  const where = found.schema === undefined ? check.where : `${check.where} (schema ${found.schema})`;
  const others = more.length === 0 ? '' : ` (and ${more.length} more)`;
  throw new AppvisorError(
    'ADOPT_REFUSED',
    { kind: 'table', name: table, where },
    {
      message:
        `not installing ${check.what} in ${where}: it holds table ${table}${others}, which appvisor ` +
        'did not create; set mainDatabase.adopt: true in appvisor.yaml to use it anyway, or point ' +
        'database.url at another database',
    },
  );
}
