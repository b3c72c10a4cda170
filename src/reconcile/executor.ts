/**
 * The executor: carries out one app's planned steps, in order, each bounded by a timeout, and
 * records every outcome in the state store. Creation is journalled: the inventory item is
 * written as `creating` *before* the CREATE runs, so a process killed in between finds, on its
 * next run, an object carrying its own marker and a record saying it was on the way — never
 * a foreign object it would have to guess about. The run's last writes (the record with its
 * inventory, and the history entry) go in one transaction.
 */
import type { Logger } from 'pino';
import { AppvisorError, type ErrorCode, type ErrorSummary, messageOf, toAppvisorError } from '../errors.js';
import type { LoadedManifest } from '../manifests/types.js';
import { abortable } from '../providers/abort.js';
import { translateDbError } from '../providers/errors.js';
import type { OperationResult } from '../providers/provider.js';
import { generateSecret } from '../providers/secrets.js';
import type { ProviderSet } from '../providers/set.js';
import {
  type AppRecord,
  type AppStatus,
  type Fence,
  type HistoryEntry,
  type InventoryItem,
  MAIN_APP,
  type OperatorIntent,
  type ReconcileOutcome,
  type StateStore,
} from '../state/types.js';
import { RUNTIME_ACTIONS } from './follower.js';
import type { ActualApp, DatabaseTarget, Step } from './model.js';
import { ownerMarker } from './owner.js';
import { isScheduled } from './planner.js';
import { isTargetOf } from './target.js';

/**
 * What a step did. `scheduled`: a drop whose time has not come; it stays in the plan.
 * `in-progress`: a start that was not done within the executor's wait; the run asks to be
 * requeued at the start's deadline.
 */
export type StepResult =
  | OperationResult
  | 'updated'
  | 'skipped'
  | 'refused'
  | 'failed'
  | 'scheduled'
  | 'in-progress';

export interface StepOutcome {
  readonly step: Step;
  readonly result: StepResult;
  readonly message?: string;
  readonly ms: number;
}

/** The runtime operations the executor drives in `serve` (absent for the CLI's apply). */
export interface RuntimeControl {
  /**
   * Makes the app routable on this spec; `intent` is the operator's last start/stop (a stop
   * answers visits with APP_STOPPED); `blocked`: nothing may run on its data, visits get this error.
   */
  route(
    loaded: LoadedManifest,
    target: DatabaseTarget,
    intent: OperatorIntent | undefined,
    blocked?: AppvisorError,
  ): void;
  unroute(name: string): Promise<void>;
  /**
   * Starts the app on its current spec and resolves when it runs; rejects with the start's error.
   * A failed or stopped instance gets a fresh start; one starting on this spec is joined.
   */
  start(name: string): Promise<void>;
  /** While a start of `name` is under way: when it gives up (ms since the epoch). */
  startDeadline?(name: string): number | undefined;
  stop(name: string): Promise<void>;
  /**
   * The idle stop: stops the app, with reason `idle`, unless a request or WebSocket is open or
   * one ended after `idleSince` (the activity the plan saw). Resolves false when it kept running.
   */
  stopIdle?(name: string, idleSince: number): Promise<boolean>;
  /**
   * Runs the app's migrations (`work`) with the app shown as `upgrading` (SPEC §7): nothing runs
   * on its data meanwhile, and a visit waits for the migration instead of booting on old data.
   */
  upgrading?<T>(name: string, work: () => Promise<T>): Promise<T>;
  /**
   * A follower's side of the leader's migration: the app is stopped here and shown `upgrading`,
   * and visits wait (bounded by the start timeout) until its next route, after the migration.
   */
  awaitUpgrade?(name: string): Promise<void>;
}

/** How long a start step waits for the app to run before the run is requeued instead. */
export const DEFAULT_START_WAIT_MS = 1_000;

