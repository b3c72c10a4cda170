import { AppvisorError, codeOf } from '../errors.js';
import type { LoadedManifest } from '../manifests/types.js';
import { translateDbError } from '../providers/errors.js';
import type { SqlClient } from '../providers/provider.js';
import type { ProviderSet } from '../providers/set.js';
import { moveApplication } from '../runtime/application-move.js';
import type { ApplicationSet } from '../runtime/applications.js';
import { claimApplication, migrate, readDataVersion } from '../runtime/migrations.js';
import type { PlanOptions } from './model.js';
import { resolveTarget } from './target.js';

interface AppDataOptions {
  /** Each app's data is migrated and claimed by its own application (its manifest's). */
  readonly applications: ApplicationSet;
  readonly providers: ProviderSet;
  readonly main: PlanOptions['main'];
}

/**
 * Runs `work` on one connection to the app's database (the provider's own where it can lend
 * one, see Provider.withConnection). The client throws its driver's errors; they leave here
 * translated (DB_UNREACHABLE, DB_PERMISSION_DENIED, DB_OPERATION_FAILED), never with the
 * driver's own code.
 */
async function withAppDatabase<T>(
  options: AppDataOptions,
  loaded: LoadedManifest,
  signal: AbortSignal,
  operation: string,
  work: (client: SqlClient) => Promise<T>,
): Promise<T> {
  const target = resolveTarget(loaded.manifest, options.main);
  if (target instanceof AppvisorError) throw target;
  signal.throwIfAborted();
  const scope = target.kind === 'schema' ? { schema: target.schema! } : {};
  try {
    return await options.providers.forTarget(target).withConnection(target.database, scope, work);
  } catch (err) {
    throw translateDbError(err, {
      dialect: target.dialect,
      server: target.server,
      operation: `${operation} for app ${loaded.manifest.name}`,
    });
  }
}

/**
 * The executor's `upgrade` step, the only place app data is migrated (a boot only checks):
 * opens the app's database, brings its data to the code's version (installs a fresh one;
 * honours `upgrade: false` for existing data; refuses another application's data), closes it,
 * and returns the version the data is at. An install planned for `upgrade: false` that finds
 * older data (no version was recorded) leaves it as it is: the app's boot says needs-upgrade.
 */
export function createMigrator(
  options: AppDataOptions,
): (loaded: LoadedManifest, signal: AbortSignal) => Promise<number> {
  return (loaded, signal) =>
    withAppDatabase(options, loaded, signal, 'upgrade', async (client) => {
      const m = loaded.manifest;
      const { application } = options.applications.of(m);
      try {
        const result = await migrate(client, application.migrations, {
          app: m.name,
          targetVersion: application.version,
          allowUpgrade: m.upgrade,
          application: application.name,
        });
        return result.to;
      } catch (err) {
        if (codeOf(err) !== 'APP_NEEDS_UPGRADE') throw err;
        return (await readDataVersion(client)) ?? 0;
      }
    });
}

/**
 * The executor's claim (an `update-record` for a record with no owning application): the app's
 * own database decides, so data that another application marked is refused even when the
 * record lost track of it, and unmarked data is marked as this application's. With `moveFrom`,
 * the app's empty data moves from that application to the manifest's (refused unless empty).
 */
export function createDataClaimer(
  options: AppDataOptions,
): (loaded: LoadedManifest, signal: AbortSignal, moveFrom?: string) => Promise<void> {
  return (loaded, signal, moveFrom) =>
    withAppDatabase(options, loaded, signal, 'claim', (client) => {
      const m = loaded.manifest;
      const { name } = options.applications.of(m).application;
      // Empty data moving to another application: checked again right before the write.
      return moveFrom === undefined
        ? claimApplication(client, m.name, name)
        : moveApplication(client, m.name, moveFrom, name);
    });
}
