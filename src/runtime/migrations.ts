/**
 * The migration runner. An app's data version lives in its own database, in the one-row table
 * `appvisor_data_version` (on PostgreSQL schema mode, in the app's schema: the client's
 * search_path is that schema and every name here is unqualified).
 *
 * Outcomes, for data version D and code version C:
 * - no version table (or an empty one): a fresh database. Every migration runs, whatever
 *   `allowUpgrade` says: installing on an empty database is not an upgrade of existing data;
 * - D = C: nothing to do;
 * - D < C: with `allowUpgrade`, the pending migrations run in order; without, APP_NEEDS_UPGRADE;
 * - D > C: APP_DATA_NEWER (old code must not touch newer data).
 *
 * Each migration runs in its own transaction together with the version bump that records it, so
 * a failure leaves the data at the last migration that succeeded and the next run resumes there.
 * MySQL/MariaDB commit DDL implicitly: migrations must be idempotent there.
 *
 * Application identity (SPEC §8.6): `appvisor_application` records which application owns the
 * data, one row per data version it brought the data to (its lineage). Data owned by another
 * application is refused (APP_WRONG_APPLICATION) before any statement that writes; data with no
 * owner recorded (made before appvisor recorded owners) is claimed by the first application that
 * runs on it.
 */
import type { Logger } from 'pino';
import { dialectNamed } from '../dialects/registry.js';
import { AppvisorError } from '../errors.js';
import type { SqlClient } from '../providers/provider.js';
import { tableExists } from '../state/dialect.js';
import type { Migration } from './contract.js';

export const DATA_VERSION_TABLE = 'appvisor_data_version';
export const APPLICATION_TABLE = 'appvisor_application';

export interface MigrateOptions {
  /** The app's name, for errors and logs. */
  readonly app: string;
  /** The code's version (the application's `version`). */
  readonly targetVersion: number;
  /** The manifest's `upgrade`. */
  readonly allowUpgrade: boolean;
  /** The application's name: data owned by another one is refused; unowned data is claimed. */
  readonly application?: string;
  readonly log?: Logger;
  /** Called once before any migration runs (not when the data is current), e.g. to report `upgrading`. */
  readonly onStart?: (plan: MigrationPlan) => void | Promise<void>;
}

/** What `migrate()` will do. */
export interface MigrationPlan {
  /** `install` on a fresh database, `upgrade` from an older data version, `current` when equal. */
  readonly kind: 'install' | 'upgrade' | 'current';
  /** The data version before; 0 on a fresh database. */
  readonly from: number;
  readonly to: number;
  /** Migrations to run, in order. */
  readonly pending: readonly Migration[];
}

export interface AppliedMigration {
  readonly version: number;
  readonly description: string;
  readonly ms: number;
}

export interface MigrateResult {
  /** The data version before; 0 on a fresh database. */
  readonly from: number;
  readonly to: number;
  readonly applied: readonly AppliedMigration[];
}

/**
 * Reads the data version: undefined when the version table is missing (a fresh database), 0 when
 * it exists but holds no row (an install that failed before its first migration).
 */
export async function readDataVersion(db: SqlClient): Promise<number | undefined> {
  if (!(await tableExists(db, DATA_VERSION_TABLE))) return undefined;
  const rows = await db.query<{ version: unknown }>(
    `SELECT MAX(version) AS version FROM ${DATA_VERSION_TABLE}`,
  );
  const version = rows[0]?.version;
  return version === null || version === undefined ? 0 : Number(version);
}

/**
 * Decides what to do for data version `dataVersion` (undefined or 0: fresh). Pure; throws
 * APP_NEEDS_UPGRADE or APP_DATA_NEWER.
 */
export function planMigrations(
  dataVersion: number | undefined,
  migrations: readonly Migration[],
  options: Pick<MigrateOptions, 'app' | 'targetVersion' | 'allowUpgrade'>,
): MigrationPlan {
  const from = dataVersion ?? 0;
  const to = options.targetVersion;
  const params = { app: options.app, dataVersion: from, codeVersion: to };
  if (from > to) throw new AppvisorError('APP_DATA_NEWER', params);
  if (from === to) return { kind: 'current', from, to, pending: [] };
  const kind = from === 0 ? 'install' : 'upgrade';
  if (kind === 'upgrade' && !options.allowUpgrade) throw new AppvisorError('APP_NEEDS_UPGRADE', params);
  return { kind, from, to, pending: migrations.filter((m) => m.version > from && m.version <= to) };
}

