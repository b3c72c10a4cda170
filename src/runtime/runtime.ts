import type { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { AdminEventMap } from '../admin/types.js';
import { dialectFor } from '../dialects/registry.js';
import { AppvisorError } from '../errors.js';
import type { GatewayApps, ReadyApp } from '../gateway/types.js';
import type { LoadedManifest } from '../manifests/types.js';
import type { AppDatabase, SqlClient } from '../providers/provider.js';
import type { ProviderSet } from '../providers/set.js';
import { type BackoffInput, type BackoffOptions, resolveBackoff } from '../reconcile/backoff.js';
import type { DatabaseTarget, RuntimeState } from '../reconcile/model.js';
import { TABLES } from '../state/dialect.js';
import { refuseForeignTables } from '../state/foreign-tables.js';
import type { AppStatus, OperatorIntent, StateStore } from '../state/types.js';
import type { Application } from './contract.js';
import { AppInstanceRunner, type InstanceError, type InstanceSpec } from './instance.js';
import { readDataVersion } from './migrations.js';

export const MAIN_APP = 'main';

/**
 * PostgreSQL: the main app's schema, pinned on its pool. The default search_path
 * (`"$user", public`) would put its tables in a schema named like the user when there is one,
 * e.g. the state store's own `appvisor` for a user called appvisor.
 */
const MAIN_APP_SCHEMA = 'public';

export interface RuntimeOptions {
  readonly application: Application;
  readonly providers: ProviderSet;
  readonly store: StateStore;
  readonly log: Logger;
  readonly events: EventEmitter<AdminEventMap>;
  /** @default 30000 */
  readonly startTimeoutMs?: number;
  /** Connections per app pool (server dialects); idle connections close. @default 5 */
  readonly poolMax?: number;
  /** Delays between an app's failed starts. @default 1 s doubling to 5 min */
  readonly backoff?: BackoffInput;
  /**
   * Settings `mainDatabase.adopt`: the main app may install into a main database (PostgreSQL:
   * its schema `public`) that holds tables appvisor did not create. @default false
   */
  readonly adoptMainDatabase?: boolean;
}

/** A routable app: its manifest and where its database lives. */
interface RoutedApp {
  loaded: LoadedManifest;
  target: DatabaseTarget;
  instance: AppInstanceRunner | undefined;
  /** The operator's last start/stop, from the record: a stop answers every visit with APP_STOPPED. */
  intent: OperatorIntent | undefined;
  /** Set when the reconciler refused to run anything on the app's data (APP_WRONG_APPLICATION). */
  blocked: AppvisorError | undefined;
}

/**
 * The in-process runtime (process adapter `local`): the routing table, one runner per started
 * app, and the main app. The reconciler tells it what is routable and when to start, stop or
 * restart; the gateway asks it for apps; statuses go out as events.
 */
export class Runtime implements GatewayApps {
  readonly #opts: RuntimeOptions;
  readonly #apps = new Map<string, RoutedApp>();
  readonly #domains = new Map<string, string>();
  readonly #log: Logger;
  readonly #main: AppInstanceRunner;
  /** Start order, for stopping in reverse. */
  readonly #started: string[] = [];
  /** The last status sent per app, so each event can say what it changed from. */
  readonly #lastStatus = new Map<string, AppStatus>();
  readonly #backoff: BackoffOptions;
  #closing: Promise<void> | undefined;

  constructor(options: RuntimeOptions) {
    this.#opts = options;
    this.#log = options.log;
    this.#backoff = resolveBackoff(options.backoff);
    this.#main = this.#runner(
      {
        name: MAIN_APP,
        isMain: true,
        basePath: '',
        config: {},
        jwtMode: 'own',
        upgrade: true,
        withMain: true,
        hash: 'main',
      },
      () => this.#openMainDatabase(),
    );
  }

  get startTimeoutMs(): number {
    return this.#opts.startTimeoutMs ?? 30_000;
  }

  // ---- routing (GatewayApps) ----

  has(name: string): boolean {
    return this.#apps.has(name);
  }

  appForDomain(host: string): string | undefined {
    return this.#domains.get(host);
  }

  ready(name: string): ReadyApp | undefined {
    return this.#apps.get(name)?.instance?.ready();
  }

  readyMain(): ReadyApp | undefined {
    return this.#main.ready();
  }

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
    const ready = app.instance?.ready();
    if (ready) return Promise.resolve(ready);
    return this.#ensureRunner(name, app).start();
  }

  acquireMain(): Promise<ReadyApp> {
    return this.#main.start();
  }

  // ---- control (used by the reconciler and the admin API) ----

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
      this.#apps.set(name, { loaded, target, instance: undefined, intent, blocked });
      this.#emit(name, this.status(name)!, this.error(name));
    }
    for (const d of loaded.manifest.domains) this.#domains.set(d.toLowerCase(), name);
  }

  /** Stops and unroutes an app (manifest removed). */
  async unroute(name: string, finalStatus: AppStatus = 'orphaned'): Promise<void> {
    const app = this.#apps.get(name);
    if (!app) return;
    this.#apps.delete(name);
    for (const d of app.loaded.manifest.domains) this.#domains.delete(d.toLowerCase());
    await app.instance?.stop();
    this.#emit(name, finalStatus, null);
  }

  /**
   * Starts an app; resolves when it runs. With `requestedAt` (an operator's start), an app whose
   * start failed before that time is retried now rather than after its backoff.
   */
  async start(name: string, opts: { readonly requestedAt?: string } = {}): Promise<void> {
    const app = this.#apps.get(name);
    if (!app) throw new AppvisorError('APP_NOT_FOUND', { app: name });
    const failed = app.instance;
    const failedAt = failed?.status === 'error' ? failed.failedAt : null;
    if (opts.requestedAt && failedAt && failedAt.getTime() <= Date.parse(opts.requestedAt)) {
      // Runners are single-use: drop the failed one (and its retry timer) for a fresh start.
      app.instance = undefined;
      await failed!.stop();
    }
    await this.acquire(name);
  }

  /** Stops an app (the reconciler's stop step; an operator's stop arrives as intent on the record). */
  async stop(name: string): Promise<void> {
    const app = this.#apps.get(name);
    if (!app) throw new AppvisorError('APP_NOT_FOUND', { app: name });
    const instance = app.instance;
    app.instance = undefined;
    await instance?.stop();
    // A visit during the stop may have started a new runner: its own events tell its status.
    // Unrouted meanwhile: `unroute` tells the final status.
    const current = this.#apps.get(name);
    if (!current || current.instance !== undefined) return;
    const status: AppStatus = current.loaded.manifest.enabled ? 'stopped' : 'disabled';
    this.#emit(name, status, null);
  }

  /** What the planner needs to know about a running app. */
  state(name: string): RuntimeState | undefined {
    const app = this.#apps.get(name);
    if (!app) return undefined;
    const instance = app.instance;
    return {
      status: this.status(name) ?? 'stopped',
      ...(instance ? { specHash: instance.spec.hash } : {}),
    };
  }

  /** The app's current status, or undefined when it is not routed. */
  status(name: string): AppStatus | undefined {
    const app = this.#apps.get(name);
    if (!app) return undefined;
    if (app.blocked) return 'error';
    if (app.instance) return app.instance.status;
    return app.loaded.manifest.enabled ? 'stopped' : 'disabled';
  }

  error(name: string): InstanceError | null {
    const app = this.#apps.get(name);
    if (app?.blocked) return { code: app.blocked.code, message: app.blocked.message };
    return app?.instance?.error ?? null;
  }

  startedAt(name: string): Date | null {
    return this.#apps.get(name)?.instance?.startedAt ?? null;
  }

  names(): string[] {
    return [...this.#apps.keys()];
  }

  /** Starts the main app. */
  startMain(): Promise<ReadyApp> {
    return this.#main.start();
  }

  /** Resolves when every start under way has finished, one way or the other. */
  async settled(): Promise<void> {
    await Promise.all([this.#main.settled(), ...[...this.#apps.values()].map((a) => a.instance?.settled())]);
  }

  /** Stops every app in reverse start order, then the main app. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const order = [...new Set(this.#started)].reverse();
      for (const name of order) {
        const app = this.#apps.get(name);
        if (app?.instance) await app.instance.stop();
      }
      // Anything left (started then re-routed) in parallel.
      await Promise.allSettled([...this.#apps.values()].map((a) => a.instance?.stop()));
      await this.#main.stop();
    })();
    return this.#closing;
  }

  // ---- internals ----

  #ensureRunner(name: string, app: RoutedApp): AppInstanceRunner {
    const current = app.instance;
    // A runner that stopped, or runs an older spec, is replaced: runners are single-use.
    if (current && current.spec.hash === app.loaded.hash && current.status !== 'stopped') return current;
    const m = app.loaded.manifest;
    const runner = this.#runner(
      {
        name,
        isMain: false,
        displayName: m.displayName,
        basePath: `/apps/${name}`,
        config: m.config,
        jwtMode: m.jwt.secret,
        upgrade: m.upgrade,
        withMain: m.startMode === 'with-main',
        hash: app.loaded.hash,
      },
      () => this.#openAppDatabase(name, app.target),
    );
    app.instance = runner;
    this.#started.push(name);
    return runner;
  }

  #runner(spec: InstanceSpec, openDatabase: () => Promise<AppDatabase>): AppInstanceRunner {
    const { store } = this.#opts;
    const log = this.#log.child({ app: spec.name });
    const runner: AppInstanceRunner = new AppInstanceRunner(spec, {
      application: this.#opts.application,
      log,
      startTimeoutMs: this.startTimeoutMs,
      backoff: this.#backoff,
      openDatabase,
      secrets: async () => {
        const main = await store.getSecret(MAIN_APP);
        if (!main)
          throw new AppvisorError('APP_ERROR', { app: spec.name, detail: 'the main JWT secret is missing' });
        if (spec.isMain || spec.jwtMode === 'shared') return { own: undefined, main };
        const own = await store.getSecret(spec.name);
        if (!own)
          throw new AppvisorError('APP_ERROR', {
            app: spec.name,
            detail: 'its JWT secret is missing; run apply',
          });
        return { own, main };
      },
      onStatus: (status, error) => {
        // A replaced runner's late events must not overwrite the current one's status.
        if (!spec.isMain && this.#apps.get(spec.name)?.instance !== runner) return;
        this.#emit(spec.name, status, error);
      },
      onStartFinished: (ok, ms) => this.#opts.events.emit('start', { app: spec.name, ok, durationMs: ms }),
    });
    return runner;
  }

  async #openAppDatabase(name: string, target: DatabaseTarget): Promise<AppDatabase> {
    const provider = this.#opts.providers.forTarget(target);
    const maxConnections = this.#opts.poolMax ?? 5;
    return provider.openDatabase(target.database, {
      ...(target.kind === 'schema' && target.schema ? { schema: target.schema } : {}),
      maxConnections,
      label: `appvisor:${name}`,
    });
  }

  async #openMainDatabase(): Promise<AppDatabase> {
    const url = this.#opts.providers.mainUrl;
    const dialect = dialectFor(url);
    const schema = dialect.schemas ? MAIN_APP_SCHEMA : undefined;
    const client = dialect.openClient(url, { max: this.#opts.poolMax ?? 5, ...(schema ? { schema } : {}) });
    try {
      await this.#refuseForeignMainData(client, url.redacted);
    } catch (err) {
      await client.close().catch(() => undefined);
      throw err;
    }
    return {
      dialect: url.dialect,
      client,
      connection: {
        dialect: url.dialect,
        ...(dialect.remote ? { url: url.url } : { filename: url.filename! }),
        database: url.database ?? url.filename ?? '',
        ...(schema ? { schema } : {}),
      },
    };
  }

  /**
   * The main app installs its migrations only into a main database holding nothing but the
   * state store (on MySQL and SQLite it lives there too) — or data the main app installed itself,
   * marked by its data version table. Anything else is refused (ADOPT_REFUSED: the start fails,
   * is logged, and the main app answers 503) before a statement writes, unless adopted.
   */
  async #refuseForeignMainData(client: SqlClient, where: string): Promise<void> {
    if ((await readDataVersion(client)) !== undefined) return;
    await refuseForeignTables(client, {
      known: Object.values(TABLES),
      adopt: this.#opts.adoptMainDatabase ?? false,
      what: 'the main app',
      where,
    });
  }

  #emit(app: string, status: AppStatus, error: InstanceError | null): void {
    const previous = this.#lastStatus.get(app) ?? null;
    this.#lastStatus.set(app, status);
    this.#opts.events.emit('status', { app, status, previous, error, at: new Date().toISOString() });
  }
}
