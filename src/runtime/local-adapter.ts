/**
 * The `local` process adapter: every app instance runs in this process, in its own
 * AsyncLocalStorage scope (SPEC's shared-memory mode), one {@link AppInstanceRunner} per name.
 */
import { EventEmitter } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { dialectFor, parseDatabaseUrl } from '../dialects/registry.js';
import { AppvisorError } from '../errors.js';
import type { ReadyApp } from '../gateway/types.js';
import type { AppDatabase, SqlClient } from '../providers/provider.js';
import type { ProviderSet } from '../providers/set.js';
import { TABLES } from '../state/dialect.js';
import { refuseForeignTables } from '../state/foreign-tables.js';
import { type AppStatus, MAIN_APP, type SecretSet } from '../state/types.js';
import {
  type AdapterEventMap,
  type AppProcessAdapter,
  type DatabaseSettings,
  DEFAULT_START_TIMEOUT_MS,
  type InstanceError,
  type InstanceSpec,
  type InstanceState,
  type SecretSource,
} from './adapter.js';
import { type Application, loadApplication } from './contract.js';
import { AppInstanceRunner, type InstanceSecrets } from './instance.js';
import type { HostDatabase } from './isolated/protocol.js';
import { IsolatedInstanceRunner } from './isolated/runner.js';
import { sweepStaleSockets } from './isolated/sockets.js';
import { secretSetOf } from './jwt.js';
import { readDataVersion } from './migrations.js';
import type { InstanceRunner } from './runner.js';

/**
 * PostgreSQL: the main app's schema, pinned on its pool. The default search_path
 * (`"$user", public`) would put its tables in a schema named like the user when there is one,
 * e.g. the state store's own `appvisor` for a user called appvisor.
 */
const MAIN_APP_SCHEMA = 'public';

export interface LocalAdapterOptions {
  /** Opens the instances' databases (the main server's and `new-connection` ones). */
  readonly providers: ProviderSet;
  /** Where the secrets an instance spec names are read. */
  readonly secrets: SecretSource;
  readonly log: Logger;
  /** A start that takes longer fails with APP_START_TIMEOUT. @default 30000 */
  readonly startTimeoutMs?: number;
  /** Connections per instance pool when its spec says nothing. @default 5 */
  readonly poolMax?: number;
  /** Resolves a spec's application module. @default loadApplication (imported once per module) */
  readonly loadApplication?: (module: string | null) => Promise<Application>;
  /** The data folder: isolated apps' sockets go in its `run/`. @default the system's temp folder */
  readonly dataDir?: string;
}

/** How long an isolated app's start waits for its connections in the budget. */
const BUDGET_WAIT_MS = 10_000;

/** The in-process adapter (settings `processAdapter: local`). */
export class LocalAdapter implements AppProcessAdapter {
  readonly kind = 'local' as const;
  readonly events = new EventEmitter<AdapterEventMap>();
  readonly #opts: LocalAdapterOptions;
  readonly #runners = new Map<string, InstanceRunner>();
  /** Runners being stopped after they were replaced or stopped: close() waits for them. */
  readonly #stopping = new Set<Promise<void>>();
  /** Start order, for stopping in reverse. */
  readonly #order = new Set<string>();
  readonly #applications = new Map<string, Promise<Application>>();
  #closing: Promise<void> | undefined;
  /** The sweep of stale isolated-app sockets, run before the first isolated start. */
  #swept: Promise<void> | undefined;

  constructor(options: LocalAdapterOptions) {
    this.#opts = options;
  }

