/**
 * `appvisor serve`: the wiring of one supervisor process. State store, providers, runtime,
 * reconcile queue, manifest watcher, gateway and admin surface, started in that order and
 * stopped in reverse (STYLE.md: stop the watcher, drain the queue, stop accepting and drain
 * requests, stop apps in reverse start order, close pools, release the lock).
 */
import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { createSupervisorHandler, SUPERVISOR_PREFIX } from '../admin/handler.js';
import { createMetrics } from '../admin/metrics.js';
import { resolveAdminToken } from '../admin/token.js';
import type { AdminEventMap } from '../admin/types.js';
import { describeMainDatabase } from '../config/main-database.js';
import type { Settings } from '../config/types.js';
import { parseDatabaseUrl } from '../dialects/registry.js';
import { type ErrorSummary, messageOf, summaryOf } from '../errors.js';
import { createGateway, type Gateway } from '../gateway/server.js';
import type { GatewayApps } from '../gateway/types.js';
import { ManifestCache } from '../manifests/cache.js';
import { loadManifests } from '../manifests/load.js';
import { generateSecret } from '../providers/secrets.js';
import { ProviderSet } from '../providers/set.js';
import { toDesired } from '../reconcile/desired.js';
import { createDataClaimer, createMigrator } from '../reconcile/migrate.js';
import type { Desired, PlanOptions } from '../reconcile/model.js';
import { QUEUE_EVENTS, ReconcileQueue } from '../reconcile/queue.js';
import { reconcileApp } from '../reconcile/reconciler.js';
import { loadApplication } from '../runtime/contract.js';
import { MAIN_APP, Runtime } from '../runtime/runtime.js';
import { openStateStore } from '../state/store.js';
import type { StateStore } from '../state/types.js';
import { createAdminBackend } from './admin-backend.js';
import { LockKeeper } from './lock-keeper.js';
import { type ManifestWatcher, watchManifests } from './watcher.js';

/** The longest a scheduled drop's reconcile waits before it looks again. */
const MAX_REQUEUE_MS = 3_600_000;

export interface SupervisorOptions {
  readonly settings: Settings;
  readonly log: Logger;
  readonly env?: NodeJS.ProcessEnv;
  /** Full resync period (re-read apps.d, reconcile every app). @default 300000 */
  readonly resyncMs?: number;
  /** @default 30000 */
  readonly startTimeoutMs?: number;
  /** @default 60000 */
  readonly stepTimeoutMs?: number;
  /** How long a reconcile waits for another process's lock. @default 30000 */
  readonly lockWaitMs?: number;
  /** Connections per app pool. @default 5 */
  readonly poolMax?: number;
  /** Backoff of failed reconciles, failed app starts included (tests shorten it). */
  readonly backoff?: { baseMs?: number; maxMs?: number };
}

export interface Supervisor {
  /** e.g. http://127.0.0.1:13000 */
  readonly url: string;
  readonly address: AddressInfo;
  readonly adminToken: string;
  /** The file the admin token was read from or written to; undefined when APPVISOR_ADMIN_TOKEN sets it. */
  readonly adminTokenFile: string | undefined;
  /** Resolves when the first reconcile is done (readyz turns 200). */
  readonly ready: Promise<void>;
  readonly runtime: Runtime;
  readonly queue: ReconcileQueue;
  readonly events: EventEmitter<AdminEventMap>;
  /** Re-reads apps.d now and reconciles what changed (the watcher does this by itself). */
  reload(): Promise<void>;
  /** Graceful shutdown within `graceMs`; idempotent. */
  close(opts?: { graceMs?: number }): Promise<void>;
}

export async function startSupervisor(options: SupervisorOptions): Promise<Supervisor> {
  const { settings, log } = options;
  const mainUrl = parseDatabaseUrl(settings.database.url);
  const main = describeMainDatabase(mainUrl, settings.dataDir);
  const application = await loadApplication(settings.app);
  const store = await openStateStore(mainUrl, { log, adopt: settings.mainDatabase?.adopt ?? false });
  const cleanup: (() => Promise<unknown>)[] = [() => store.close()];
  try {
    return await boot(options, { mainUrl, main, application, store, cleanup });
  } catch (err) {
    for (const fn of cleanup.reverse()) await fn().catch(() => undefined);
    throw err;
  }
}

