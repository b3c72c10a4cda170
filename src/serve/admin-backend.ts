/**
 * The admin API's view of a running supervisor: app views built from the manifests, the
 * state store's records and the runtime; start/stop requests; the live plan.
 */
import type { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { planToJson } from '../admin/plan-json.js';
import type {
  AdminBackend,
  AdminEventMap,
  AdminOperations,
  AppFigureSource,
  AppLogSource,
} from '../admin/types.js';
import { AppvisorError, type ErrorSummary, messageOf } from '../errors.js';
import type { ProviderSet } from '../providers/set.js';
import { leaseHeld } from '../reconcile/lease.js';
import type { Desired, PlanOptions } from '../reconcile/model.js';
import { liveObservations } from '../reconcile/observation-source.js';
import { observeAll } from '../reconcile/observe.js';
import { plan } from '../reconcile/planner.js';
import { applicationName } from '../reconcile/reconciler.js';
import type { Runtime } from '../runtime/runtime.js';
import type { AppView } from '../runtime/view.js';
import { rotateAppSecret } from '../secrets/rotate.js';
import { type AppRecord, type Fence, MAIN_APP, type StateStore } from '../state/types.js';
import { createReplicaViews, isLive } from './replica-views.js';
import { allViews, appView, type ViewSources } from './views.js';

export interface AdminBackendDeps {
  readonly events: EventEmitter<AdminEventMap>;
  readonly runtime: Runtime;
  readonly store: StateStore;
  readonly providers: ProviderSet;
  readonly planOptions: PlanOptions;
  readonly log: Logger;
  /** The current desired state (it changes as files change). */
  readonly desired: () => Desired;
  /** Last reconcile error per app, for apps that have no record to hold it. */
  readonly reconcileErrors: ReadonlyMap<string, ErrorSummary>;
  readonly ready: () => boolean;
  /** See AdminBackend.waitingFor. */
  readonly waitingFor?: () => string | undefined;
  /** Queues the app's reconcile (the only place its intent is carried out). */
  readonly requestReconcile: (name: string) => void;
  /** Backup, restore and clone, carried out by the leader (see src/serve/operations.ts). */
  readonly operations?: AdminOperations;
  /** The term to write under while this replica leads (undefined while it follows). */
  readonly leading?: () => { readonly fence: Fence } | undefined;
  /** The apps' recent log lines (see app-logs.ts). */
  readonly logs?: AppLogSource;
  /** The apps' live figures (see app-figures.ts). */
  readonly figures?: AppFigureSource;
  /** This replica among those on the store. */
  readonly replica: {
    readonly id: string;
    /** Its heartbeat interval (a row older than three of them is a dead replica's). */
    readonly heartbeatMs: number;
    /** Settings `database.connectionBudget`. */
    readonly connectionBudget: number;
  };
}

export function createAdminBackend(deps: AdminBackendDeps): AdminBackend {
  const { runtime, store, providers, planOptions, log } = deps;
  // The last records read: while the main database is down the admin API still answers
  // (with the apps' errors) instead of failing as a whole.
  let lastRecords = new Map<string, AppRecord>();
  const readRecords = async (): Promise<ReadonlyMap<string, AppRecord>> => {
    try {
      lastRecords = new Map((await store.listRecords()).map((r) => [r.name, r]));
    } catch (err) {
      log.warn({ err: messageOf(err) }, 'cannot read the state store; showing the last records read');
    }
    return lastRecords;
  };
  const replicas = createReplicaViews({
    store,
    log,
    self: {
      ...deps.replica,
      app: (name) => {
        const status = runtime.status(name);
        if (status === undefined || status === 'stopped') return undefined;
        const startedAt = runtime.startedAt(name);
        return startedAt ? { status, startedAt: startedAt.toISOString() } : { status };
      },
    },
  });
  const viewSources = async (): Promise<ViewSources> => ({
    desired: deps.desired(),
    // One read of each table per request, side by side.
    ...(await Promise.all([readRecords(), replicas.sources()]).then(([records, sources]) => ({
      records,
      replicas: sources,
    }))),
    main: planOptions.main,
    planOptions,
    live: (name) => ({
      status: runtime.status(name),
      error: runtime.error(name),
      startedAt: runtime.startedAt(name),
      statusReason: runtime.statusReason(name),
      memoryMb: runtime.isolation(name)?.memoryMb,
    }),
    reconcileErrors: deps.reconcileErrors,
  });
  const requireView = async (name: string): Promise<AppView> => {
    const view = appView(name, await viewSources());
    if (!view) throw new AppvisorError('APP_NOT_FOUND', { app: name });
    return view;
  };
  /**
   * An operator's start/stop is intent (SPEC §6): written to the app's record, then carried out
   * by the app's next reconcile, which this queues. Nothing here starts or stops anything.
   */
  const recordIntent = async (name: string, action: 'start' | 'stop', by: string): Promise<AppView> => {
    const at = new Date().toISOString();
    // Checked against the record the intent is written on (a compare-and-set on its version).
    const written = await store.setIntent(name, { action, by, at }, (record) => {
      if (record.status === 'orphaned') throw new AppvisorError('APP_NOT_FOUND', { app: name });
      // Refused, not accepted and then silently dropped: `enabled: false` wins over a start.
      const spec = deps.desired().apps.get(name)?.manifest ?? record.spec;
      if (action === 'start' && !spec.enabled) throw new AppvisorError('APP_DISABLED', { app: name });
    });
    if (!written) throw new AppvisorError('APP_NOT_FOUND', { app: name });
    log.info({ app: name, by, at }, `operator ${action}`);
    deps.requestReconcile(name);
    return requireView(name);
  };

  return {
    events: deps.events,
    ready: deps.ready,
    ...(deps.waitingFor ? { waitingFor: deps.waitingFor } : {}),
    listApps: async () => allViews(await viewSources()),
    getApp: async (name) => appView(name, await viewSources()),
    ...(deps.operations ? { operations: deps.operations } : {}),
    ...(deps.logs ? { logs: deps.logs } : {}),
    ...(deps.figures ? { figures: deps.figures } : {}),
    replicaId: deps.replica.id,
    leaderElsewhere: async () => {
      if (deps.leading?.()) return undefined;
      const list = await store.listReplicas().catch(() => undefined);
      const leader = list?.replicas.find(
        (r) => r.leader && r.id !== deps.replica.id && isLive(list, r, deps.replica.heartbeatMs),
      );
      const url = leader?.info.adminUrl;
      return leader && url ? { id: leader.id, url } : undefined;
    },
    livePeers: async () => {
      // A store that cannot be read leaves this replica's own lines, not a failed answer.
      const list = await store.listReplicas().catch(() => undefined);
      if (!list) return [];
      return list.replicas.flatMap((r) =>
        r.id !== deps.replica.id && r.info.adminUrl && isLive(list, r, deps.replica.heartbeatMs)
          ? [{ id: r.id, url: r.info.adminUrl }]
          : [],
      );
    },
    start: (name, by) => recordIntent(name, 'start', by),
    stop: (name, by) => recordIntent(name, 'stop', by),
    rotateSecret: async (name, graceMs, by) => {
      const term = deps.leading?.();
      if (!term) {
        const holder = (await store.readLease().catch(() => undefined))?.holder;
        throw leaseHeld(store.target, holder, 0, '; a secret is rotated by the leader: send it there');
      }
      const result = await rotateAppSecret(store, { name, graceMs, by, fence: term.fence });
      log.info(
        { app: name, by, kid: result.kid, previousKid: result.previousKid, until: result.previousUntil },
        'JWT secret rotated',
      );
      // The running apps here sign with the new secret from now on; the other replicas learn of it
      // by the records' versions the rotation raised.
      await runtime.refreshSecrets(name === MAIN_APP ? undefined : [name]).catch((err: unknown) => {
        log.warn({ app: name, err: messageOf(err) }, 'cannot hand the running app its new JWT secret');
      });
      return result;
    },
    plan: async () => {
      const desired = deps.desired();
      const actual = await observeAll(desired, {
        store,
        source: liveObservations(providers),
        main: planOptions.main,
        applicationOf: (m) => applicationName(m, planOptions),
        runtime: (n) => runtime.state(n),
      });
      // Made for now, as a reconcile's plan is: what is due now (a drop, an idle stop) shows.
      return planToJson(plan(desired, actual, { ...planOptions, now: Date.now() }));
    },
    history: (name) => store.listHistory(name),
    listReplicas: () => replicas.listReplicas(),
    cluster: () => replicas.cluster(),
  };
}
