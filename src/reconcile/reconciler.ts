/**
 * One reconcile of one app (level-based, STYLE.md): read desired state (the manifest cache)
 * and actual state (store + servers + runtime) afresh, plan, execute. Used by `serve` through
 * the queue and by `apply` for every app (both up to `reconcile.concurrency` apps at once).
 */
import type { Logger } from 'pino';
import { AppvisorError } from '../errors.js';
import type { AppManifest, LoadedManifest } from '../manifests/types.js';
import type { ProviderSet } from '../providers/set.js';
import type { AppRecord, Fence, StateStore } from '../state/types.js';
import { type ExecuteResult, type ExecutorDeps, executeApp, type RuntimeControl } from './executor.js';
import { appliedDesired, planFollower } from './follower.js';
import { idleCheck } from './idle.js';
import type { Desired, PlanOptions, RuntimeState, Step } from './model.js';
import { liveObservations, type ObservationSource } from './observation-source.js';
import { observeApp } from './observe.js';
import { applicationFor, isScheduled, planApp } from './planner.js';
import { resolveTarget } from './target.js';

export interface ReconcilerDeps {
  readonly store: StateStore;
  /**
   * The lease term that fences every write of the run (see ExecutorDeps.fence). Undefined on a
   * follower replica: the run converges this replica's runtime to the applied record and writes
   * nothing (SPEC §8.1).
   */
  readonly fence: Fence | undefined;
  readonly providers: ProviderSet;
  /**
   * What the servers hold, for a caller that runs many reconciles: one source lists each
   * server's leftovers once in a while (liveObservations' leftoversFreshMs), not once per app.
   * @default liveObservations(providers), for this run only
   */
  readonly source?: ObservationSource;
  readonly planOptions: PlanOptions;
  /** The current desired state (re-read on every run: it changes as files change). */
  readonly desired: () => Desired;
  readonly runtime?: RuntimeControl & {
    state(name: string): RuntimeState | undefined;
  };
  readonly migrate?: ExecutorDeps['migrate'];
  readonly claimData?: ExecutorDeps['claimData'];
  readonly backupBeforeDrop?: ExecutorDeps['backupBeforeDrop'];
  readonly stepTimeoutMs?: number;
  /** How long a start step waits for the app (see ExecutorDeps.startWaitMs). */
  readonly startWaitMs?: number;
  readonly onStep?: ExecutorDeps['onStep'];
}

export interface ReconcileRun {
  readonly reconcileId: string;
  readonly log: Logger;
  readonly signal?: AbortSignal;
}

/** What one run decided and did. */
export interface ReconcileReport extends ExecuteResult {
  readonly steps: readonly Step[];
  /** When the earliest step left for later (a scheduled drop) is due: reconcile again then. */
  readonly nextDueMs?: number;
}

/**
 * Reconciles `name`: routes it (serve), plans against fresh observations, and carries the plan
 * out. Throws what the executor throws (terminal errors are AppvisorErrors with retryable false).
 */
