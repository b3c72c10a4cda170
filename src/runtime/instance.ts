import type { Logger } from 'pino';
import { AppvisorError, type ErrorSummary, messageOf, toAppvisorError } from '../errors.js';
import type { ReadyApp } from '../gateway/types.js';
import type { SecretMode } from '../manifests/types.js';
import type { AppDatabase } from '../providers/provider.js';
import { BACKOFF_DEFAULTS, type BackoffOptions, backoffDelay } from '../reconcile/backoff.js';
import type { AppStatus } from '../state/types.js';
import { type AppScope, appScope, runInApp } from './app-context.js';
import type { AppInstance, Application } from './contract.js';
import { createJwtHelpers } from './jwt.js';
import { migrate } from './migrations.js';

/** Start failures that retrying cannot mend: the data itself says no (until a new spec or runner). */
const NOT_RETRIED: ReadonlySet<string> = new Set(['APP_WRONG_APPLICATION', 'APP_DATA_NEWER']);

/** What an instance is started with; a different `hash` means a restart is due. */
export interface InstanceSpec {
  readonly name: string;
  readonly isMain: boolean;
  readonly displayName?: string;
  /** `/apps/<name>` or `''` for the main app. */
  readonly basePath: string;
  readonly config: Readonly<Record<string, unknown>>;
  readonly jwtMode: SecretMode;
  readonly upgrade: boolean;
  readonly withMain: boolean;
  readonly hash: string;
}

export interface InstanceDeps {
  readonly application: Application;
  readonly log: Logger;
  readonly startTimeoutMs: number;
  /** Delays between failed starts. @default BACKOFF_DEFAULTS (1 s doubling to 5 min) */
  readonly backoff?: BackoffOptions;
  openDatabase(): Promise<AppDatabase>;
  /** The app's own secret (undefined for shared/main) and the main app's secret. */
  secrets(): Promise<{ readonly own: string | undefined; readonly main: string }>;
  onStatus(status: AppStatus, error: InstanceError | null): void;
  onStartFinished?(ok: boolean, ms: number): void;
}

/** The error an instance shows with its status. */
export type InstanceError = ErrorSummary;

/**
 * One app instance's lifecycle: `stopped → starting (→ upgrading) → running → stopping →
 * stopped`, or `error` / `needs-upgrade`. Start is single-flight: concurrent callers share one
 * start. Stop is idempotent (the close promise is stored).
 */
export class AppInstanceRunner {
  readonly spec: InstanceSpec;
  readonly #deps: InstanceDeps;
  readonly #log: Logger;
  /** Everything the app's own code runs in: create(), migrations, handlers, close(). */
  readonly #scope: AppScope;
  #status: AppStatus = 'stopped';
  #error: InstanceError | null = null;
  #startedAt: Date | null = null;
  #ready: ReadyApp | undefined;
  #instance: AppInstance | undefined;
  #db: AppDatabase | undefined;
  #starting: Promise<ReadyApp> | undefined;
  #stopping: Promise<void> | undefined;
  #failures = 0;
  /** What the last failed start threw; answered again while its backoff runs. */
  #lastFailure: AppvisorError | undefined;
  #retryAt = 0;
  #failedAt: Date | null = null;
  #retryTimer: NodeJS.Timeout | undefined;
  /** Set once stop() is called: a start that finishes afterwards is closed at once. */
  #stopped = false;

  constructor(spec: InstanceSpec, deps: InstanceDeps) {
    this.spec = spec;
    this.#deps = deps;
    this.#log = deps.log;
    this.#scope = appScope(spec.name);
  }

  get status(): AppStatus {
    return this.#status;
  }

  get error(): InstanceError | null {
    return this.#error;
  }

  get startedAt(): Date | null {
    return this.#startedAt;
  }

  /** When the last start failed (null before any failure, and after a successful start). */
  get failedAt(): Date | null {
    return this.#failedAt;
  }

  /** The app if it can take a request right now. */
  ready(): ReadyApp | undefined {
    return this.#ready;
  }

