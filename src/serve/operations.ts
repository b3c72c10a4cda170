/**
 * Backup, restore and clone on a running server (SPEC §8.4), for the admin API: the same
 * operations as the CLI's (src/ops/), run by the leader, each serialized with the app's
 * reconciles (`ReconcileQueue.exclusive`), writing under the leader's term.
 *
 * Around a restore's swap the app is stopped on every replica: the record says `upgrading` (a
 * follower stops its instance and holds visits, as for the leader's migration), this replica
 * stops its own the same way, and once the data is in place the record gets its status back,
 * which every replica's next reconcile follows (the app starts again as its start mode says).
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { AdminOperations } from '../admin/types.js';
import type { Settings } from '../config/types.js';
import { AppvisorError } from '../errors.js';
import { readArchiveMeta } from '../ops/archive.js';
import { type BackupResult, backup, defaultBackupName } from '../ops/backup.js';
import { clone } from '../ops/clone.js';
import { backupsDirOf, type OpsContext } from '../ops/context.js';
import { type RestoreOptions, type RestoreResult, restore } from '../ops/restore.js';
import { transferForTarget } from '../ops/transfers.js';
import type { ProviderSet } from '../providers/set.js';
import { leaseHeld } from '../reconcile/lease.js';
import type { PlanOptions } from '../reconcile/model.js';
import type { ReconcileQueue, Reconciler } from '../reconcile/queue.js';
import type { ApplicationSet } from '../runtime/applications.js';
import type { Application } from '../runtime/contract.js';
import type { Runtime } from '../runtime/runtime.js';
import type { MasterKey } from '../secrets/envelope.js';
import type { AppStatus, StateStore } from '../state/types.js';
import type { LockTerm } from './leadership.js';

export interface ServerOperations extends AdminOperations {
  backup(name: string, out: string, by: string): Promise<BackupResult & { readonly name: string }>;
  restore(
    file: string,
    into: string,
    opts: Pick<RestoreOptions, 'keepSecret'>,
    by: string,
  ): Promise<RestoreResult>;
  clone(
    src: string,
    dest: string,
    opts: { readonly keepSecret?: boolean },
    by: string,
  ): Promise<RestoreResult>;
}

export interface ServerOperationsDeps {
  readonly settings: Settings;
  readonly env?: NodeJS.ProcessEnv;
  readonly log: Logger;
  readonly store: () => StateStore;
  readonly providers: () => ProviderSet;
  readonly runtime: () => Runtime;
  readonly queue: () => ReconcileQueue | undefined;
  /** The app reconciler the queue runs (a clone's new app is reconciled with it, in place). */
  readonly reconciler: () => Reconciler;
  /** Reads apps.d again (a clone has just written its manifest). */
  readonly reloadManifests: () => Promise<void>;
  /** The leader's term while this replica leads. */
  readonly term: () => LockTerm | undefined;
  readonly application: Application;
  /** Every application: each app's own decides its backups and restores. */
  readonly applications?: ApplicationSet;
  readonly planOptions: PlanOptions;
  /** The key the store was opened with (archives seal the app's secret under it). */
  readonly masterKey: () => MasterKey;
  /** Tells the other replicas that these records changed. */
  readonly announce: (names: readonly string[]) => void;
}

