/**
 * What `plan` says about the main database before anything is installed in it (SPEC §8.6,
 * "the plan is the whole diff"): the refusals `apply` and `serve` would meet when they create the
 * state store or install the main app beside tables appvisor did not create. Read-only, on the
 * same kind of connection as the state reader.
 */
import { dialectNamed } from '../dialects/registry.js';
import type { DatabaseUrl } from '../dialects/url.js';
import { AppvisorError } from '../errors.js';
import type { SqlClient } from '../providers/provider.js';
import { DATA_VERSION_TABLE } from '../runtime/migrations.js';
import { STORE_SCHEMA, TABLES, tableExists } from './dialect.js';
import { refuseForeignTables } from './foreign-tables.js';
import { LEGACY_STORE_SCHEMA } from './placement.js';
import { openReadOnlyClient } from './reader.js';

/** The ADOPT_REFUSED errors a first install into this main database would meet (none with adopt). */
export async function mainDatabaseRefusals(
  url: DatabaseUrl,
  opts: { readonly adopt: boolean },
): Promise<AppvisorError[]> {
  if (opts.adopt) return [];
  const client = openReadOnlyClient(url, undefined);
  if (!client) return [];
  try {
    const refusals: AppvisorError[] = [];
    const where = url.redacted;
    const dialect = dialectNamed(client.dialect);
    const schemas = dialect.schemas;
    const storeSchema = schemas ? STORE_SCHEMA : undefined;
    const mainSchema = schemas ? LEGACY_STORE_SCHEMA : undefined;
    const qualified = (schema: string | undefined, table: string) => (schema ? `${schema}.${table}` : table);
    const storeFound =
      (await tableExists(client, qualified(storeSchema, TABLES.meta))) ||
      (schemas && (await tableExists(client, qualified(mainSchema, TABLES.meta))));
    // A new store: on PostgreSQL only a schema `appvisor` that exists can hold foreign tables.
    const storeSchemaExists = !schemas || (await dialect.store.schemaExists(client, STORE_SCHEMA));
    if (!storeFound && storeSchemaExists) {
      await collect(refusals, client, 'the state store', where, storeSchema);
    }
    if (!(await tableExists(client, qualified(mainSchema, DATA_VERSION_TABLE)))) {
      await collect(refusals, client, 'the main app', where, mainSchema);
    }
    return refusals;
  } finally {
    await client.close();
  }
}

async function collect(
  into: AppvisorError[],
  client: SqlClient,
  what: string,
  where: string,
  schema: string | undefined,
): Promise<void> {
  try {
    await refuseForeignTables(client, {
      known: Object.values(TABLES),
      adopt: false,
      what,
      where,
      ...(schema ? { schema } : {}),
    });
  } catch (err) {
    if (!(err instanceof AppvisorError) || err.code !== 'ADOPT_REFUSED') throw err;
    into.push(err);
  }
}
