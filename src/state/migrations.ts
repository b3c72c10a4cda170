/**
 * The state store's layout, versioned. `appvisor_meta` holds `schema_version` and `store_id`;
 * each migration moves the layout one version up. Migrations run under a lock, so two
 * processes opening a new store at once neither collide nor run a step twice.
 */
import crypto from 'node:crypto';
import { dialectNamed } from '../dialects/registry.js';
import type { ColumnTypes } from '../dialects/types.js';
import { AppvisorError } from '../errors.js';
import type { Dialect, SqlClient } from '../providers/provider.js';
import { columnTypes, insertIfAbsent, TABLES, upsert } from './dialect.js';
import { LEADER } from './lease.js';
import { placeStore } from './placement.js';

export interface Migration {
  readonly version: number;
  readonly description: string;
  /**
   * The statements for one dialect, run in order. MySQL commits each DDL statement at once,
   * so a migration that fails half-way there has run part of its steps: write every step so
   * it can run again (IF NOT EXISTS, …).
   */
  readonly steps: (dialect: Dialect, t: ColumnTypes) => readonly string[];
}

const { meta, apps, secrets, history, lease, replicas, tokens } = TABLES;

/** Every layout change, oldest first. Never edit a released one: add the next version. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'apps, secrets and reconcile history',
    steps: (dialect, t) => {
      const byApp = dialectNamed(dialect).store.index(history, `${history}_app`, ['app', 'id']);
      return [
        `CREATE TABLE IF NOT EXISTS ${apps} (
        name ${t.key} NOT NULL PRIMARY KEY,
        file ${t.text} NOT NULL,
        spec ${t.json} NOT NULL,
        spec_hash ${t.text} NOT NULL,
        inventory ${t.json} NOT NULL,
        has_secret ${t.bool} NOT NULL DEFAULT 0,
        status ${t.text} NOT NULL,
        last_error ${t.json},
        created_at ${t.text} NOT NULL,
        updated_at ${t.text} NOT NULL,
        last_reconciled_at ${t.text}
      )${t.tableOptions}`,
        `CREATE TABLE IF NOT EXISTS ${secrets} (
        name ${t.key} NOT NULL PRIMARY KEY,
        secret ${t.text} NOT NULL,
        created_at ${t.text} NOT NULL
      )${t.tableOptions}`,
        `CREATE TABLE IF NOT EXISTS ${history} (
        id ${t.serialPk},
        app ${t.key} NOT NULL,
        reconcile_id ${t.text} NOT NULL,
        at ${t.text} NOT NULL,
        outcome ${t.text} NOT NULL,
        steps ${t.json} NOT NULL,
        error ${t.json},
        duration_ms ${t.int} NOT NULL${byApp.inline ? `,\n        ${byApp.inline}` : ''}
      )${t.tableOptions}`,
        ...(byApp.statement ? [byApp.statement] : []),
      ];
    },
  },
  {
    version: 2,
    description: "cache of each app's data version (the app's own database stays authoritative)",
    // One statement, so there is nothing half-done to repeat on MySQL.
    steps: (dialect, t) => dialectNamed(dialect).store.addColumns(apps, [`data_version ${t.int}`]),
  },
  {
    version: 3,
    description: "the application owning each app's data, scheduled drops, and operator intent",
    steps: (dialect, t) =>
      dialectNamed(dialect).store.addColumns(apps, [
        `application ${t.text}`,
        `drop_at ${t.text}`,
        `operator_intent ${t.json}`,
      ]),
  },
  {
    version: 4,
    description: 'record versions and the reconcile lock term (fenced writes)',
    // Existing records start at version 1; the term row is inserted on open (see migrate).
    steps: (dialect, t) =>
      dialectNamed(dialect).store.addColumns(apps, [`version ${t.int} NOT NULL DEFAULT 1`]),
  },
  {
    version: 5,
    description: 'replicas: the leader lease, replica heartbeats and shared admin tokens',
    // Times compared across replicas are the database server's milliseconds (one clock for all).
    steps: (_dialect, t) => [
      `CREATE TABLE IF NOT EXISTS ${lease} (
        name ${t.key} NOT NULL PRIMARY KEY,
        holder ${t.text},
        term ${t.int} NOT NULL,
        expires_at ${t.int} NOT NULL,
        acquired_at ${t.text}
      )${t.tableOptions}`,
      `CREATE TABLE IF NOT EXISTS ${replicas} (
        id ${t.key} NOT NULL PRIMARY KEY,
        host ${t.text} NOT NULL,
        pid ${t.int} NOT NULL,
        version ${t.text} NOT NULL,
        started_at ${t.text} NOT NULL,
        last_seen_at ${t.int} NOT NULL,
        info ${t.json} NOT NULL
      )${t.tableOptions}`,
      `CREATE TABLE IF NOT EXISTS ${tokens} (
        name ${t.key} NOT NULL PRIMARY KEY,
        hash ${t.text} NOT NULL,
        scope ${t.text} NOT NULL,
        created_at ${t.text} NOT NULL,
        last_used_at ${t.text}
      )${t.tableOptions}`,
    ],
  },
  {
    version: 6,
    description: 'per-app operations: who acted (history), secret rotation with key ids, revoked tokens',
    // One ALTER per table: on MySQL each commits on its own, and each can run again.
    steps: (dialect, t) => {
      const { addColumns } = dialectNamed(dialect).store;
      return [
        ...addColumns(history, [`by_token ${t.text}`]),
        ...addColumns(secrets, [
          `kid ${t.text}`,
          `previous_secret ${t.text}`,
          `previous_kid ${t.text}`,
          `previous_until ${t.text}`,
        ]),
        ...addColumns(tokens, [`revoked_at ${t.text}`]),
      ];
    },
  },
];

/** The layout version this code reads and writes. */
export const SCHEMA_VERSION = MIGRATIONS.at(-1)!.version;