export interface ExecutorDeps {
  readonly store: StateStore;
  /**
   * The lock term every write of this run is fenced by: a run that lost its lock writes nothing.
   * Undefined for a follower replica's run (SPEC §8.1): it carries out runtime steps only and
   * writes nothing at all to the store.
   */
  readonly fence: Fence | undefined;
  readonly providers: ProviderSet;
  readonly log: Logger;
  /** @default 60000 */
  readonly stepTimeoutMs?: number;
  /**
   * A start step waits this long for the app to run; a start still under way then is left to
   * run, and the result asks for a reconcile at its deadline. @default 1000
   */
  readonly startWaitMs?: number;
  readonly runtime?: RuntimeControl;
  /** Runs the app's migrations on its database; returns the data version reached. */
  readonly migrate?: (loaded: LoadedManifest, signal: AbortSignal) => Promise<number>;
  /** Checks and marks the owner recorded in the app's database (a claim). */
  readonly claimData?: (loaded: LoadedManifest, signal: AbortSignal, moveFrom?: string) => Promise<void>;
  /** Called after each step (progress output). */
  readonly onStep?: (outcome: StepOutcome) => void;
  readonly now?: () => Date;
  /**
   * The name of the application the app's manifest picks, recorded as the owner of the app's data
   * on every record written.
   */
  readonly application?: string;
  /**
   * Backs the app up before a scheduled drop (SPEC §8.6) and resolves with the archive's path;
   * a rejection fails the drop step, which is retried, so nothing is dropped without a backup.
   * `serve` and `apply` always give it (src/ops/drop-backup.ts); absent only in unit tests.
   */
  readonly backupBeforeDrop?: (name: string, signal: AbortSignal | undefined) => Promise<string>;
}

export interface ExecuteInput {
  readonly name: string;
  readonly steps: readonly Step[];
  /** The valid manifest, when there is one. */
  readonly loaded: LoadedManifest | undefined;
  readonly actual: ActualApp;
  /** Where the manifest's database lives (undefined when it cannot be resolved). */
  readonly target?: DatabaseTarget;
  readonly reconcileId: string;
  readonly signal?: AbortSignal;
}

export interface ExecuteResult {
  readonly outcomes: readonly StepOutcome[];
  readonly outcome: ReconcileOutcome;
  readonly record: AppRecord | undefined;
  /**
   * Set when a start was still under way at the end of its wait: when it gives up (ms since the
   * epoch). Reconcile again then; it is progress, not a failure.
   */
  readonly startPendingUntil?: number;
}

/** Rejects when `signal` aborts or `ms` passes, whichever first; the work is not cancelled. */
async function bounded<T>(
  work: (signal: AbortSignal) => Promise<T>,
  ms: number,
  outer: AbortSignal | undefined,
  what: { step: string; app: string },
): Promise<T> {
  const timeout = AbortSignal.timeout(ms);
  const signal = outer ? AbortSignal.any([outer, timeout]) : timeout;
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () =>
      reject(
        timeout.aborted
          ? new AppvisorError('STEP_TIMEOUT', { ...what, ms })
          : (outer?.reason ?? new AppvisorError('STEP_TIMEOUT', { ...what, ms })),
      );
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([work(signal), aborted]);
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}

/**
 * Failures of the run's own writes that say nothing about the app: the record changed under the
 * run (an operator's intent), or the lock was lost. Nothing more is written for them, not even
 * the error: the next run, which reads afresh, decides.
 */
const UNRECORDED: ReadonlySet<ErrorCode> = new Set(['STATE_CONFLICT', 'LOCK_LOST']);

/** Refusals that are reported while the rest of the app's steps go on (nothing else is refused). */
const REPORTED_REFUSALS: ReadonlySet<ErrorCode> = new Set(['DROP_REFUSED', 'EMPTY_SET_GUARD']);

/**
 * A run's failure in registry terms, as it is recorded and thrown: a driver error of a step on a
 * database or schema is translated as its dialect says; anything else not in the registry is the
 * app's failure (APP_ERROR) with its message.
 */
function runError(err: unknown, app: string, step: Step | undefined): AppvisorError {
  if (!(err instanceof AppvisorError) && step?.target) {
    return translateDbError(err, {
      dialect: step.target.dialect,
      server: step.target.server,
      operation: `${step.action} for app ${app}`,
    });
  }
  return toAppvisorError(err, 'APP_ERROR', { app });
}

function historyOutcome(steps: readonly Step[]): ReconcileOutcome {
  if (steps.length === 0) return 'unchanged';
  if (steps.some((s) => s.action === 'create-record')) return 'created';
  if (steps.some((s) => s.action === 'orphan')) return 'deleted';
  return 'updated';
}