async function boot(
  options: SupervisorOptions,
  base: {
    mainUrl: ReturnType<typeof parseDatabaseUrl>;
    main: PlanOptions['main'];
    application: Awaited<ReturnType<typeof loadApplication>>;
    store: StateStore;
    cleanup: (() => Promise<unknown>)[];
  },
): Promise<Supervisor> {
  const { settings, log } = options;
  const { mainUrl, main, application, store, cleanup } = base;
  // The main app's secret exists before anything can sign with it; never regenerated.
  await store.ensureSecret(MAIN_APP, generateSecret());

  const providers = new ProviderSet(mainUrl, {
    dataDir: settings.dataDir,
    log,
    connectionBudget: settings.database.connectionBudget ?? 64,
  });
  cleanup.push(() => providers.close());
  const events = new EventEmitter<AdminEventMap>();
  const runtime = new Runtime({
    application,
    applicationModule: settings.app ?? null,
    processAdapter: settings.processAdapter,
    providers,
    store,
    log,
    events,
    startTimeoutMs: options.startTimeoutMs ?? 30_000,
    ...(options.poolMax ? { poolMax: options.poolMax } : {}),
    ...(options.backoff?.baseMs !== undefined ? { mainRetryMs: options.backoff.baseMs } : {}),
    adoptMainDatabase: settings.mainDatabase?.adopt ?? false,
    // A visit's failed start goes to the app's reconcile, which retries it with the queue's backoff.
    onStartFailed: (name) => queue.add(name),
  });
  cleanup.push(() => runtime.close());
  const planOptions: PlanOptions = {
    main,
    codeVersion: application.version,
    application: application.name,
    deletionGraceMs: settings.deletionGraceMs,
  };
  const migrate = createMigrator({ application, providers, main });
  const claimData = createDataClaimer({ application, providers, main });
  const keeper = new LockKeeper(mainUrl, { log, store, waitMs: options.lockWaitMs ?? 30_000 });
  cleanup.push(() => keeper.release());

  // ---- desired state: the manifest cache ----
  // Unchanged files are not parsed again on every reload (1,000 manifests: ~250 ms -> ~20 ms).
  const manifestCache = new ManifestCache();
  const readManifests = async (): Promise<Desired> =>
    toDesired(await loadManifests(settings.appsDir, { cache: manifestCache }));
  let desired: Desired = await readManifests();
  let knownRecords = new Set((await store.listRecords()).map((r) => r.name));
  const reconcileErrors = new Map<string, ErrorSummary>();
  logInvalid(desired, log);

  const allNames = (): string[] => {
    const names = new Set<string>([...desired.apps.keys(), ...knownRecords, ...runtime.names()]);
    for (const f of desired.invalid) if (f.name) names.add(f.name);
    return [...names];
  };

  const queue = new ReconcileQueue({
    log,
    resyncMs: 0,
    ...(options.backoff ? { backoff: options.backoff } : {}),
    reconcile: async (name, ctx) => {
      try {
        // Inside the try: a lock that cannot be taken (main database down, another process
        // applying) is this run's failure, shown on the app until a run succeeds.
        const term = await keeper.ensure(ctx.signal);
        const report = await reconcileApp(
          name,
          {
            store,
            fence: term.fence,
            providers,
            planOptions,
            desired: () => desired,
            runtime,
            migrate,
            claimData,
            stepTimeoutMs: options.stepTimeoutMs ?? 60_000,
          },
          // Losing the lock aborts the run; its fenced writes are refused anyway.
          { ...ctx, signal: AbortSignal.any([ctx.signal, term.signal]) },
        );
        reconcileErrors.delete(name);
        if (report.record) knownRecords.add(name);
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
        reconcileErrors.set(name, summaryOf(err, 'APP_ERROR', { app: name }));
        throw err;
      }
    },
  });
  cleanup.push(() => queue.close({ graceMs: 5_000 }));
  queue.on(QUEUE_EVENTS.end, (e) => {
    events.emit('reconcile', { app: e.key, outcome: e.outcome, durationMs: e.durationMs });
  });
  queue.on(QUEUE_EVENTS.idle, () => {
    keeper
      .release()
      .catch((err) => log.warn({ err: messageOf(err) }, 'could not release the reconcile lock'));
  });

  /** Re-reads apps.d and queues every app whose manifest (or its validity) changed. */
  const reloadOnce = async (): Promise<void> => {
    let next: Desired;
    try {
      next = await readManifests();
    } catch (err) {
      log.error({ err: messageOf(err) }, 'cannot read the apps folder; keeping the manifests as they were');
      return;
    }
    const changed = changedNames(desired, next);
    desired = next;
    logInvalid(next, log);
    if (next.apps.size === 0 && knownRecords.size > 0) {
      // The empty-set guard is decided by the planner; queue everything so each app sees it.
      queue.addAll(allNames());
    } else {
      queue.addAll(changed);
    }
  };

  // One read of apps.d at a time, and calls made during a read coalesce into one more read after
  // it: two overlapping reads could finish out of order and leave the older folder state in place.
  let reading: Promise<void> | undefined;
  let readAgain: Promise<void> | undefined;
  const reload = (): Promise<void> => {
    if (!reading) {
      reading = reloadOnce().finally(() => {
        reading = undefined;
      });
      return reading;
    }
    readAgain ??= reading.then(() => {
      readAgain = undefined;
      return reload();
    });
    return readAgain;
  };

  const resync = async (): Promise<void> => {
    await reload();
    knownRecords = new Set((await store.listRecords()).map((r) => r.name));
    queue.addAll(allNames());
  };
  const resyncTimer = setInterval(() => {
    resync().catch((err) => log.error({ err: messageOf(err) }, 'resync failed'));
  }, options.resyncMs ?? 300_000);
  resyncTimer.unref();
  cleanup.push(async () => clearInterval(resyncTimer));

  // ---- admin surface ----
  let isReady = false;
  const backend = createAdminBackend({
    events,
    runtime,
    store,
    providers,
    planOptions,
    log,
    desired: () => desired,
    reconcileErrors,
    ready: () => isReady,
    requestReconcile: (name) => queue.add(name),
  });
  const metrics = createMetrics(backend);
  cleanup.push(async () => metrics.close());
  const { token, file: tokenFile } = await resolveAdminToken({
    ...(options.env ? { env: options.env } : {}),
    dataDir: settings.dataDir,
    log,
  });
  const supervisorRoutes = createSupervisorHandler({ backend, token, metrics, log });
  cleanup.push(async () => supervisorRoutes.close());

  // ---- gateway ----
  const apps: GatewayApps = {
    has: (name) => runtime.has(name),
    appForDomain: (host) => runtime.appForDomain(host),
    ready: (name) => runtime.ready(name),
    readyMain: () => runtime.readyMain(),
    acquire: (name) => runtime.acquire(name),
    acquireMain: () => runtime.acquireMain(),
    onRequest: (app, status, ms) => metrics.observeRequest(app, status, ms),
  };
  const gateway: Gateway = createGateway({
    apps,
    // The gateway hands over the path after `/_supervisor`; the admin routes match the full path.
    supervisor: (req, res, path) => supervisorRoutes(req, res, SUPERVISOR_PREFIX + path),
    log,
    startTimeoutMs: options.startTimeoutMs ?? 30_000,
    supervisorHosts: settings.admin?.hosts,
  });
  const address = await gateway.listen(settings.listen.port, settings.listen.host);
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  log.info({ url }, 'appvisor listening');

  // ---- first reconcile, then the watcher ----
  const watcher: ManifestWatcher = watchManifests(settings.appsDir, () => void reload(), { log });
  const ready = (async () => {
    await runtime
      .startMain()
      .catch((err) => log.error({ err: messageOf(err) }, 'the main app failed to start'));
    queue.addAll(allNames());
    await queue.onIdle();
    // with-main apps start in the background of their reconcile; ready waits for them.
    await runtime.settled();
    await watcher.ready;
    isReady = true;
    log.info({ apps: desired.apps.size, invalid: desired.invalid.length }, 'first reconcile done; ready');
  })();
  ready.catch((err) => log.error({ err: messageOf(err) }, 'first reconcile failed'));

  let closing: Promise<void> | undefined;
  const close = (opts: { graceMs?: number } = {}): Promise<void> => {
    closing ??= (async () => {
      const graceMs = opts.graceMs ?? 10_000;
      // One deadline for the whole shutdown: each phase gets what the ones before it left.
      const deadline = Date.now() + graceMs;
      const left = (): number => Math.max(0, deadline - Date.now());
      log.info({ graceMs }, 'shutting down');
      await watcher.close();
      clearInterval(resyncTimer);
      await queue.close({ graceMs: Math.min(left(), 5_000) });
      supervisorRoutes.close();
      await gateway.close({ graceMs: left() });
      // An app hanging in create() or close() must not hold the process past its grace.
      if (!(await settlesWithin(runtime.close(), left()))) {
        log.warn({ graceMs }, 'apps still stopping after the grace period; closing the rest anyway');
      }
      metrics.close();
      await providers.close();
      await keeper.release().catch(() => undefined);
      await store.close();
      log.info('stopped');
    })();
    return closing;
  };

  return {
    url,
    address,
    adminToken: token,
    adminTokenFile: tokenFile,
    ready,
    runtime,
    queue,
    events,
    reload,
    close,
  };
}

