import type { Logger } from 'pino';
import { AppvisorError, messageOf, toAppvisorError } from '../errors.js';
import type { ReadyApp } from '../gateway/types.js';
import type { AppDatabase } from '../providers/provider.js';
import type { AppStatus, SecretSet } from '../state/types.js';
import type { InstanceError, InstanceSpec } from './adapter.js';
import { type AppScope, appScope, runInApp } from './app-context.js';
import type { AppInstance, Application } from './contract.js';
import { createJwtHelpers, JwtKeyRing } from './jwt.js';
import { checkDataVersion, migrate } from './migrations.js';
import type { InstanceRunner } from './runner.js';

/** The JWT secrets an instance signs and verifies with. */
export interface InstanceSecrets {
  readonly own: SecretSet | undefined;
  readonly main: SecretSet;
}

export interface InstanceDeps {
  /** The application module the spec names, loaded. */
  application(): Promise<Application>;
  readonly log: Logger;
  readonly startTimeoutMs: number;
  openDatabase(): Promise<AppDatabase>;
  /** The app's own secrets (undefined for shared/main) and the main app's. */
  secrets(): Promise<InstanceSecrets>;
  onStatus(status: AppStatus, error: InstanceError | null): void;
  onStartFinished?(ok: boolean, ms: number): void;
}

/**
 * One app instance's lifecycle: `stopped → starting (→ upgrading) → running → stopping →
 * stopped`, or `error` / `needs-upgrade`. Single-use: start is single-flight (concurrent callers
 * share one start), a failed start is answered with its error from then on (fail fast) and never
 * retried here — whoever decides starts a new runner. Stop is idempotent (the close promise is
 * stored).
 */
export class AppInstanceRunner implements InstanceRunner {
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
  /** What the failed start threw; answered to every later call. */
  #lastFailure: AppvisorError | undefined;
  #failedAt: Date | null = null;
  /** While a start is under way: when its timeout ends it (ms since the epoch). */
  #deadline: number | null = null;
  /** Set once stop() is called: a start that finishes afterwards is closed at once. */
  #stopped = false;
  /** The secrets the app's JWT helpers read on every call (a rotation replaces them). */
  #keys: { own: JwtKeyRing; main: JwtKeyRing } | undefined;

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

  /** When the start failed (null unless it did). */
  get failedAt(): Date | null {
    return this.#failedAt;
  }

  /** While a start is under way: when it gives up (ms since the epoch); null otherwise. */
  get deadline(): number | null {
    return this.#starting ? this.#deadline : null;
  }

  /** The app if it can take a request right now. */
  ready(): ReadyApp | undefined {
    return this.#ready;
  }

  /**
   * Starts the instance, or joins the start under way. After a failure, every call fails fast
   * with that failure's error.
   */
  start(): Promise<ReadyApp> {
    if (this.#ready) return Promise.resolve(this.#ready);
    if (this.#starting) return this.#starting;
    if (this.#lastFailure) return Promise.reject(this.#lastFailure);
    if (this.#stopped)
      return Promise.reject(new AppvisorError('APP_ERROR', { app: this.spec.name, detail: 'stopped' }));
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
    this.#deadline = Date.now() + this.#deps.startTimeoutMs;
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

  /**
   * Opens the database, checks the data version (`data.boot: 'migrate'`: migrates), and creates
   * the app. Closes the database if any of it fails.
   */
  async #boot(): Promise<AppInstance> {
    const application = await this.#deps.application();
    const db = await this.#deps.openDatabase();
    this.#db = db;
    // Read beside the data check (another connection): a cold start waits for one round trip less.
    const secretsRead = this.#deps.secrets();
    secretsRead.catch(() => undefined);
    try {
      if (this.spec.data.boot === 'migrate') {
        await runInApp(this.#scope, migrate, db.client, application.migrations, {
          app: this.spec.name,
          targetVersion: this.spec.data.version,
          allowUpgrade: this.spec.data.upgrade,
          application: application.name,
          log: this.#log,
          onStart: (plan) => {
            if (plan.kind === 'upgrade') this.#setStatus('upgrading', null);
          },
        });
      } else {
        await runInApp(this.#scope, checkDataVersion, db.client, {
          app: this.spec.name,
          targetVersion: this.spec.data.version,
          application: application.name,
        });
      }
      const secrets = await secretsRead;
      const keys = { own: new JwtKeyRing(secrets.own ?? secrets.main), main: new JwtKeyRing(secrets.main) };
      const jwt = createJwtHelpers({
        app: this.spec.name,
        ownSecret: keys.own,
        mode: this.spec.secret.mode,
        mainSecret: keys.main,
        isMain: this.spec.isMain,
      });
      this.#keys = keys;
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

  /**
   * Reads the app's secrets again and hands them to its JWT helpers (a rotation, SPEC §8.4):
   * the running app signs with the new secret from now on, without a restart. A boot under way
   * may have read them before the change: it is waited for, then refreshed.
   */
  async refreshSecrets(): Promise<void> {
    if (!this.#keys) await this.#starting?.catch(() => undefined);
    const keys = this.#keys;
    if (!keys) return;
    const secrets = await this.#deps.secrets();
    keys.own.set(secrets.own ?? secrets.main);
    keys.main.set(secrets.main);
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
    const code = error.code;
    this.#lastFailure = error;
    this.#failedAt = new Date();
    if (code === 'APP_NEEDS_UPGRADE') {
      this.#setStatus('needs-upgrade', { code, message: error.message });
      this.#log.warn({ err: error.message, code }, 'app needs an upgrade');
      return error;
    }
    this.#setStatus('error', { code: error.code, message: error.message });
    this.#log.error({ err: error.message, code: error.code }, 'app failed to start');
    return error;
  }

  async #stop(): Promise<void> {
    this.#stopped = true;
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