/** Carries out `input.steps` for one app. Throws the first failing step's error (after recording it). */
export async function executeApp(input: ExecuteInput, deps: ExecutorDeps): Promise<ExecuteResult> {
  const { name, steps, loaded, actual, reconcileId } = input;
  const { store, providers, fence } = deps;
  const now = (): string => (deps.now?.() ?? new Date()).toISOString();
  const stepTimeoutMs = deps.stepTimeoutMs ?? 60_000;
  const started = performance.now();
  const nowMs = (deps.now?.() ?? new Date()).getTime();
  // Scheduled drops stay in the plan but are not this run's work.
  const due = steps.filter((s) => !isScheduled(s, nowMs));
  const outcomes: StepOutcome[] = [];
  const owner = ownerMarker(store.storeId, name);

  let record: AppRecord | undefined = actual.record;
  // A record keeps the owner it has; a new app's data is this application's from its first
  // journal write on; a claim the app's database agreed to, or a migration (which marks the
  // database), fill in a missing one. The planner refused a mismatch.
  let application = record ? record.application : deps.application;
  let inventory: InventoryItem[] = [...(record?.inventory ?? [])];
  let hasSecret = record?.hasSecret ?? actual.hasSecret;
  let dataVersion = record?.dataVersion;
  let dropAt = record?.dropAt;
  let finalStatus: AppStatus | undefined;
  let provisioned = false;
  let refusedDrop = false;
  /** The backup each drop step took first, named in its outcome (log and history). */
  const backups = new Map<Step, string>();
  let startPendingUntil: number | undefined;
  /** Set by a follower's held route: visits get this error instead of the app. */
  let hold: AppvisorError | undefined;
  /** Set on a follower while the leader migrates the app's data: visits wait for it. */
  let awaitingUpgrade = false;

  /** The record as it stands now (undefined without a manifest or a record to base it on). */
  const recordNow = (status: AppStatus, extra: Partial<AppRecord> = {}): AppRecord | undefined => {
    const base =
      loaded ?? (record ? { file: record.file, manifest: record.spec, hash: record.specHash } : undefined);
    if (!base) return undefined;
    const at = now();
    return {
      name,
      ...(record?.version !== undefined ? { version: record.version } : {}),
      file: base.file,
      spec: base.manifest,
      specHash: base.hash,
      inventory,
      hasSecret,
      status,
      createdAt: record?.createdAt ?? at,
      updatedAt: at,
      ...(record?.lastReconciledAt ? { lastReconciledAt: record.lastReconciledAt } : {}),
      ...(dataVersion !== undefined ? { dataVersion } : {}),
      ...(application !== undefined ? { application } : {}),
      ...(dropAt !== undefined ? { dropAt } : {}),
      ...(record?.intent ? { intent: record.intent } : {}),
      ...extra,
    };
  };

  /** The term of a run that may write; a follower's run never gets to a step that would. */
  const fenced = (): Fence => {
    if (fence) return fence;
    throw new Error(`a follower replica's run cannot provision app ${name}`);
  };

  /** Writes the record as it stands now: a journal point before a create, or a runtime step's. */
  const writeRecord = async (status: AppStatus): Promise<void> => {
    const next = recordNow(status);
    if (next) record = await store.putRecord(next, fenced());
  };

  /**
   * The run's last writes, in one transaction when there is history to append: the record (when
   * it changed) and the history entry (when steps ran, or the run failed).
   */
  const finish = async (next: AppRecord | undefined, entry: HistoryEntry | undefined): Promise<void> => {
    // A follower's record is the leader's to write.
    if (!fence) return;
    if (entry) record = (await store.finishRun(next, entry, fence)) ?? record;
    else if (next) record = await store.putRecord(next, fence);
  };

  /** Routes the app in the runtime once it has a record: before starting it, and after each run. */
  const route = (): void => {
    // A follower routes an app it holds back before there is a record (one not applied yet).
    if (
      !awaitingUpgrade &&
      deps.runtime &&
      loaded &&
      input.target &&
      (record || hold) &&
      finalStatus !== 'orphaned'
    ) {
      deps.runtime.route(loaded, input.target, record?.intent, hold);
    }
  };

  /**
   * Routes the app (known here, on its current spec), then holds its visits until the migration
   * of its data is over; not routed again at the end of the run, which would end the wait.
   */
  const awaitUpgradeHere = async (awaitUpgrade: (name: string) => Promise<void>): Promise<void> => {
    route();
    awaitingUpgrade = true;
    await awaitUpgrade(name);
  };

  /** Routes an app whose run failed so that visits get the failure (503), not a 404. */
  const routeFailed = (failure: AppvisorError): void => {
    if (!record) return;
    hold = failure;
    route();
  };

  const report = (reported: StepOutcome): StepOutcome => {
    const backup = backups.get(reported.step);
    const outcome = backup
      ? { ...reported, step: { ...reported.step, detail: `${reported.step.detail}; backup ${backup}` } }
      : reported;
    outcomes.push(outcome);
    deps.onStep?.(outcome);
    return outcome;
  };

  const setItem = (item: InventoryItem): void => {
    inventory = [...inventory.filter((i) => !sameItem(i, item)), item];
  };

  const run = async (step: Step): Promise<StepResult> => {
    const what = { step: step.action, app: name };
    const timed = <T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> =>
      bounded(work, stepTimeoutMs, input.signal, what);
    // A follower's run (no fence) carries out its own runtime's steps, nothing else.
    if (!RUNTIME_ACTIONS.has(step.action)) fenced();
    switch (step.action) {
      case 'refuse':
        // A refused drop (or removal) is reported and the rest goes on; any other refusal stops this app.
        if (step.code !== undefined && REPORTED_REFUSALS.has(step.code)) {
          refusedDrop = true;
          return 'refused';
        }
        throw new AppvisorError(
          step.code ?? 'UNSUPPORTED_MODE',
          {},
          { retryable: false, message: step.detail },
        );
      case 'sweep': {
        const target = step.target!;
        // The provider checks the marker again right before removing anything.
        return timed((signal) =>
          providers.forTarget(target).sweepLeftover(target.database, owner, { signal }),
        );
      }
      case 'update-record':
        // A claim asks the app's own database first: it may name another application.
        if (step.claim && deps.claimData && loaded) {
          await timed((signal) => deps.claimData!(loaded, signal, step.moveFrom));
          // Empty data that moved is the manifest's application's from now on.
          application = step.moveFrom !== undefined ? deps.application : (application ?? deps.application);
        }
        // The record is written once, after the last step, with what this run changed.
        return 'updated';
      case 'create-database':
      case 'create-schema': {
        const target = step.target!;
        const provider = providers.forTarget(target);
        // Journal first: the record says "creating" before the server does anything.
        setItem(item(target, 'creating', owner, now()));
        await writeRecord(record?.status ?? 'provisioning');
        const result = await timed((signal) =>
          target.kind === 'schema'
            ? provider.createSchema(target.schema!, owner, { signal })
            : provider.createDatabase(target.database, owner, { signal }),
        );
        setItem(item(target, 'created', owner, now()));
        provisioned = true;
        return result;
      }
      case 'adopt-database': {
        setItem(item(step.target!, 'adopted', owner, now()));
        provisioned = true;
        return 'updated';
      }
      case 'generate-secret': {
        await store.ensureSecret(step.app, generateSecret(), fenced());
        if (step.app !== MAIN_APP) hasSecret = true;
        return 'created';
      }
      case 'create-record': {
        // The target carries our marker from an interrupted run: record it as created.
        const target = step.target;
        if (target && !provisioned && !inventory.some((i) => isTargetOf(i, target))) {
          setItem(item(target, 'created', owner, now()));
        }
        finalStatus = loaded?.manifest.enabled === false ? 'disabled' : 'stopped';
        // A restore cancels the drop a removal scheduled.
        dropAt = undefined;
        return 'created';
      }
      case 'upgrade': {
        if (!deps.migrate || !loaded) return 'skipped';
        const migrate = (): Promise<number> => timed((signal) => deps.migrate!(loaded, signal));
        // Existing data: the record says `upgrading` first, so the other replicas stop the app
        // and hold its visits until it is done (a new app's record says `provisioning` already).
        const upgradingExisting = record !== undefined && record.status !== 'provisioning' && fence;
        const statusBefore = record?.status;
        if (upgradingExisting) await writeRecord('upgrading');
        // Routed right before the migration starts (nothing awaited in between), so that a visit
        // meanwhile finds the app upgrading rather than unknown, or booting on the old data.
        if (deps.runtime?.upgrading) route();
        try {
          dataVersion = await (deps.runtime?.upgrading ? deps.runtime.upgrading(name, migrate) : migrate());
        } finally {
          // The run's last write (done or failed) gives the record its status back.
          if (upgradingExisting && record && statusBefore) record = { ...record, status: statusBefore };
        }
        application ??= deps.application;
        return 'updated';
      }
      case 'start':
      case 'stop':
      case 'restart': {
        const rt = deps.runtime;
        if (!rt) return 'skipped';
        if (!record && fence) await writeRecord(finalStatus ?? 'stopped');
        route();
        if (step.idleSince !== undefined) {
          const idleSince = step.idleSince;
          // Checked again now: a request that came after the plan looked wins.
          const stopped = rt.stopIdle ? await timed(() => rt.stopIdle!(name, idleSince)) : false;
          return stopped ? 'updated' : 'skipped';
        }
        if (step.action === 'stop' || step.action === 'restart') await timed(() => rt.stop(name));
        if (step.action === 'stop') return 'updated';
        // A start is a step with an outcome: awaited for a bounded time (a slow or hanging
        // create() must not hold up every other app's reconcile), failing the step when it
        // fails, and left to run, with a reconcile at its deadline, when it takes longer.
        const pending = await startWithin(rt, name, deps.startWaitMs ?? DEFAULT_START_WAIT_MS, input.signal);
        if (pending === undefined) return 'updated';
        startPendingUntil = Math.min(startPendingUntil ?? pending, pending);
        return 'in-progress';
      }
      case 'update-routes':
        if (!deps.runtime) return 'skipped';
        if (step.awaitUpgrade && deps.runtime.awaitUpgrade) {
          await awaitUpgradeHere(deps.runtime.awaitUpgrade.bind(deps.runtime));
          return 'updated';
        }
        hold = step.hold && new AppvisorError(step.hold.code, step.hold.params);
        route();
        return 'updated';
      case 'orphan': {
        await deps.runtime?.unroute(name);
        finalStatus = 'orphaned';
        dropAt = step.dropAt;
        return 'updated';
      }
      case 'drop-database':
      case 'drop-schema': {
        const target = step.target!;
        const provider = providers.forTarget(target);
        if (deps.backupBeforeDrop) {
          // Bounded by the run's signal, not the step timeout: a large database takes its time.
          const file = await deps.backupBeforeDrop(name, input.signal);
          backups.set(step, file);
          deps.log.info({ action: step.action, backup: file }, `backed up ${name} before the drop: ${file}`);
        }
        const result = await timed((signal) =>
          target.kind === 'schema'
            ? provider.dropSchema(target.schema!, { signal })
            : provider.dropDatabase(target.database, { signal }),
        );
        inventory = inventory.filter((i) => !isTargetOf(i, target));
        // The schedule is done once nothing appvisor may drop is left.
        if (!inventory.some((i) => i.state !== 'adopted')) dropAt = undefined;
        return result;
      }
    }
  };

  // The step running when the run failed (undefined: a write after the last step).
  let current: Step | undefined;
  try {
    for (const step of steps) {
      const t0 = performance.now();
      let result: StepResult;
      if (!due.includes(step)) {
        report({ step, result: 'scheduled', ms: 0 });
        continue;
      }
      // A lost lock aborts the run: no further step starts (and the fence refuses its writes).
      input.signal?.throwIfAborted();
      current = step;
      try {
        result = await run(step);
      } catch (err) {
        report({ step, result: 'failed', message: messageOf(err), ms: performance.now() - t0 });
        throw err;
      }
      current = undefined;
      const outcome = report({ step, result, ms: performance.now() - t0 });
      deps.log.info({ action: step.action, result, ms: Math.round(outcome.ms) }, outcome.step.detail);
    }
    const at = now();
    const status = finalStatus ?? statusAfter(record, loaded);
    const changed =
      due.length > 0 ||
      // A renamed file is a change too: an invalid manifest is matched to its app by file.
      (loaded !== undefined &&
        record !== undefined &&
        (record.specHash !== loaded.hash || record.file !== loaded.file)) ||
      record?.lastError !== undefined;
    const outcome: ReconcileOutcome = refusedDrop ? 'refused' : historyOutcome(due);
    await finish(
      changed && (record || finalStatus) ? recordNow(status, { lastReconciledAt: at }) : undefined,
      due.length > 0
        ? historyEntry(name, reconcileId, outcome, outcomes, undefined, started, at, requestedBy(due, record))
        : undefined,
    );
    route();
    return startPendingUntil === undefined
      ? { outcomes, outcome, record }
      : { outcomes, outcome, record, startPendingUntil };
  } catch (err) {
    if (err instanceof AppvisorError && UNRECORDED.has(err.code)) throw err;
    // The run was called off (shutdown, or the lock's signal): what failed is the abort, not
    // the app. Nothing is recorded, and the abort's own reason goes on to the queue; the next
    // run starts again from the journal.
    if (input.signal?.aborted) throw err;
    const failure = runError(err, name, current);
    // Routed, so visits get 503 with Retry-After (the load balancer tries the replicas that can
    // serve it), not a 404; looked at again every second, and written once, not each time.
    if (failure.code === 'UPGRADE_HELD_BACK') {
      if (current?.awaitUpgrade && deps.runtime?.awaitUpgrade) {
        await awaitUpgradeHere(deps.runtime.awaitUpgrade.bind(deps.runtime));
      } else routeFailed(failure);
      if (record?.lastError?.message === failure.message) throw failure;
    }
    const at = now();
    const error = failure.toJSON();
    const outcome: ReconcileOutcome =
      failure.code === 'ADOPT_REFUSED' || failure.code === 'APP_WRONG_APPLICATION' ? 'refused' : 'failed';
    // An orphan step that ran stays done: its scheduled drops are retried from the orphaned record.
    const failed = record
      ? recordNow(finalStatus === 'orphaned' ? 'orphaned' : record.status, {
          lastError: { ...error, at },
          lastReconciledAt: at,
        })
      : undefined;
    const by = requestedBy(due, record);
    await finish(failed, historyEntry(name, reconcileId, outcome, outcomes, error, started, at, by)).catch(
      (writeErr) => deps.log.warn({ err: messageOf(writeErr) }, 'could not record the error'),
    );
    // Another application's data: routed, so visits get 503 APP_WRONG_APPLICATION, not 404.
    if (failure.code === 'APP_WRONG_APPLICATION') routeFailed(failure);
    throw failure;
  }
}