/** Whether `work` settles within `ms` (its rejection counts as settled; it is never rethrown). */
async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([
      work.then(
        () => true,
        () => true,
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Names whose manifest appeared, disappeared, changed, moved to another file, or changed validity. */
function changedNames(before: Desired, after: Desired): string[] {
  const names = new Set<string>();
  for (const [name, loaded] of after.apps) {
    const was = before.apps.get(name);
    // A moved file matters too: the record keeps the file an invalid manifest is matched by.
    if (was?.hash !== loaded.hash || was.file !== loaded.file) names.add(name);
  }
  for (const name of before.apps.keys()) if (!after.apps.has(name)) names.add(name);
  const invalidKey = (d: Desired) =>
    new Map(d.invalid.map((f) => [f.name ?? f.file, JSON.stringify(f.errors)]));
  const a = invalidKey(before);
  const b = invalidKey(after);
  for (const [k, v] of b) if (a.get(k) !== v && after.apps.has(k) === false) names.add(k);
  for (const k of a.keys()) if (!b.has(k)) names.add(k);
  return [...names].filter((n) => /^[a-z][a-z0-9_-]{0,39}$/.test(n));
}

function logInvalid(desired: Desired, log: Logger): void {
  for (const e of desired.errors) log.error({ file: e.file, line: e.line, column: e.column }, e.message);
}