  /**
   * Starts the instance, or joins the start under way. After a failure, further calls fail fast
   * with the same error until the backoff has passed.
   */
  start(): Promise<ReadyApp> {
    if (this.#ready) return Promise.resolve(this.#ready);
    if (this.#starting) return this.#starting;
    if (this.#stopped)
      return Promise.reject(new AppvisorError('APP_ERROR', { app: this.spec.name, detail: 'stopped' }));
    if (this.#status === 'needs-upgrade' || (this.#status === 'error' && Date.now() < this.#retryAt)) {
      return Promise.reject(this.#failure());
    }
    this.#starting = this.#start().finally(() => {
      this.#starting = undefined;
    });
    return this.#starting;
  }

  /** Resolves when no start is under way (whatever its outcome). */
  settled(): Promise<void> {
    return (this.#starting ?? Promise.resolve()).then(
      () => undefined,
      () => undefined,
    );
  }

  /** Stops the instance: closes the app, then its database pool. Safe to call twice. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #start(): Promise<ReadyApp> {
    const started = performance.now();
    this.#setStatus('starting', null);
    let timer: NodeJS.Timeout | undefined;
    const work = this.#boot();
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new AppvisorError('APP_START_TIMEOUT', { app: this.spec.name, ms: this.#deps.startTimeoutMs }),
          ),
        this.#deps.startTimeoutMs,
      );
      timer.unref();
    });
    try {
      const instance = await Promise.race([work, timeout]);
      if (this.#stopped) {
        await this.#closeBooted(instance);
        throw new AppvisorError('APP_ERROR', { app: this.spec.name, detail: 'stopped while starting' });
      }
      this.#instance = instance;
      // One closure per start, one AsyncLocalStorage.run per request.
      const scope = this.#scope;
      const { handler, upgrade } = instance;
      this.#ready = {
        name: this.spec.name,
        handler: (req, res) => runInApp(scope, handler, req, res),
        ...(upgrade ? { upgrade: (req, socket, head) => runInApp(scope, upgrade, req, socket, head) } : {}),
      };
      this.#failures = 0;
      this.#failedAt = null;
      this.#startedAt = new Date();
      this.#setStatus('running', null);
      this.#deps.onStartFinished?.(true, performance.now() - started);
      this.#log.info({ ms: Math.round(performance.now() - started) }, 'app started');
      return this.#ready;
    } catch (err) {
      // A start that outlived its timeout may still finish: close what it made then.
      work.then(
        (late) => (this.#instance === late ? undefined : this.#closeBooted(late)),
        () => undefined,
      );
      this.#deps.onStartFinished?.(false, performance.now() - started);
      throw this.#recordFailure(err);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Opens the database, migrates, and creates the app. Closes the database if any of it fails. */
  async #boot(): Promise<AppInstance> {
    const { application } = this.#deps;
    const db = await this.#deps.openDatabase();
    this.#db = db;
    try {
      await runInApp(this.#scope, migrate, db.client, application.migrations, {
        app: this.spec.name,
        targetVersion: application.version,
        allowUpgrade: this.spec.upgrade,
        application: application.name,
        log: this.#log,
        onStart: (plan) => {
          if (plan.kind === 'upgrade') this.#setStatus('upgrading', null);
        },
      });
      const secrets = await this.#deps.secrets();
      const ownSecret = secrets.own ?? secrets.main;
      const jwt = createJwtHelpers({
        app: this.spec.name,
        ownSecret,
        mode: this.spec.jwtMode,
        mainSecret: secrets.main,
        isMain: this.spec.isMain,
      });
      const context = {
        name: this.spec.name,
        ...(this.spec.displayName ? { displayName: this.spec.displayName } : {}),
        basePath: this.spec.basePath,
        config: this.spec.config,
        database: db,
        jwt,
        log: this.#log,
        isMain: this.spec.isMain,
      };
      return await runInApp(this.#scope, () => application.create(context));
    } catch (err) {
      if (this.#db === db) this.#db = undefined;
      await db.client.close().catch(() => undefined);
      throw err;
    }
  }

  async #closeBooted(instance: AppInstance): Promise<void> {
    try {
      await runInApp(this.#scope, () => instance.close?.());
    } catch (err) {
      this.#log.warn({ err: messageOf(err) }, 'app close() failed');
    }
    const db = this.#db;
    this.#db = undefined;
    await db?.client.close().catch(() => undefined);
  }

  #recordFailure(err: unknown): AppvisorError {
    const error = toAppvisorError(err, 'APP_ERROR', { app: this.spec.name });
    if (error.code === 'APP_NEEDS_UPGRADE') {
      this.#lastFailure = error;
      this.#setStatus('needs-upgrade', error.toJSON());
      return error;
    }
    this.#lastFailure = error;
    this.#failedAt = new Date();
    if (NOT_RETRIED.has(error.code)) {
      // Another application's data, or data newer than the code: retrying cannot help, and a
      // new spec (a manifest change, a restart) gets a new runner anyway.
      this.#retryAt = Number.POSITIVE_INFINITY;
      this.#setStatus('error', { code: error.code, message: error.message });
      this.#log.error({ err: error.message, code: error.code }, 'app cannot start');
      return error;
    }
    this.#failures += 1;
    // 1 s doubling to 5 min, as for reconciles (SPEC §4).
    const delay = backoffDelay(this.#failures, this.#deps.backoff ?? BACKOFF_DEFAULTS);
    this.#retryAt = Date.now() + delay;
    this.#setStatus('error', { code: error.code, message: error.message });
    this.#log.error({ err: error.message, code: error.code, retryInMs: delay }, 'app failed to start');
    if (this.spec.withMain && !this.#stopped) {
      // with-main apps come back by themselves; on-first-visit ones on their next visit.
      clearTimeout(this.#retryTimer);
      this.#retryTimer = setTimeout(() => {
        // The backoff is over now: a timer may fire a millisecond before Date.now() reaches
        // #retryAt, and a start refused then would end the retries for good.
        this.#retryAt = 0;
        this.start().catch(() => undefined);
      }, delay);
      this.#retryTimer.unref();
    }
    return error;
  }

  /** The error a start that fails fast answers: the last failure itself, code and message intact. */
  #failure(): AppvisorError {
    return this.#lastFailure ?? new AppvisorError('APP_ERROR', { app: this.spec.name, detail: 'failed' });
  }

  async #stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
    const wasActive =
      this.#status !== 'stopped' && this.#status !== 'error' && this.#status !== 'needs-upgrade';
    if (wasActive) this.#setStatus('stopping', this.#error);
    await this.#starting?.catch(() => undefined);
    const instance = this.#instance;
    this.#ready = undefined;
    this.#instance = undefined;
    if (instance) await this.#closeBooted(instance);
    this.#startedAt = null;
    if (wasActive) this.#setStatus('stopped', null);
  }

  #setStatus(status: AppStatus, error: InstanceError | null): void {
    if (this.#status === status && this.#error === error) return;
    this.#status = status;
    this.#error = error;
    this.#deps.onStatus(status, error);
  }
}