/**
 * Starts `name` and waits up to `waitMs`: undefined when it runs, the start's deadline (ms since
 * the epoch) when it is still under way; throws what the start threw, or the run's abort reason
 * (a lost lock, shutdown: the wait ends, the start goes on). A start left to run reports its own
 * outcome: its status, and a failure goes back to the app's reconcile through the runtime.
 */
async function startWithin(
  rt: RuntimeControl,
  name: string,
  waitMs: number,
  signal: AbortSignal | undefined,
): Promise<number | undefined> {
  const wait = AbortSignal.timeout(waitMs);
  const start = rt.start(name);
  try {
    await abortable(() => start, signal ? AbortSignal.any([signal, wait]) : wait);
    return undefined;
  } catch (err) {
    if (!wait.aborted || signal?.aborted) throw err;
  }
  // A little after the deadline, so that the start's own timeout has surely fired by then.
  return (rt.startDeadline?.(name) ?? Date.now() + waitMs) + DEADLINE_MARGIN_MS;
}

const DEADLINE_MARGIN_MS = 100;

function statusAfter(record: AppRecord | undefined, loaded: LoadedManifest | undefined): AppStatus {
  if (loaded && !loaded.manifest.enabled) return 'disabled';
  const s = record?.status;
  // Still without a manifest (a later run of a scheduled drop): it stays orphaned.
  if (!loaded && s === 'orphaned') return 'orphaned';
  if (!s || s === 'provisioning' || s === 'disabled' || s === 'orphaned') return 'stopped';
  return s;
}

