import { AppvisorError } from '../errors.js';
import type { LoadedManifest } from '../manifests/types.js';
import type { ProviderSet } from '../providers/set.js';
import type { Application } from '../runtime/contract.js';
import { migrate } from '../runtime/migrations.js';
import type { PlanOptions } from './model.js';
import { resolveTarget } from './target.js';

/**
 * The executor's `upgrade` step: opens the app's database, brings its data to the code's
 * version (honouring `upgrade: false`), closes it, and returns the version reached.
 */
export function createMigrator(options: {
  readonly application: Application;
  readonly providers: ProviderSet;
  readonly main: PlanOptions['main'];
}): (loaded: LoadedManifest, signal: AbortSignal) => Promise<number> {
  return async (loaded, signal) => {
    const m = loaded.manifest;
    const target = resolveTarget(m, options.main);
    if (target instanceof AppvisorError) throw target;
    signal.throwIfAborted();
    const db = await options.providers.forTarget(target).openDatabase(target.database, {
      ...(target.kind === 'schema' ? { schema: target.schema! } : {}),
      maxConnections: 1,
    });
    try {
      const result = await migrate(db.client, options.application.migrations, {
        app: m.name,
        targetVersion: options.application.version,
        allowUpgrade: m.upgrade,
      });
      return result.to;
    } finally {
      await db.client.close();
    }
  };
}