export async function reconcileApp(
  name: string,
  deps: ReconcilerDeps,
  run: ReconcileRun,
): Promise<ReconcileReport> {
  const opts = run.signal ? { signal: run.signal } : {};
  const record = await deps.store.getRecord(name);
  const follower = deps.fence === undefined;
  // A follower converges to what the leader applied, whatever its own apps.d says. Only a live
  // server runs apps; `apply` does nothing for an invalid manifest, as `plan` shows.
  const desired = follower
    ? appliedDesired(name, record, deps.desired().apps.get(name))
    : deps.runtime
      ? withLastApplied(name, deps.desired(), record)
      : deps.desired();
  const actual = await observeApp(
    name,
    desired,
    {
      store: deps.store,
      source: deps.source ?? liveObservations(deps.providers),
      main: deps.planOptions.main,
      applicationOf: (m) => applicationName(m, deps.planOptions),
      ...(deps.runtime ? { runtime: (n: string) => deps.runtime!.state(n) } : {}),
    },
    record,
    opts,
  );
  const loaded = desired.apps.get(name);
  const target = loaded ? resolveTarget(loaded.manifest, deps.planOptions.main) : undefined;
  const now = Date.now();
  const steps = follower
    ? planFollower(name, record, actual, { ...deps.planOptions, now, storeId: deps.store.storeId }, loaded)
    : planApp(
        name,
        desired,
        {
          apps: new Map([[name, actual]]),
          storeId: deps.store.storeId,
          hasMainSecret: true,
          live: deps.runtime !== undefined,
        },
        { ...deps.planOptions, now },
      );
  // The application the manifest picks owns a new app's data (and empty data that moves).
  const application = loaded
    ? applicationName(loaded.manifest, deps.planOptions)
    : deps.planOptions.application;
  const result = await executeApp(
    {
      name,
      steps,
      loaded,
      actual,
      ...(target && !(target instanceof AppvisorError) ? { target } : {}),
      reconcileId: run.reconcileId,
      ...(run.signal ? { signal: run.signal } : {}),
    },
    {
      store: deps.store,
      fence: deps.fence,
      providers: deps.providers,
      log: run.log,
      ...(deps.stepTimeoutMs !== undefined ? { stepTimeoutMs: deps.stepTimeoutMs } : {}),
      ...(deps.startWaitMs !== undefined ? { startWaitMs: deps.startWaitMs } : {}),
      ...(deps.runtime ? { runtime: deps.runtime } : {}),
      ...(deps.migrate ? { migrate: deps.migrate } : {}),
      ...(deps.claimData ? { claimData: deps.claimData } : {}),
      ...(deps.backupBeforeDrop ? { backupBeforeDrop: deps.backupBeforeDrop } : {}),
      ...(deps.onStep ? { onStep: deps.onStep } : {}),
      ...(application ? { application } : {}),
    },
  );
  const later = steps.filter((s) => isScheduled(s, now)).map((s) => Date.parse(s.dueAt!));
  const idleAt =
    loaded && deps.runtime ? idleRecheck(loaded, deps.runtime.state(name), deps.planOptions) : undefined;
  if (idleAt !== undefined) later.push(idleAt);
  return later.length > 0 ? { ...result, steps, nextDueMs: Math.min(...later) } : { ...result, steps };
}

/** The name of the application `m` picks, if the plan knows it (see applicationFor). */
export function applicationName(m: AppManifest, opts: PlanOptions): string | undefined {
  const application = applicationFor(m, opts);
  return application instanceof AppvisorError ? undefined : application.name;
}

/**
 * When the app, as it is after the run, could be due for its idle stop (ms since the epoch): the
 * run is requeued then, so the stop is planned by a reconcile like any other step.
 */
function idleRecheck(
  loaded: LoadedManifest,
  state: RuntimeState | undefined,
  opts: PlanOptions,
): number | undefined {
  const now = Date.now();
  const check = idleCheck(loaded.manifest, state, { ...opts, now });
  return check.due ? now : check.recheckAt;
}

/**
 * In `serve`, while an app's manifest is invalid, its last applied spec stands in for it (SPEC
 * §4: it keeps running on that spec), so the app stays routed, and a `with-main` app is
 * started, also after a restart of appvisor. Nothing is planned from the broken file itself;
 * the error stays in the caller's desired state for plan, status and the UI.
 */
function withLastApplied(name: string, desired: Desired, record: AppRecord | undefined): Desired {
  if (desired.apps.has(name) || !record || record.status === 'orphaned') return desired;
  const isThis = (f: Desired['invalid'][number]): boolean => f.name === name || f.file === record.file;
  if (!desired.invalid.some(isThis)) return desired;
  const apps = new Map(desired.apps);
  apps.set(name, { file: record.file, manifest: record.spec, hash: record.specHash });
  return { ...desired, apps, invalid: desired.invalid.filter((f) => !isThis(f)) };
}