  get startTimeoutMs(): number {
    return this.#opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  }

  async start(spec: InstanceSpec, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    if (this.#closing) throw new AppvisorError('APP_ERROR', { app: spec.name, detail: 'shutting down' });
    let runner = this.#runners.get(spec.name);
    const joinable =
      runner !== undefined &&
      runner.spec.hash === spec.hash &&
      (runner.status === 'running' || runner.status === 'starting' || runner.status === 'upgrading');
    if (!joinable) {
      if (runner) await this.#retire(spec.name, runner);
      // A visit may have started this very spec while the old instance stopped: join it.
      const meanwhile = this.#runners.get(spec.name);
      if (meanwhile !== undefined && meanwhile.spec.hash === spec.hash) return this.start(spec, signal);
      if (meanwhile !== undefined) await this.#retire(spec.name, meanwhile);
      runner = this.#runner(spec);
      this.#runners.set(spec.name, runner);
      // Last started last in the set (close() stops in reverse); a stopped app leaves it.
      this.#order.delete(spec.name);
      this.#order.add(spec.name);
    }
    const current = runner!;
    const started = current.start();
    if (!signal) {
      await started;
      return;
    }
    const onAbort = (): void => {
      if (this.#runners.get(spec.name) === current) void this.stop(spec.name);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await started;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    signal.throwIfAborted();
  }

  async stop(name: string, opts: { readonly graceMs?: number } = {}): Promise<void> {
    const runner = this.#runners.get(name);
    if (!runner) return;
    await this.#retire(name, runner, opts);
  }

  route(name: string): ReadyApp | undefined {
    return this.#runners.get(name)?.ready();
  }

  acquire(name: string): Promise<ReadyApp> {
    const runner = this.#runners.get(name);
    if (!runner) return Promise.reject(new AppvisorError('APP_ERROR', { app: name, detail: 'not started' }));
    return runner.start();
  }

  async ready(name: string): Promise<void> {
    await this.#runners.get(name)?.settled();
  }

  status(name: string): InstanceState | undefined {
    const r = this.#runners.get(name);
    if (!r) return undefined;
    return {
      status: r.status,
      error: r.error,
      specHash: r.spec.hash,
      startedAt: r.startedAt,
      failedAt: r.failedAt,
      deadline: r.deadline,
      ...(r.spec.isolation && r.spec.isolation.mode !== 'shared'
        ? {
            isolation: {
              mode: r.spec.isolation.mode,
              ...(r.memoryMb !== undefined ? { memoryMb: r.memoryMb } : {}),
            },
          }
        : {}),
    };
  }

  async settled(): Promise<void> {
    await Promise.all([...this.#runners.values()].map((r) => r.settled()));
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      for (const name of [...this.#order].reverse()) {
        // The main app last: the others may still call it while they stop.
        if (name !== MAIN_APP) await this.stop(name);
      }
      await Promise.allSettled([...this.#runners.keys()].map((name) => this.stop(name)));
      await Promise.allSettled([...this.#stopping]);
    })();
    return this.#closing;
  }

  /** Forgets the runner (its later events are not the app's any more) and stops it. */
  async #retire(
    name: string,
    runner: InstanceRunner,
    opts: { readonly graceMs?: number } = {},
  ): Promise<void> {
    if (this.#runners.get(name) === runner) {
      this.#runners.delete(name);
      this.#order.delete(name);
    }
    const stopping = runner.stop(opts);
    this.#stopping.add(stopping);
    try {
      await stopping;
    } finally {
      this.#stopping.delete(stopping);
    }
  }

  #runner(spec: InstanceSpec): InstanceRunner {
    const isolation = spec.isolation;
    if (isolation !== undefined && isolation.mode !== 'shared' && !spec.isMain)
      return this.#isolated(spec, isolation);
    const log = this.#opts.log.child({ app: spec.name });
    const runner: AppInstanceRunner = new AppInstanceRunner(spec, {
      application: () => this.application(spec),
      log,
      startTimeoutMs: this.startTimeoutMs,
      openDatabase: () => this.#openDatabase(spec.name, spec.database),
      secrets: () => this.#secrets(spec),
      ...this.#reports(spec.name, () => runner),
    });
    return runner;
  }

  /**
   * What a runner reports, passed on as the adapter's events — but only while it is the app's
   * current runner: a replaced one's late events must not overwrite the current one's status.
   */
  #reports(name: string, runner: () => InstanceRunner) {
    const current = (): boolean => this.#runners.get(name) === runner();
    return {
      onStatus: (status: AppStatus, error: InstanceError | null): void => {
        if (current()) this.events.emit('status', { app: name, status, error });
      },
      onStartFinished: (ok: boolean, ms: number): void => {
        if (current()) this.events.emit('start', { app: name, ok, durationMs: ms });
      },
      onCrash: (error: AppvisorError): void => {
        if (current())
          this.events.emit('crash', { app: name, error: { code: error.code, message: error.message } });
      },
    };
  }

  /** A runner whose app runs in a worker thread or child process of its own (SPEC §8.3). */
  #isolated(spec: InstanceSpec, isolation: NonNullable<InstanceSpec['isolation']>): InstanceRunner {
    const log = this.#opts.log.child({ app: spec.name });
    const socketDir = path.join(this.#opts.dataDir ?? path.join(os.tmpdir(), 'appvisor'), 'run');
    // Once, before the first isolated app: what a killed supervisor left there goes.
    this.#swept ??= sweepStaleSockets(socketDir);
    const swept = this.#swept;
    const runner: IsolatedInstanceRunner = new IsolatedInstanceRunner(spec, isolation, {
      log,
      startTimeoutMs: this.startTimeoutMs,
      socketDir,
      database: async () => {
        await swept;
        return this.#isolatedDatabase(spec.name, spec.database);
      },
      secrets: () => this.#secrets(spec),
      ...this.#reports(spec.name, () => runner),
    });
    return runner;
  }

  /**
   * Where an isolated app's host opens its database: the settings the provider resolves (its
   * client here is only asked for them, and closed unused), and on PostgreSQL the pool's
   * connections reserved in the server's budget while the host holds them.
   */
  async #isolatedDatabase(
    name: string,
    settings: DatabaseSettings,
  ): Promise<{ database: HostDatabase; release(): void }> {
    if (settings.kind === 'main') {
      throw new AppvisorError('APP_ERROR', { app: name, detail: 'the main app always runs shared' });
    }
    const maxConnections = settings.maxConnections ?? this.#opts.poolMax ?? 5;
    const opened = await this.#openDatabase(name, settings);
    await opened.client.close().catch(() => undefined);
    const releases: (() => void)[] = [];
    const release = (): void => {
      for (const r of releases.splice(0)) r();
    };
    const url = opened.connection.url;
    if (opened.dialect === 'postgres' && url !== undefined) {
      const parsed = parseDatabaseUrl(url);
      const budget = this.#opts.providers.budgets().get(`${parsed.host}:${parsed.port}`);
      try {
        for (let i = 0; budget !== undefined && i < maxConnections; i++) {
          releases.push(await budget.acquire(BUDGET_WAIT_MS, () => parsed.redacted));
        }
      } catch (err) {
        release();
        throw err;
      }
    }
    return { database: { connection: opened.connection, maxConnections }, release };
  }

  /** The application module of a spec, imported once per module. */
  application(spec: InstanceSpec): Promise<Application> {
    const key = spec.application.module ?? '';
    let app = this.#applications.get(key);
    if (!app) {
      const load = this.#opts.loadApplication ?? ((m: string | null) => loadApplication(m ?? undefined));
      app = load(spec.application.module);
      this.#applications.set(key, app);
      app.catch(() => this.#applications.delete(key));
    }
    return app;
  }

  async #secrets(spec: InstanceSpec): Promise<InstanceSecrets> {
    const source = this.#opts.secrets;
    const ownNeeded = !spec.isMain && spec.secret.mode !== 'shared';
    const read = async (app: string): Promise<SecretSet | undefined> => {
      if (source.getSecretSet) return source.getSecretSet(app);
      const secret = await source.getSecret(app);
      return secret ? secretSetOf(secret) : undefined;
    };
    // Both at once: one round trip to the store instead of two.
    const [main, own] = await Promise.all([read(MAIN_APP), ownNeeded ? read(spec.secret.app) : undefined]);
    if (!main)
      throw new AppvisorError('APP_ERROR', { app: spec.name, detail: 'the main JWT secret is missing' });
    if (!ownNeeded) return { own: undefined, main };
    if (!own) {
      throw new AppvisorError('APP_ERROR', {
        app: spec.name,
        detail: 'its JWT secret is missing; run apply',
      });
    }
    return { own, main };
  }

  async refreshSecrets(names?: readonly string[]): Promise<void> {
    const runners = names ? names.flatMap((n) => this.#runners.get(n) ?? []) : [...this.#runners.values()];
    await Promise.all(runners.map((r) => r.refreshSecrets()));
  }

  async #openDatabase(name: string, settings: DatabaseSettings): Promise<AppDatabase> {
    const maxConnections = settings.maxConnections ?? this.#opts.poolMax ?? 5;
    if (settings.kind === 'main') return this.#openMainDatabase(maxConnections, settings.adopt);
    const target = settings.target;
    return this.#opts.providers.forTarget(target).openDatabase(target.database, {
      ...(target.kind === 'schema' && target.schema ? { schema: target.schema } : {}),
      maxConnections,
      label: `appvisor:${name}`,
    });
  }

  async #openMainDatabase(max: number, adopt: boolean): Promise<AppDatabase> {
    const url = this.#opts.providers.mainUrl;
    const dialect = dialectFor(url);
    const schema = dialect.schemas ? MAIN_APP_SCHEMA : undefined;
    const client = dialect.openClient(url, { max, ...(schema ? { schema } : {}) });
    try {
      await refuseForeignMainData(client, url.redacted, adopt);
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
}

/**
 * The main app installs its migrations only into a main database holding nothing but the
 * state store (on MySQL and SQLite it lives there too) — or data the main app installed itself,
 * marked by its data version table. Anything else is refused (ADOPT_REFUSED: the start fails,
 * is logged, and the main app answers 503) before a statement writes, unless adopted.
 */
async function refuseForeignMainData(client: SqlClient, where: string, adopt: boolean): Promise<void> {
  if ((await readDataVersion(client)) !== undefined) return;
  await refuseForeignTables(client, { known: Object.values(TABLES), adopt, what: 'the main app', where });
}
