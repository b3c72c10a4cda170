/**
 * The backup a scheduled drop takes first (SPEC §8.6), for the executor's `backupBeforeDrop`:
 * into the backups folder, named in the drop step's log line and history detail. A failed backup
 * fails the drop step (retried with backoff), so an app's data is never dropped without one.
 */
import type { Logger } from 'pino';
import type { Settings } from '../config/types.js';
import type { ProviderSet } from '../providers/set.js';
import type { PlanOptions } from '../reconcile/model.js';
import type { ApplicationSet } from '../runtime/applications.js';
import type { Application } from '../runtime/contract.js';
import type { MasterKey } from '../secrets/envelope.js';
import type { StateStore } from '../state/types.js';
import { backup } from './backup.js';
import { backupsDirOf } from './context.js';
import { transferForTarget } from './transfers.js';

export interface DropBackupDeps {
  readonly settings: Settings;
  readonly store: StateStore;
  readonly providers: ProviderSet;
  readonly main: PlanOptions['main'];
  readonly application: Application;
  /** Every application: each app's backup records its own. */
  readonly applications?: ApplicationSet;
  readonly log: Logger;
  /** The key the store was opened with: the archive's secret is sealed under it. */
  readonly masterKey: MasterKey;
}

/** The executor's `backupBeforeDrop` for these settings: resolves with the archive written. */
export function createDropBackup(
  deps: DropBackupDeps,
): (name: string, signal: AbortSignal | undefined) => Promise<string> {
  const { settings } = deps;
  return async (name, signal) => {
    const result = await backup(
      {
        store: deps.store,
        providers: deps.providers,
        main: deps.main,
        application: deps.application,
        ...(deps.applications ? { applications: deps.applications } : {}),
        masterKey: deps.masterKey,
        backupsDir: backupsDirOf(settings),
        transferFor: transferForTarget(settings),
        log: deps.log,
        ...(signal ? { signal } : {}),
      },
      name,
    );
    return result.file;
  };
}
