/**
 * The queue's reconcile function in `serve`: one app's run, as the leader under the lease's term or as a follower, with
 * the bookkeeping around it (the last error per app for the admin API, the record names, and the
 * requeue of a scheduled drop).
 */

import { setImmediate as nextTurn } from 'node:timers/promises';
import { codeOf, type ErrorSummary, messageOf, summaryOf } from '../errors.js';
import type { ProviderSet } from '../providers/set.js';
import type { createDataClaimer, createMigrator } from '../reconcile/migrate.js';
import type { PlanOptions } from '../reconcile/model.js';
import { liveObservations, SHARED_LEFTOVERS_FRESH_MS } from '../reconcile/observation-source.js';
import type { Reconciler } from '../reconcile/queue.js';
import { reconcileApp } from '../reconcile/reconciler.js';
import type { Runtime } from '../runtime/runtime.js';
import type { StateStore } from '../state/types.js';
import type { ChangeFeed } from './change-feed.js';
import type { DesiredState } from './desired-state.js';
import { type Drift, driftOf } from './drift.js';
import type { Leadership } from './leadership.js';

/** How often an upgrade held back by an older replica is looked at again. */
const HELD_BACK_RECHECK_MS = 1_000;

/** The longest a scheduled drop's reconcile waits before it looks again. */
const MAX_REQUEUE_MS = 3_600_000;

/** The last failure of an app's reconcile, until one succeeds. */
export type ReconcileErrors = Map<string, ErrorSummary>;

export interface AppReconcilerDeps {
  /** Whether this replica leads (and so provisions) now, and the term it does it under. */
  readonly leadership: Pick<Leadership, 'term'>;
  /** Told the version of every record this replica wrote, so its own writes come back as no news. */
  readonly feed?: Pick<ChangeFeed, 'note'>;
  /** Where a follower notes how its apps.d differs from what is applied. */
  readonly drift?: Drift;
  /**
   * The live replica running an older application version than this one, if any: the leader
   * does not migrate data past it (a rolling upgrade).
   */
  readonly upgradeHeldBy?: () => Promise<PlanOptions['upgradeHeldBy']>;
  /** The same for each named application, by settings key (SPEC §8.6). */
  readonly applicationsHeldBy?: () => Promise<ReadonlyMap<string, PlanOptions['upgradeHeldBy']>>;
  readonly store: StateStore;
  readonly providers: ProviderSet;
  readonly planOptions: PlanOptions;
  readonly desired: DesiredState;
  readonly runtime: Runtime;
  readonly migrate: ReturnType<typeof createMigrator>;
  readonly claimData: ReturnType<typeof createDataClaimer>;
  /** Backs an app up before its scheduled drop (src/ops/drop-backup.ts). */
  readonly backupBeforeDrop?: (name: string, signal: AbortSignal | undefined) => Promise<string>;
  readonly stepTimeoutMs: number;
  /** Written by every run: its error, or none once it succeeded. */
  readonly errors: ReconcileErrors;
}

export function createAppReconciler(deps: AppReconcilerDeps): Reconciler {
  const { leadership, desired, errors } = deps;
  // One source for every app's runs: a server's leftovers are listed once in a while, not once
  // per app (the first reconcile of a fleet runs every app's at once).
  const source = liveObservations(deps.providers, { leftoversFreshMs: SHARED_LEFTOVERS_FRESH_MS });
  return async (name, ctx) => {
    // A turn of the event loop first: a burst of runs (a fleet's first reconcile, whose SQLite
    // observations are synchronous) lets requests and timers in between them instead of holding
    // the loop for its whole length (2,000 apps: 6 s without an answer to healthz).
    await nextTurn();
    try {
      // The leader provisions under its term; a follower converges its runtime to the applied
      // record and writes nothing. Losing the lease aborts the leader's run.
      const term = leadership.term();
      // The leader holds a migration back for it; a follower on newer code waits for it to go.
      const upgradeHeldBy = await deps.upgradeHeldBy?.();
      const planOptions = withHolds(
        upgradeHeldBy ? { ...deps.planOptions, upgradeHeldBy } : deps.planOptions,
        await deps.applicationsHeldBy?.(),
      );
      const report = await reconcileApp(
        name,
        {
          store: deps.store,
          fence: term?.fence,
          providers: deps.providers,
          source,
          planOptions,
          desired: () => desired.current,
          runtime: deps.runtime,
          migrate: deps.migrate,
          claimData: deps.claimData,
          ...(deps.backupBeforeDrop ? { backupBeforeDrop: deps.backupBeforeDrop } : {}),
          stepTimeoutMs: deps.stepTimeoutMs,
        },
        // Losing the lease aborts the run; its fenced writes are refused anyway.
        { ...ctx, signal: term ? AbortSignal.any([ctx.signal, term.signal]) : ctx.signal },
      );
      errors.delete(name);
      if (report.record) desired.noteRecord(name);
      if (term) deps.feed?.note(name, report.record?.version);
      deps.drift?.set(name, term ? undefined : driftOf(name, desired.current, report.record));
      // A scheduled drop is carried out by the run at its time (the resync is only the net).
      // Capped: a timer beyond ~24.8 days fires at once in Node, and a long one is no loss (the
      // next run simply schedules the rest).
      // A start still under way is looked at again at its deadline: progress, not a failure.
      const next = Math.min(
        report.nextDueMs ?? Number.POSITIVE_INFINITY,
        report.startPendingUntil ?? Number.POSITIVE_INFINITY,
      );
      if (next !== Number.POSITIVE_INFINITY) {
        const dueInMs = Math.max(0, next - Date.now());
        return {
          requeueAfterMs: Math.min(MAX_REQUEUE_MS, dueInMs),
          ...(report.startPendingUntil !== undefined ? { inProgress: true } : {}),
        };
      }
      return undefined;
    } catch (err) {
      // The record moved on under the run (an operator's intent written meanwhile), or the run's
      // lock was lost: not the app's failure. Nothing of the stale run was written; it runs again
      // at once, on the new record and under a lock taken again.
      const code = codeOf(err);
      if (code === 'STATE_CONFLICT' || code === 'LOCK_LOST') {
        ctx.log.info({ err: messageOf(err) }, 'the run was overtaken; reconciling again');
        return { requeueAfterMs: 0, inProgress: true };
      }
      errors.set(name, summaryOf(err, 'APP_ERROR', { app: name }));
      // Not a failure to back off from: it is looked at again soon, and migrates once the older
      // replica is gone (replaced, or no longer seen).
      if (code === 'UPGRADE_HELD_BACK') return { requeueAfterMs: HELD_BACK_RECHECK_MS };
      throw err;
    }
  };
}

/** `opts` with each named application's upgrade hold (none: as they are). */
function withHolds(
  opts: PlanOptions,
  holds: ReadonlyMap<string, PlanOptions['upgradeHeldBy']> | undefined,
): PlanOptions {
  const named = opts.applications;
  if (!named || !holds || ![...holds.values()].some((h) => h !== undefined)) return opts;
  const applications = new Map(
    [...named].map(([key, a]) => {
      const held = holds.get(key);
      return [key, held ? { ...a, upgradeHeldBy: held } : a] as const;
    }),
  );
  return { ...opts, applications };
}