/**
 * The application that owns the data, or undefined when none is recorded (a fresh database, or
 * data made before appvisor recorded owners).
 */
export async function readApplication(db: SqlClient): Promise<string | undefined> {
  if (!(await tableExists(db, APPLICATION_TABLE))) return undefined;
  const rows = await db.query<{ name: unknown }>(
    `SELECT name FROM ${APPLICATION_TABLE} ORDER BY version DESC LIMIT 1`,
  );
  const name = rows[0]?.name;
  return name === undefined || name === null ? undefined : String(name);
}

/**
 * Claims the data for `application`: throws APP_WRONG_APPLICATION when another one owns it
 * (before writing anything), marks it when no owner is recorded, does nothing when it is ours.
 */
export async function claimApplication(db: SqlClient, app: string, application: string): Promise<void> {
  const owner = await ownerFor(db, app, application);
  if (owner === undefined) await recordApplication(db, application, (await readDataVersion(db)) ?? 0);
}

/** The recorded owner (undefined: none), after refusing one that is not `application`. */
async function ownerFor(db: SqlClient, app: string, application: string): Promise<string | undefined> {
  const owner = await readApplication(db);
  refuseOtherOwner(owner, app, application);
  return owner;
}

function refuseOtherOwner(owner: string | undefined, app: string, application: string): void {
  if (owner !== undefined && owner !== application) {
    throw new AppvisorError('APP_WRONG_APPLICATION', { app, data: owner, code: application });
  }
}

/**
 * The data version and owner in one round trip, for the common case of a boot on installed
 * data where both tables exist; undefined when the query fails (a table is missing: a fresh
 * database, or data from before owners were recorded), and the caller reads them one by one.
 * A cold start on a shared connection pays per round trip, so this saves three of the four.
 */
async function readVersionAndOwner(
  db: SqlClient,
): Promise<{ version: number; owner: string | undefined } | undefined> {
  let rows: { version: unknown; name: unknown }[];
  try {
    rows = await db.query(
      `SELECT (SELECT MAX(version) FROM ${DATA_VERSION_TABLE}) AS version, (SELECT name FROM ${APPLICATION_TABLE} ORDER BY version DESC LIMIT 1) AS name`,
    );
  } catch {
    return undefined;
  }
  const { version, name } = rows[0] ?? {};
  return {
    version: version === null || version === undefined ? 0 : Number(version),
    owner: name === null || name === undefined ? undefined : String(name),
  };
}

/** Records that `application` brought the data to `version` (the lineage grows by one row). */
export async function recordApplication(db: SqlClient, application: string, version: number): Promise<void> {
  await db.exec(
    `CREATE TABLE IF NOT EXISTS ${APPLICATION_TABLE} (name VARCHAR(200) NOT NULL, version INTEGER NOT NULL, at VARCHAR(40) NOT NULL)`,
  );
  await db.query(`INSERT INTO ${APPLICATION_TABLE} (name, version, at) VALUES (?, ?, ?)`, [
    application,
    version,
    new Date().toISOString(),
  ]);
}

export interface CheckDataOptions {
  /** The app's name, for errors. */
  readonly app: string;
  /** The code's version (the application's `version`). */
  readonly targetVersion: number;
  /** The application's name: data owned by another one is refused. */
  readonly application?: string;
}

/**
 * What a boot does with the data instead of migrating (the reconciler's upgrade step migrates):
 * reads the owner and the data version and writes nothing. Returns the data version when it is
 * the code's; throws APP_WRONG_APPLICATION for another application's data, APP_DATA_NEWER for
 * data newer than the code and APP_NEEDS_UPGRADE for older data (a fresh database included:
 * data version 0, not installed yet).
 */