export interface MigrationResult {
  /** The version found (0: a new store). */
  readonly from: number;
  readonly to: number;
  readonly storeId: string;
  /** PostgreSQL: the schema the store was moved from (see placement.ts). */
  readonly movedFrom?: string;
}

const MIGRATE_LOCK = 'appvisor:migrate';
/**
 * The `appvisor_meta` key where layouts before 5 kept the reconcile lock's term; the lease row
 * (lease.ts) holds it since, and starts from it, so a term never goes back.
 */
const LEGACY_TERM_KEY = 'lock_term';

function metaTableSql(t: ColumnTypes): string {
  return `CREATE TABLE IF NOT EXISTS ${meta} (k ${t.key} NOT NULL PRIMARY KEY, v ${t.text} NOT NULL)${t.tableOptions}`;
}

/** Reads one `appvisor_meta` value. */
export async function readMeta(client: SqlClient, key: string): Promise<string | undefined> {
  const rows = await client.query<{ v: string }>(`SELECT v FROM ${meta} WHERE k = ?`, [key]);
  return rows[0]?.v;
}

/** The version number in `appvisor_meta`, checked against what this code knows. */
export function checkVersion(value: string | undefined, target: string): number {
  const version = value === undefined ? 0 : Number(value);
  if (!Number.isInteger(version) || version < 0) {
    throw new AppvisorError('STATE_STORE_FAILED', {
      target,
      detail: `schema_version ${value} is not a version`,
    });
  }
  if (version > SCHEMA_VERSION) {
    throw new AppvisorError(
      'STATE_STORE_FAILED',
      {
        target,
        detail: `its layout is version ${version}, newer than this appvisor understands (${SCHEMA_VERSION}); upgrade appvisor`,
      },
      { retryable: false },
    );
  }
  return version;
}

/**
 * Brings the store's tables to `SCHEMA_VERSION` (creating them in an empty database, after
 * `placeStore`: `adopt` lets a new store join tables appvisor did not create) and makes sure it
 * has a store id. Safe to run from several processes at once and on every open.
 */
export async function migrate(
  client: SqlClient,
  target: string,
  opts: { readonly adopt?: boolean } = {},
): Promise<MigrationResult> {
  const t = columnTypes(client.dialect);
  return client.transaction(async (tx) => {
    const unlock = await dialectNamed(client.dialect).store.lockForMigration(tx, MIGRATE_LOCK, target);
    try {
      const { movedFrom } = await placeStore(tx, { target, adopt: opts.adopt ?? false });
      await tx.exec(metaTableSql(t));
      const from = checkVersion(await readMeta(tx, 'schema_version'), target);
      for (const migration of MIGRATIONS) {
        if (migration.version <= from) continue;
        for (const step of migration.steps(client.dialect, t)) await tx.exec(step);
        await upsert(tx, meta, 'k', { k: 'schema_version', v: String(migration.version) });
      }
      await insertIfAbsent(tx, meta, 'k', { k: 'store_id', v: crypto.randomBytes(8).toString('hex') });
      const legacyTerm = Number((await readMeta(tx, LEGACY_TERM_KEY)) ?? 0);
      await insertIfAbsent(tx, lease, 'name', {
        name: LEADER,
        holder: null,
        term: Number.isInteger(legacyTerm) ? legacyTerm : 0,
        expires_at: 0,
        acquired_at: null,
      });
      const storeId = await readMeta(tx, 'store_id');
      return { from, to: SCHEMA_VERSION, storeId: storeId!, ...(movedFrom ? { movedFrom } : {}) };
    } finally {
      // A failed release means a dead connection, whose named lock the server drops anyway.
      await unlock().catch(() => undefined);
    }
  });
}