function item(
  target: DatabaseTarget,
  state: InventoryItem['state'],
  owner: string,
  at: string,
): InventoryItem {
  return {
    kind: target.kind,
    dialect: target.dialect,
    server: target.server,
    name: target.kind === 'schema' ? target.schema! : target.database,
    ...(target.kind === 'schema' ? { database: target.database } : {}),
    state,
    owner,
    at,
  };
}

function sameItem(a: InventoryItem, b: InventoryItem): boolean {
  return a.kind === b.kind && a.dialect === b.dialect && a.server === b.server && a.name === b.name;
}

/**
 * Who asked for this run: the operator's start or stop it carries out (a step of the intent's
 * action and time), by the intent's `by` (the token's name and client); undefined for the
 * reconciler's own runs, including the later ones of an app an operator once stopped.
 */
function requestedBy(due: readonly Step[], record: AppRecord | undefined): string | undefined {
  const intent = record?.intent;
  if (intent === undefined) return undefined;
  return due.some((s) => s.action === intent.action && s.requestedAt === intent.at) ? intent.by : undefined;
}

function historyEntry(
  app: string,
  reconcileId: string,
  outcome: ReconcileOutcome,
  outcomes: readonly StepOutcome[],
  error: ErrorSummary | undefined,
  started: number,
  at: string,
  by?: string,
): HistoryEntry {
  return {
    app,
    reconcileId,
    at,
    outcome,
    steps: outcomes.map((o) => ({ action: o.step.action, detail: o.step.detail, result: o.result })),
    ...(error ? { error } : {}),
    durationMs: Math.round(performance.now() - started),
    ...(by !== undefined ? { by } : {}),
  };
}