export async function checkDataVersion(db: SqlClient, options: CheckDataOptions): Promise<number> {
  const recorded = await readVersionAndOwner(db);
  if (options.application !== undefined) {
    const owner = recorded ? recorded.owner : await readApplication(db);
    refuseOtherOwner(owner, options.app, options.application);
  }
  const from = (recorded ? recorded.version : await readDataVersion(db)) ?? 0;
  const params = { app: options.app, dataVersion: from, codeVersion: options.targetVersion };
  if (from > options.targetVersion) throw new AppvisorError('APP_DATA_NEWER', params);
  if (from < options.targetVersion) throw new AppvisorError('APP_NEEDS_UPGRADE', params);
  return from;
}

/** Brings the app's data to `targetVersion` (see the module comment for the outcomes). */
export async function migrate(
  db: SqlClient,
  migrations: readonly Migration[],
  options: MigrateOptions,
): Promise<MigrateResult> {
  // Before anything that writes: another application's data is never touched.
  const owner =
    options.application === undefined ? undefined : await ownerFor(db, options.app, options.application);
  const plan = planMigrations(await readDataVersion(db), migrations, options);
  const claim = options.application !== undefined && owner === undefined;
  if (plan.kind === 'current') {
    if (claim) {
      await recordApplication(db, options.application!, plan.to);
      options.log?.info(
        { application: options.application },
        'data claimed by this application (no owner was recorded)',
      );
    }
    return { from: plan.from, to: plan.to, applied: [] };
  }

  const log = options.log;
  log?.info(
    { from: plan.from, to: plan.to, pending: plan.pending.map((m) => m.version) },
    `${plan.kind} starts`,
  );
  await options.onStart?.(plan);

  const applied: AppliedMigration[] = [];
  for (const migration of plan.pending) {
    const started = performance.now();
    const ran = await oneProcessAtATime(db, options.app, async (tx) => {
      // Another replica (booting the main app at the same moment) may have run it meanwhile.
      const now = await readDataVersion(tx);
      if (now !== undefined && now >= migration.version) return false;
      await migration.up(tx);
      await writeDataVersion(tx, migration.version);
      return true;
    });
    if (!ran) continue;
    const ms = Math.round(performance.now() - started);
    applied.push({ version: migration.version, description: migration.description, ms });
    log?.info({ version: migration.version, description: migration.description, ms }, 'migration applied');
  }
  // A code version may bump without a schema change: record it too.
  if (applied.at(-1)?.version !== plan.to) {
    await oneProcessAtATime(db, options.app, async (tx) => {
      // Never back: another process with newer code may have gone further meanwhile.
      if (((await readDataVersion(tx)) ?? 0) < plan.to) await writeDataVersion(tx, plan.to);
    });
  }
  if (options.application !== undefined) await recordApplication(db, options.application, plan.to);
  log?.info({ from: plan.from, to: plan.to }, `${plan.kind} done`);
  return { from: plan.from, to: plan.to, applied };
}

/**
 * Runs one migration's transaction under a lock on the app's data, so two processes migrating
 * the same data at once (replicas booting the main app together) run each step once: the second
 * waits, then finds it done. The version table is made under the same lock: PostgreSQL's
 * `CREATE TABLE IF NOT EXISTS` is not safe against a concurrent one (a duplicate pg_type row).
 */
function oneProcessAtATime<T>(db: SqlClient, app: string, fn: (tx: SqlClient) => Promise<T>): Promise<T> {
  return db.transaction(async (tx) => {
    const unlock = await dialectNamed(db.dialect).store.lockForMigration(tx, `appvisor:data:${app}`, app);
    try {
      // On MySQL this DDL commits what came before it; the named lock outlives that commit.
      await tx.exec(`CREATE TABLE IF NOT EXISTS ${DATA_VERSION_TABLE} (version INTEGER NOT NULL)`);
      return await fn(tx);
    } finally {
      await unlock().catch(() => undefined);
    }
  });
}

async function writeDataVersion(tx: SqlClient, version: number): Promise<void> {
  await tx.query(`DELETE FROM ${DATA_VERSION_TABLE}`);
  await tx.query(`INSERT INTO ${DATA_VERSION_TABLE} (version) VALUES (?)`, [version]);
}
