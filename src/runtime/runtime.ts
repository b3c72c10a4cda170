import type { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { AdminEventMap } from '../admin/types.js';
import { AppvisorError, isTerminal } from '../errors.js';
import type { GatewayApps, ReadyApp } from '../gateway/types.js';
import { isolationOf } from '../manifests/defaults.js';
import type { LoadedManifest } from '../manifests/types.js';
import type { ProviderSet } from '../providers/set.js';
import { type BackoffInput, KeyedBackoff } from '../reconcile/backoff.js';
import { idleStopMs } from '../reconcile/idle.js';
import type { DatabaseTarget, RuntimeState } from '../reconcile/model.js';
import { type AppStatus, MAIN_APP, type OperatorIntent, type StateStore } from '../state/types.js';
import {
  type AppProcessAdapter,
  DEFAULT_START_TIMEOUT_MS,
  type InstanceError,
  type InstanceSpec,
  type ProcessAdapterKind,
} from './adapter.js';
import type { ApplicationSet } from './applications.js';
import type { Application } from './contract.js';
import { LocalAdapter } from './local-adapter.js';

export interface RuntimeOptions {
  readonly application: Application;
  /** The module `application` was loaded from (settings `app`); null for the built-in sample app. */
  readonly applicationModule?: string | null;
  /**
   * Every application (SPEC §8.6): an app runs the one its manifest names. Absent: every app runs
   * `application`.
   */
  readonly applications?: ApplicationSet;
  /** Settings `processAdapter`: what runs the instances. @default 'local' */
  readonly processAdapter?: ProcessAdapterKind;
  readonly providers: ProviderSet;
  readonly store: StateStore;
  readonly log: Logger;
  readonly events: EventEmitter<AdminEventMap>;
  /** @default 30000 */
  readonly startTimeoutMs?: number;
  /** Connections per app pool (server dialects); idle connections close. @default 5 */
  readonly poolMax?: number;
  /**
   * Settings `mainDatabase.adopt`: the main app may install into a main database (PostgreSQL:
   * its schema `public`) that holds tables appvisor did not create. @default false
   */
  readonly adoptMainDatabase?: boolean;
  /**
   * Called when a start failed in a way a retry may mend (a visit's lazy start, or a start step
   * the reconcile no longer waits for): the app's reconcile retries it after the queue's backoff.
   * Visits meanwhile get the failure at once.
   */
  readonly onStartFailed?: (name: string) => void;
  /**
   * Called when a running isolated instance crashed or its watchdog ended it: the app's reconcile
   * restarts it (at once the first time, then after the queue's backoff). Absent: onStartFailed.
   */
  readonly onCrash?: (name: string) => void;
  /**
   * Called when a visit starts an app that has an idle stop (a lazy start), with that idleStop:
   * the app's reconcile is to look at it once the stop could first be due.
   */
  readonly onVisitStart?: (name: string, idleStopMs: number) => void;
  /** The data folder: isolated apps' sockets go in its `run/`. @default the system's temp folder */
  readonly dataDir?: string;
  /** Settings `idleStop` in ms, for apps whose manifest sets none (0: off). @default 0 */
  readonly idleStopMs?: number;
  /**
   * Whether the main app may migrate the main database when it boots (the leader, while no live
   * replica runs an older application); otherwise it only checks, and data older than the code
   * waits for the replica that may. @default always
   */
  readonly mainMigrates?: () => boolean;
  /**
   * The main app has no reconcile: after a failed start, a visit tries again once this backoff
   * has passed (growing with each failure, as the queue's). @default the queue's defaults
   */
  readonly mainBackoff?: BackoffInput;
}

/** The codes of an isolated instance that ran and ended (SPEC §8.3): its reconcile restarts it. */
const CRASH_CODES: ReadonlySet<string> = new Set(['APP_CRASHED', 'APP_UNRESPONSIVE', 'APP_OUT_OF_MEMORY']);

/** The adapters by settings name: `processAdapter` picks one. */
const ADAPTERS: Readonly<Record<ProcessAdapterKind, (o: RuntimeOptions) => AppProcessAdapter>> = {
  local: (o) =>
    new LocalAdapter({
      providers: o.providers,
      secrets: o.store,
      log: o.log,
      startTimeoutMs: o.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS,
      ...(o.poolMax !== undefined ? { poolMax: o.poolMax } : {}),
      ...(o.dataDir !== undefined ? { dataDir: o.dataDir } : {}),
      // The supervisor loaded them already (and checked them): no second import.
      loadApplication: async (module) => o.applications?.byModule(module) ?? o.application,
    }),
};

/** The adapter `kind` names; an unknown one is a settings error listing the supported ones. */
export function createProcessAdapter(kind: string, options: RuntimeOptions): AppProcessAdapter {
  const make = (ADAPTERS as Record<string, ((o: RuntimeOptions) => AppProcessAdapter) | undefined>)[kind];
  if (!make) {
    throw new AppvisorError('ADAPTER_UNSUPPORTED', {
      setting: 'APP_PROCESS_ADAPTER',
      value: kind,
      supported: Object.keys(ADAPTERS).join(', '),
    });
  }
  return make(options);
}

/** A routable app: its manifest and where its database lives. */
interface RoutedApp {
  loaded: LoadedManifest;
  target: DatabaseTarget;
  /** The operator's last start/stop, from the record: a stop answers every visit with APP_STOPPED. */
  intent: OperatorIntent | undefined;
  /** Set when the reconciler refused to run anything on the app's data (APP_WRONG_APPLICATION). */
  blocked: AppvisorError | undefined;
  /** Requests and upgraded sockets open now (the gateway counts them): an app that has one is busy. */
  open: number;
  /** When the last of them ended, or the app was last started (ms since the epoch). */
  lastActiveAt: number;
  /** Set while the app is stopped for idleness: when it was (ms since the epoch). */
  idleStoppedAt: number | undefined;
  /** The manifest the app's instance was last started on. */
  startedWith: LoadedManifest | undefined;
}

/**
 * The routing table and the lazy-start policy in front of a process adapter. The reconciler
 * tells it what is routable (with the operator's intent) and carries out start, stop and restart
 * steps through it; the gateway asks it for apps, and a visit to a stopped, enabled app that no
 * operator stopped starts it (SPEC §6). Nothing here retries a failed start: a visit meanwhile
 * gets that start's error, and the app's reconcile (the queue's backoff) starts it again.
 * Statuses go out as events.
 */
export class Runtime implements GatewayApps {
  readonly #opts: RuntimeOptions;
  readonly #adapter: AppProcessAdapter;
  readonly #apps = new Map<string, RoutedApp>();
  readonly #domains = new Map<string, string>();
  /** The last status sent per app, so each event can say what it changed from. */
  readonly #lastStatus = new Map<string, AppStatus>();
  readonly #mainSpec: InstanceSpec;
  readonly #mainBackoff: KeyedBackoff;
  /** When a visit may start the main app again after its last failed start (ms since the epoch). */
  #mainRetryAt = 0;
  /** Apps whose migrations run now (the upgrade step): visits wait for them. */
  readonly #upgrading = new Map<string, Promise<unknown>>();
  /** Followers' waits for the leader's migration of an app: each ends at the app's next route. */
  readonly #upgradeWaits = new Map<string, () => void>();

  constructor(options: RuntimeOptions) {
    this.#opts = options;
    this.#mainBackoff = new KeyedBackoff(options.mainBackoff);
    this.#adapter = createProcessAdapter(options.processAdapter ?? 'local', options);
    this.#adapter.events.on('status', (e) => this.#emit(e.app, e.status, e.error));
    this.#adapter.events.on('start', (e) => options.events.emit('start', e));
    // An isolated app that crashed (or its watchdog ended) goes back to its reconcile, which
    // restarts it after the queue's backoff; visits meanwhile get its error at once.
    this.#adapter.events.on('crash', (e) => {
      if (!this.#apps.has(e.app)) return;
      if (options.onCrash) options.onCrash(e.app);
      else options.onStartFailed?.(e.app);
    });
    this.#mainSpec = {
      name: MAIN_APP,
      isMain: true,
      basePath: '',
      domains: [],
      config: {},
      database: {
        kind: 'main',
        adopt: options.adoptMainDatabase ?? false,
        ...(options.poolMax !== undefined ? { maxConnections: options.poolMax } : {}),
      },
      secret: { app: MAIN_APP, mode: 'own' },
      application: { module: options.applicationModule ?? null },
      // The main app has no reconcile (no record, no upgrade step): it migrates when it boots
      // (on the leader only: see mainMigrates).
      data: { version: options.application.version, boot: 'migrate', upgrade: true },
      hash: 'main',
    };
  }

  // ---- routing (GatewayApps) ----

  has(name: string): boolean {
    return this.#apps.has(name);
  }

  appForDomain(host: string): string | undefined {
    return this.#domains.get(host);
  }

  ready(name: string): ReadyApp | undefined {
    return this.#apps.has(name) ? this.#adapter.route(name) : undefined;
  }

  readyMain(): ReadyApp | undefined {
    return this.#adapter.route(MAIN_APP);
  }

  /**
   * A visit: the app if it runs, the start under way, or a lazy start — unless the policy says
   * no (unknown, disabled, blocked, stopped by an operator) or its last start failed (that error,
   * at once, until its reconcile starts it again).
   */
  acquire(name: string): Promise<ReadyApp> {
    const app = this.#apps.get(name);
    if (!app) return Promise.reject(new AppvisorError('APP_NOT_FOUND', { app: name }));
    if (!app.loaded.manifest.enabled) return Promise.reject(new AppvisorError('APP_DISABLED', { app: name }));
    if (app.blocked) return Promise.reject(app.blocked);
    const stopped = app.intent?.action === 'stop' ? app.intent : undefined;
    if (stopped) {
      // An operator's stop is intent: a visit never starts the app (SPEC §6).
      return Promise.reject(new AppvisorError('APP_STOPPED', { app: name, by: stopped.by, at: stopped.at }));
    }
    const upgrading = this.#upgrading.get(name);
    // The data is being migrated: the visit waits for it (the gateway's start timeout bounds it).
    if (upgrading) return upgrading.then(() => this.acquire(name));
    const ready = this.#adapter.route(name);
    if (ready) return Promise.resolve(ready);
    const state = this.#adapter.status(name);
    if (state && state.status !== 'stopped' && state.status !== 'stopping')
      return this.#adapter.acquire(name);
    const start = this.#adapter.start(this.#startSpec(name, app));
    // Not retried here: the reconcile decides, and its failures back off.
    this.#onFailure(name, app, start);
    const idleMs = idleStopMs(app.loaded.manifest, this.#opts);
    if (idleMs > 0) this.#opts.onVisitStart?.(name, idleMs);
    return start.then(() => this.#adapter.acquire(name));
  }

  /** A request or an upgraded socket to `name` opened (the gateway counts them for idle stop). */
  opened(name: string): void {
    const app = this.#apps.get(name);
    if (app !== undefined) app.open++;
  }

  /** One opened with {@link opened} ended: the app's idle time starts now if it was the last. */
  closed(name: string): void {
    const app = this.#apps.get(name);
    // Re-routed meanwhile (unrouted and routed again): the new entry never counted it.
    if (app === undefined || app.open === 0) return;
    app.open--;
    app.lastActiveAt = Date.now();
  }

  acquireMain(): Promise<ReadyApp> {
    const ready = this.#adapter.route(MAIN_APP);
    if (ready) return Promise.resolve(ready);
    const state = this.#adapter.status(MAIN_APP);
    // A start under way is joined; a failed one answers its error until its backoff has passed.
    const failed = state?.failedAt != null;
    if (
      state?.status === 'starting' ||
      state?.status === 'upgrading' ||
      (failed && Date.now() < this.#mainRetryAt)
    ) {
      return this.#adapter.acquire(MAIN_APP);
    }
    const boot = (this.#opts.mainMigrates?.() ?? true) ? 'migrate' : 'check';
    const start = this.#adapter.start({ ...this.#mainSpec, data: { ...this.#mainSpec.data, boot } });
    start.then(
      () => this.#mainBackoff.reset(MAIN_APP),
      () => {
        this.#mainRetryAt = Date.now() + this.#mainBackoff.fail(MAIN_APP);
      },
    );
    return start.then(() => this.#adapter.acquire(MAIN_APP));
  }

  // ---- control (used by the reconciler) ----

  /**
   * Makes `loaded` routable (or updates its routes) with the operator's intent from its record;
   * does not start or restart anything.
   */
  route(
    loaded: LoadedManifest,
    target: DatabaseTarget,
    intent?: OperatorIntent,
    blocked?: AppvisorError,
  ): void {
    const name = loaded.manifest.name;
    this.#upgradeWaits.get(name)?.();
    const existing = this.#apps.get(name);
    if (existing) {
      for (const d of existing.loaded.manifest.domains) this.#domains.delete(d.toLowerCase());
      const wasBlocked = existing.blocked;
      existing.loaded = loaded;
      existing.target = target;
      existing.intent = intent;
      existing.blocked = blocked;
      if (wasBlocked !== blocked) this.#emit(name, this.status(name)!, this.error(name));
    } else {
      this.#apps.set(name, {
        loaded,
        target,
        intent,
        blocked,
        open: 0,
        lastActiveAt: Date.now(),
        idleStoppedAt: undefined,
        startedWith: undefined,
      });
      this.#emit(name, this.status(name)!, this.error(name));
    }
    for (const d of loaded.manifest.domains) this.#domains.set(d.toLowerCase(), name);
  }

  /** Stops and unroutes an app (manifest removed). */
  async unroute(name: string, finalStatus: AppStatus = 'orphaned'): Promise<void> {
    this.#upgradeWaits.get(name)?.();
    const app = this.#apps.get(name);
    if (!app) return;
    this.#apps.delete(name);
    for (const d of app.loaded.manifest.domains) this.#domains.delete(d.toLowerCase());
    await this.#adapter.stop(name);
    this.#emit(name, finalStatus, null);
  }

  /**
   * The start step: starts the app on its current spec (a failed or stopped instance gets a
   * fresh start; one running or starting on this spec is joined) and resolves when it runs.
   */
  async start(name: string): Promise<void> {
    const app = this.#apps.get(name);
    if (!app) throw new AppvisorError('APP_NOT_FOUND', { app: name });
    const started = this.#adapter.start(this.#startSpec(name, app));
    this.#onFailure(name, app, started);
    await started;
  }

  /**
   * The idle stop step: stops the app unless a request or socket is open or one ended after
   * `idleSince` (the activity its plan saw). Checked and begun in one go, so no request can
   * slip in between; false when the app keeps running. Its next visit starts it again.
   */
  async stopIdle(name: string, idleSince: number): Promise<boolean> {
    const app = this.#apps.get(name);
    if (!app) throw new AppvisorError('APP_NOT_FOUND', { app: name });
    if (app.open > 0 || app.lastActiveAt !== idleSince || this.#adapter.route(name) === undefined)
      return false;
    app.idleStoppedAt = Date.now();
    await this.stop(name);
    return true;
  }

  /**
   * A failed start, however it was asked for, goes back to the app's reconcile, which retries
   * it after the queue's backoff (a start the reconcile still waits for is that run's failure).
   */
  #onFailure(name: string, app: RoutedApp, start: Promise<unknown>): void {
    start.catch((err: unknown) => {
      // Old data, newer data, another application's data: retrying cannot help.
      if (isTerminal(err)) return;
      if (this.#apps.get(name) === app) this.#opts.onStartFailed?.(name);
    });
  }

  /**
   * The upgrade step: runs `work` (the app's migrations) with the app `upgrading`. An instance
   * of the app is stopped first (one whose boot found the data too old is `needs-upgrade`, and
   * old code must not run on data being migrated); visits meanwhile wait, then start it afresh.
   */
  async upgrading<T>(name: string, work: () => Promise<T>): Promise<T> {
    // Visits waiting for another replica's migration wait for this one now.
    this.#upgradeWaits.get(name)?.();
    if (this.#upgrading.has(name))
      throw new AppvisorError('APP_ERROR', { app: name, detail: 'already upgrading' });
    // Held from the first moment: a visit during the stop must not boot the old code again.
    const run = this.#adapter.stop(name).then(work);
    this.#upgrading.set(
      name,
      run.catch(() => undefined),
    );
    this.#emit(name, 'upgrading', null);
    try {
      return await run;
    } finally {
      this.#upgrading.delete(name);
      const status = this.status(name);
      if (status) this.#emit(name, status, this.error(name));
    }
  }

  /**
   * A follower's side of the leader's migration of `name`: the instance here is stopped (its old
   * code must not run on data being migrated), the app shows `upgrading`, and visits wait until
   * its next route — the reconcile after the migration — bounded by the gateway's start timeout.
   */
  async awaitUpgrade(name: string): Promise<void> {
    // An earlier hold (503 with its error) gives way to the wait: visits wait, not fail.
    const app = this.#apps.get(name);
    if (app) app.blocked = undefined;
    if (this.#upgrading.has(name)) return;
    let release!: () => void;
    const done = new Promise<void>((resolve) => {
      release = resolve;
    });
    this.#upgrading.set(name, done);
    this.#upgradeWaits.set(name, () => {
      this.#upgradeWaits.delete(name);
      this.#upgrading.delete(name);
      release();
    });
    this.#emit(name, 'upgrading', null);
    await this.#adapter.stop(name);
  }

  /** When the start of `name` under way gives up (ms since the epoch), if one is. */
  startDeadline(name: string): number | undefined {
    return this.#adapter.status(name)?.deadline ?? undefined;
  }

  /** Stops an app (the reconciler's stop step; an operator's stop arrives as intent on the record). */
  async stop(name: string): Promise<void> {
    if (!this.#apps.has(name)) throw new AppvisorError('APP_NOT_FOUND', { app: name });
    await this.#adapter.stop(name);
    // A visit during the stop may have started a new instance: its own events tell its status.
    // Unrouted meanwhile: `unroute` tells the final status.
    const current = this.#apps.get(name);
    if (!current || this.#adapter.status(name) !== undefined) return;
    this.#emit(name, current.loaded.manifest.enabled ? 'stopped' : 'disabled', null);
  }

  /** What the planner needs to know about a running app. */
  state(name: string): RuntimeState | undefined {
    const app = this.#apps.get(name);
    if (!app) return undefined;
    const instance = this.#adapter.status(name);
    const idleStoppedAt = instance === undefined ? app.idleStoppedAt : undefined;
    return {
      status: this.status(name) ?? 'stopped',
      ...(instance ? { specHash: instance.specHash } : {}),
      ...(instance && app.startedWith?.hash === instance.specHash ? { spec: app.startedWith.manifest } : {}),
      activity: { busy: app.open > 0, idleSince: app.lastActiveAt },
      ...(idleStoppedAt !== undefined ? { idleStoppedAt } : {}),
      ...(instance?.status === 'error' && instance.error && CRASH_CODES.has(instance.error.code)
        ? { crashed: instance.error.code }
        : {}),
    };
  }

  /** Where an isolated app runs and the memory it last reported; undefined for a shared app. */
  isolation(name: string): { readonly mode: 'worker' | 'process'; readonly memoryMb?: number } | undefined {
    if (!this.#apps.has(name)) return undefined;
    const live = this.#adapter.status(name)?.isolation;
    if (live) return live;
    const mode = this.#apps.get(name)!.loaded.manifest.isolation?.mode;
    return mode === 'worker' || mode === 'process' ? { mode } : undefined;
  }

  /** Why the app is stopped when appvisor stopped it by itself: `idle` (SPEC §8.2); else null. */
  statusReason(name: string): 'idle' | null {
    const app = this.#apps.get(name);
    if (app?.idleStoppedAt === undefined || this.#adapter.status(name) !== undefined) return null;
    return 'idle';
  }

  /** The app's current status, or undefined when it is not routed. */
  status(name: string): AppStatus | undefined {
    const app = this.#apps.get(name);
    if (!app) return undefined;
    if (app.blocked) return 'error';
    if (this.#upgrading.has(name)) return 'upgrading';
    const instance = this.#adapter.status(name);
    if (instance) return instance.status;
    return app.loaded.manifest.enabled ? 'stopped' : 'disabled';
  }

  error(name: string): InstanceError | null {
    const app = this.#apps.get(name);
    if (!app) return null;
    if (app.blocked) return { code: app.blocked.code, message: app.blocked.message };
    return this.#adapter.status(name)?.error ?? null;
  }

  startedAt(name: string): Date | null {
    return this.#apps.has(name) ? (this.#adapter.status(name)?.startedAt ?? null) : null;
  }

  names(): string[] {
    return [...this.#apps.keys()];
  }

  /** Resolves when every start under way has finished, one way or the other. */
  settled(): Promise<void> {
    return this.#adapter.settled();
  }

  /**
   * Hands the running apps named (all: every one) their JWT secrets as they stand in the store
   * now: a rotation takes effect without a restart (after one of the main app's secret, which
   * the `shared` apps follow, refresh all).
   */
  async refreshSecrets(names?: readonly string[]): Promise<void> {
    await this.#adapter.refreshSecrets?.(names);
  }

  /** Stops every app in reverse start order, then the main app. Idempotent. */
  close(): Promise<void> {
    return this.#adapter.close();
  }

  // ---- internals ----

  /** The spec of a start of `name`: the idle time begins anew, and an idle stop is over. */
  #startSpec(name: string, app: RoutedApp): InstanceSpec {
    app.lastActiveAt = Date.now();
    app.idleStoppedAt = undefined;
    app.startedWith = app.loaded;
    return this.#spec(name, app);
  }

  /** The instance spec of a routed app: plain JSON, all an adapter needs to start it. */
  #spec(name: string, app: RoutedApp): InstanceSpec {
    const m = app.loaded.manifest;
    const { application, module, key } = this.#applicationOf(m);
    return {
      name,
      isMain: false,
      ...(m.displayName ? { displayName: m.displayName } : {}),
      basePath: `/apps/${name}`,
      domains: [...m.domains],
      config: m.config,
      database: {
        kind: 'provisioned',
        target: app.target,
        ...(this.#opts.poolMax !== undefined ? { maxConnections: this.#opts.poolMax } : {}),
      },
      secret: { app: name, mode: m.jwt.secret },
      application: { module, ...(key !== undefined ? { key } : {}) },
      ...(m.isolation ? { isolation: isolationOf(m) } : {}),
      // The upgrade step migrated before this start; a boot only checks.
      data: { version: application.version, boot: 'check', upgrade: m.upgrade },
      hash: app.loaded.hash,
    };
  }

  /** The application app manifest `m` picks (SPEC §8.6): its own, else the default one. */
  #applicationOf(m: LoadedManifest['manifest']): {
    application: Application;
    module: string | null;
    key: string | undefined;
  } {
    const set = this.#opts.applications;
    if (set) return set.of(m);
    return {
      application: this.#opts.application,
      module: this.#opts.applicationModule ?? null,
      key: undefined,
    };
  }

  #emit(app: string, status: AppStatus, error: InstanceError | null): void {
    const previous = this.#lastStatus.get(app) ?? null;
    this.#lastStatus.set(app, status);
    this.#opts.events.emit('status', { app, status, previous, error, at: new Date().toISOString() });
  }
}