export function createServerOperations(deps: ServerOperationsDeps): ServerOperations {
  const { settings, log } = deps;

  /** The leader's term, or LOCK_HELD naming the leader: operations are the leader's work. */
  const leaderTerm = async (what: string): Promise<LockTerm> => {
    const term = deps.term();
    if (term) return term;
    const holder = (
      await deps
        .store()
        .readLease()
        .catch(() => undefined)
    )?.holder;
    throw leaseHeld(deps.store().target, holder, 0, `; ${what} is carried out by the leader: send it there`);
  };

  /** Runs `work` on app `name` while none of its reconciles runs. */
  const exclusive = <T>(name: string, work: (signal: AbortSignal) => Promise<T>): Promise<T> => {
    const queue = deps.queue();
    if (!queue) throw new AppvisorError('APP_STARTING', { app: name });
    return queue.exclusive(name, work);
  };

  const contextFor = (term: LockTerm, signal: AbortSignal, by: string): OpsContext => {
    const store = deps.store();
    const stopped = new Map<string, { restart: () => Promise<void> }>();
    return {
      store,
      fence: term.fence,
      providers: deps.providers(),
      main: deps.planOptions.main,
      application: deps.application,
      ...(deps.applications ? { applications: deps.applications } : {}),
      masterKey: deps.masterKey(),
      appsDir: settings.appsDir,
      backupsDir: backupsDirOf(settings),
      transferFor: transferForTarget(settings),
      // A clone's new app, reconciled here and now: the operation holds its key already.
      reconcile: async (name) => {
        await deps.reloadManifests();
        const reconcileId = randomBytes(4).toString('hex');
        await deps.reconciler()(name, { signal, log: log.child({ app: name, reconcileId }), reconcileId });
      },
      stopApp: async (name) => {
        stopped.set(name, await stopEverywhere(name, term, store));
      },
      startApp: async (name) => {
        await stopped.get(name)?.restart();
        stopped.delete(name);
      },
      log,
      by,
      signal: AbortSignal.any([signal, term.signal]),
    };
  };

  /**
   * The app stopped on every replica for a swap: `upgrading` on its record for the followers,
   * and this replica's instance stopped with visits held. `restart` gives the record its status
   * back and lets the instance go (its next route starts it as its start mode says).
   */
  const stopEverywhere = async (
    name: string,
    term: LockTerm,
    store: StateStore,
  ): Promise<{ restart: () => Promise<void> }> => {
    const record = await store.getRecord(name);
    let before: AppStatus | undefined;
    if (record) {
      before = record.status;
      await store.putRecord(
        { ...record, status: 'upgrading', updatedAt: new Date().toISOString() },
        term.fence,
      );
      deps.announce([name]);
    }
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let isStopped!: () => void;
    const stoppedHere = new Promise<void>((resolve) => {
      isStopped = resolve;
    });
    const held = deps.runtime().upgrading(name, () => {
      isStopped();
      return released;
    });
    // A stop that fails (the app was never up here) still lets the swap go on.
    held.catch(() => isStopped());
    await stoppedHere;
    return {
      restart: async () => {
        release();
        await held.catch(() => undefined);
        const now = await store.getRecord(name);
        if (now && before !== undefined && now.status === 'upgrading') {
          await store.putRecord({ ...now, status: before, updatedAt: new Date().toISOString() }, term.fence);
        }
        deps.announce([name]);
      },
    };
  };

  return {
    async backup(name, out, by) {
      const term = await leaderTerm('a backup');
      const result = await exclusive(name, async (signal) =>
        backup(contextFor(term, signal, by), name, out, 'a download over the admin API'),
      );
      return { ...result, name: defaultBackupName(name, new Date(result.meta.createdAt)) };
    },
    async restore(file, into, opts, by) {
      const term = await leaderTerm('a restore');
      // Into the archive's own app, or a new app of another name (a clone).
      const from = (await readArchiveMeta(file)).app;
      const restoreOpts: RestoreOptions =
        from === into ? {} : { as: into, ...(opts.keepSecret ? { keepSecret: true } : {}) };
      return exclusive(into, async (signal) => restore(contextFor(term, signal, by), file, restoreOpts));
    },
    async clone(src, dest, opts, by) {
      const term = await leaderTerm('a clone');
      // The source is only read (a backup); the new app's key is held while it is made.
      return exclusive(dest, async (signal) =>
        clone(contextFor(term, signal, by), src, dest, opts.keepSecret ? { keepSecret: true } : {}),
      );
    },
  };
}
