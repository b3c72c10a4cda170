/**
 * `appvisor serve`: one supervisor process as a list of runnables, started in this order and
 * stopped in reverse under one grace deadline (STYLE.md: stop the watcher, drain the queue,
 * stop accepting and drain requests, stop apps, close pools, release the lock, close the store):
 *
 *   (event-loop watcher →) state store → leadership → providers → manifests → runtime → heartbeat → gateway (+ admin) → queue → change feed → watcher
 *
 * The work comes last and goes first: nothing reconciles before what a reconcile uses is up,
 * and nothing is stopped while a reconcile or a request may still use it. The watcher is up
 * before the first reconcile and re-reads apps.d once it is ready, so an edit made while the
 * supervisor starts is not left for the resync.
 */
import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { AdminEventMap } from '../admin/types.js';
import { describeMainDatabase } from '../config/main-database.js';
import { reconcileConcurrency } from '../config/settings.js';
import type { Settings } from '../config/types.js';
import { parseDatabaseUrl } from '../dialects/registry.js';
import { AppvisorError, messageOf } from '../errors.js';
import { type ResolvedLoggerOptions, tapLogLines } from '../log.js';
import { knownApplications } from '../manifests/applications-check.js';
import { backupsDirOf } from '../ops/context.js';
import { createDropBackup } from '../ops/drop-backup.js';
import { sweepKilledOperations } from '../ops/work-dir.js';
import { abortable } from '../providers/abort.js';
import { generateSecret } from '../providers/secrets.js';
import { ProviderSet } from '../providers/set.js';
import type { LeaseTiming } from '../reconcile/lease.js';
import { createDataClaimer, createMigrator } from '../reconcile/migrate.js';
import type { PlanOptions } from '../reconcile/model.js';
import { QUEUE_EVENTS, ReconcileQueue, type Reconciler } from '../reconcile/queue.js';
import { DEFAULT_START_TIMEOUT_MS } from '../runtime/adapter.js';
import { loadApplications } from '../runtime/applications.js';
import { Runtime } from '../runtime/runtime.js';
import type { StatusEvent } from '../runtime/view.js';
import type { MasterKey } from '../secrets/envelope.js';
import { loadMasterKey } from '../secrets/master-key.js';
import { openStateStore } from '../state/store.js';
import { MAIN_APP } from '../state/types.js';
import { AppLogs } from './app-logs.js';
import { createAppReconciler, type ReconcileErrors } from './app-reconciler.js';
import { ChangeFeed } from './change-feed.js';
import { DesiredState } from './desired-state.js';
import { Drift } from './drift.js';
import { HEARTBEAT_DEFAULTS, startHeartbeat } from './heartbeat.js';
import { startHttpSurface } from './http-surface.js';
import { Leadership } from './leadership.js';
import { startLoopWatcher } from './loop-watcher.js';
import { Resource, RunnableManager } from './manager.js';
import { createServerOperations } from './operations.js';
import { createReplicaIdentity, type ReplicaIdentity } from './replica-identity.js';
import { createUpgradeGate, handOver } from './rolling-upgrade.js';
import { watchManifests } from './watcher.js';

/**
 * The most a draining replica waits for the replicas on newer code to join the rotation: they
 * see it leaving within their 1 s upgrade-gate check and a heartbeat write.
 */
const HANDOVER_TIMEOUT_MS = 5_000;

export interface SupervisorOptions {
  readonly settings: Settings;
  readonly log: Logger;
  readonly env?: NodeJS.ProcessEnv;
  /** Full resync period (re-read apps.d and the records, reconcile every app); 0 turns it off. @default 300000 */
  readonly resyncMs?: number;
  /** @default 30000 */
  readonly startTimeoutMs?: number;
  /** @default 60000 */
  readonly stepTimeoutMs?: number;
  /** SQLite: how long a second server waits for the first one's file lock before LOCK_HELD. @default 2000 */
  readonly lockWaitMs?: number;
  /** The leader lease's timing (tests shorten it). @default 10 s, renewed every 2.5 s */
  readonly lease?: LeaseTiming;
  /** How often the records' versions are polled for other replicas' changes. @default 2000 */
  readonly pollMs?: number;
  /** Whether to LISTEN for other replicas' changes where the store can (tests turn it off). @default true */
  readonly listen?: boolean;
  /** Connections per app pool. @default 5 */
  readonly poolMax?: number;
  /** Backoff of failed reconciles, failed app starts included, and of the main app's starts (tests shorten it). */
  readonly backoff?: { baseMs?: number; maxMs?: number };
  /** How often this replica writes its heartbeat when nothing changes (tests shorten it). @default 2000 */
  readonly heartbeatMs?: number;
  /**
   * Watch the event loop from a thread of its own and log while it is blocked, naming the app
   * that was running (loop-watcher.ts); `log` says how `options.log` writes, for the thread to
   * write the same way on stdout. The loop is the process's: `serve` turns it on, in-process
   * supervisors (tests, benches) leave it off. @default off
   */
  readonly loopWatch?: { readonly log: ResolvedLoggerOptions };
}

export interface Supervisor {
  /** e.g. http://127.0.0.1:13000 */
  readonly url: string;
  readonly address: AddressInfo;
  /**
   * The admin token as this replica knows it: APPVISOR_ADMIN_TOKEN, its file, or generated now;
   * undefined when another replica made the stored one (or this replica's file is stale).
   */
  readonly adminToken: string | undefined;
  /** The file the admin token was read from or written to; undefined when APPVISOR_ADMIN_TOKEN sets it or this replica does not hold it. */
  readonly adminTokenFile: string | undefined;
  /** Resolves when the first reconcile is done (readyz turns 200). */
  readonly ready: Promise<void>;
  readonly runtime: Runtime;
  readonly queue: ReconcileQueue;
  readonly events: EventEmitter<AdminEventMap>;
  /** Who this replica is (SPEC §8.1). */
  readonly replica: ReplicaIdentity;
  /** Whether this replica leads (provisions) now. */
  readonly leading: () => boolean;
  /** The apps whose manifest in this replica's apps.d differs from what the leader applied. */
  readonly drift: () => readonly string[];
  /** Re-reads apps.d now and reconciles what changed (the watcher does this by itself). */
  reload(): Promise<void>;
  /** Graceful shutdown within `graceMs`; idempotent. */
  close(opts?: { graceMs?: number }): Promise<void>;
}

export async function startSupervisor(options: SupervisorOptions): Promise<Supervisor> {
  const { settings, log } = options;
  const mainUrl = parseDatabaseUrl(settings.database.url);
  const main = describeMainDatabase(mainUrl, settings.dataDir);
  const applications = await loadApplications(settings);
  const application = applications.default.application;
  const planOptions: PlanOptions = {
    main,
    codeVersion: application.version,
    application: application.name,
    applications: applications.codes(),
    deletionGraceMs: settings.deletionGraceMs,
    idleStopMs: settings.idleStopMs ?? 0,
  };
  const startTimeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  const events = new EventEmitter<AdminEventMap>();
  const reconcileErrors: ReconcileErrors = new Map();
  const replica = createReplicaIdentity();
  // Every line of an app, its isolated ones too (runner.ts logs them here with `app`), kept for
  // `appvisor logs`; a removed app's lines go with it (unroute says `orphaned`).
  const appLogs = new Resource(
    'app logs',
    async () => {
      const logs = new AppLogs({ replica: replica.id });
      const untap = tapLogLines(log, (line) => logs.addRaw(line));
      const onStatus = (e: StatusEvent): void => {
        if (e.status === 'orphaned') logs.drop(e.app);
      };
      events.on('status', onStatus);
      return {
        logs,
        stop: () => {
          untap();
          events.off('status', onStatus);
        },
      };
    },
    ({ stop }) => stop(),
  );
  const drift = new Drift(log);
  let isReady = false;
  let leaving = false;
  /** Every app looked at again: this replica began or stopped leading, or an older replica came or went. */
  const reconcileAll = (): void => queue.current?.addAll(manifests.current?.names() ?? []);
  /** A replica on newer code stays out of rotation while an older one still serves the data. */
  const waitingFor = (): string | undefined => {
    // Each application's gate: a replica on an older version of any application this one runs
    // keeps it out of rotation (its apps of that application could not start here meanwhile).
    for (const [gate, named] of [
      [upgradeGate, undefined] as const,
      ...namedGates.map(([key, g]) => [g, applications.named(key)!.application] as const),
    ]) {
      const older = gate.last();
      // One that drains serves no new visits: this replica takes them, and they wait for the data.
      if (older && !older.leaving) {
        const which = named ? `application ${named.name}` : 'application';
        const mine = named ? named.version : application.version;
        return `replica ${older.replica} runs ${which} version ${older.version}, older than this one's ${mine}; this replica serves once no live replica runs an older version (a rolling upgrade)`;
      }
    }
    return undefined;
  };
  const heartbeatMs = options.heartbeatMs ?? HEARTBEAT_DEFAULTS.intervalMs;
  /** Where other replicas reach this one's admin API (its listen address unless set). */
  const advertisedUrl = (options.env ?? process.env).APPVISOR_ADVERTISE_URL || undefined;
  const connectionBudget = settings.database.connectionBudget ?? 64;

  /** The master key the store is opened with (loaded, or generated, as the store opens). */
  let masterKey: MasterKey | undefined;
  const storeKey = (): MasterKey => {
    if (!masterKey)
      throw new AppvisorError('MASTER_KEY_INVALID', {
        source: settings.dataDir,
        detail: 'there is no master key',
      });
    return masterKey;
  };
  // First up and last down: a block while the store opens or the apps close is reported too.
  const loopWatch = options.loopWatch;
  const loopWatcher =
    loopWatch &&
    new Resource(
      'event-loop watcher',
      // A diagnosis, not a service: serving goes on without it.
      () =>
        startLoopWatcher({
          log,
          threadLog: loopWatch.log,
          onBlocked: (block) => events.emit('loopBlocked', block),
        }).catch((err: unknown) => {
          log.warn(
            { err: messageOf(err) },
            'cannot watch the event loop; a blocked loop will not be reported',
          );
          return undefined;
        }),
      (watcher) => watcher?.stop(),
    );
  const store = new Resource(
    'state store',
    async () => {
      // Every replica must have the same key (APPVISOR_MASTER_KEY): one that generated its own
      // is refused by the store sealed under another (MASTER_KEY_INVALID), before it writes.
      masterKey = await loadMasterKey({ env: options.env, dataDir: settings.dataDir, create: true });
      const opened = await openStateStore(mainUrl, {
        log,
        adopt: settings.mainDatabase?.adopt ?? false,
        origin: replica.id,
        ...(masterKey ? { masterKey } : {}),
      });
      try {
        // The main app's secret exists before anything can sign with it; never regenerated.
        await opened.ensureMainSecret(generateSecret());
      } catch (err) {
        await opened.close().catch(() => undefined);
        throw err;
      }
      return opened;
    },
    (opened) => opened.close(),
  );
  // The rolling upgrade's gate: which live replica runs an older application, if any.
  const upgradeGate = createUpgradeGate(
    { listReplicas: () => store.value.listReplicas() },
    { self: replica.id, codeVersion: application.version, heartbeatMs },
  );
  // The same per named application: its apps' upgrades wait only for replicas on an older version of it.
  const namedGates = applications.keys().map((key) => {
    const named = applications.named(key)!.application;
    const gate = createUpgradeGate(
      { listReplicas: () => store.value.listReplicas() },
      { self: replica.id, codeVersion: named.version, heartbeatMs, application: named.name },
    );
    return [key, gate] as const;
  });
  const applicationsHeldBy = async (): Promise<ReadonlyMap<string, PlanOptions['upgradeHeldBy']>> =>
    new Map(await Promise.all(namedGates.map(async ([key, gate]) => [key, await gate.check()] as const)));
  const leadership = new Resource(
    'leadership',
    async () => {
      const leading = new Leadership({
        url: mainUrl,
        store: store.value,
        holder: replica.id,
        log,
        ...(options.lease ?? {}),
        ...(options.lockWaitMs !== undefined ? { lockWaitMs: options.lockWaitMs } : {}),
        // Leading or not changes what every app's reconcile does: each is looked at again.
        onChange: (isLeader) => {
          if (isLeader) drift.clear();
          reconcileAll();
        },
      });
      await leading.start();
      return leading;
    },
    (leading) =>
      leading.close().catch((err) => log.warn({ err: messageOf(err) }, 'could not give up the leader lease')),
  );
  const providers = new Resource(
    'providers',
    async () =>
      new ProviderSet(mainUrl, {
        dataDir: settings.dataDir,
        log,
        connectionBudget,
        ...(settings.database.schemaPoolSize !== undefined
          ? { schemaPoolSize: settings.database.schemaPoolSize }
          : {}),
        adminConnections: reconcileConcurrency(settings),
      }),
    (set) => set.close(),
  );
  const manifests = new Resource(
    'manifests',
    async () => {
      const desired = new DesiredState({
        appsDir: settings.appsDir,
        applications: knownApplications(settings),
        store: store.value,
        log,
        onChange: (names) => queue.current?.addAll(names),
        extraNames: () => runtime.current?.names() ?? [],
      });
      await desired.load();
      return desired;
    },
    () => undefined,
  );
  const runtime = new Resource(
    'runtime',
    async () =>
      new Runtime({
        application,
        applicationModule: settings.app ?? null,
        applications,
        processAdapter: settings.processAdapter,
        providers: providers.value,
        store: store.value,
        log,
        events,
        startTimeoutMs,
        ...(options.poolMax ? { poolMax: options.poolMax } : {}),
        ...(options.backoff ? { mainBackoff: options.backoff } : {}),
        dataDir: settings.dataDir,
        adoptMainDatabase: settings.mainDatabase?.adopt ?? false,
        // A failed start goes to the app's reconcile, which retries it after the queue's backoff
        // (before the queue runs, the first reconcile covers every app anyway).
        onStartFailed: (name) => queue.current?.retryAfterFailure(name),
        onCrash: (name) => queue.current?.retryAfterCrash(name),
        // A lazy start is the runtime's; the app's reconcile plans its idle stop once it could be
        // due (not at once: a visit storm must not become a storm of reconciles).
        onVisitStart: (name, idleMs) => queue.current?.addAfter(name, idleMs),
        idleStopMs: planOptions.idleStopMs ?? 0,
        // Only the leader migrates the main database, and not past a live replica on older code.
        mainMigrates: () => leadership.value.leading && upgradeGate.last() === undefined,
      }),
    // An app hanging in create() or close() must not hold the process past its grace: the
    // manager stops waiting at the deadline and closes the rest.
    (apps) => apps.close(),
  );
  // Before the gateway: a replica answers /api/replicas with itself in the list.
  const heartbeat = new Resource(
    'heartbeat',
    () =>
      startHeartbeat({
        store: store.value,
        runtime: runtime.value,
        events,
        identity: replica,
        drift: () => drift.names(),
        leaving: () => leaving,
        waiting: () => waitingFor() !== undefined,
        // The gateway starts after the heartbeat: its address is written from the next beat on.
        adminUrl: () => advertisedUrl ?? http.current?.url,
        application,
        applications: applications.all().map((a) => a.application),
        connectionBudget,
        log,
        intervalMs: heartbeatMs,
      }),
    (beat) => beat.stop(),
  );
  const http = new Resource(
    'gateway',
    () =>
      startHttpSurface({
        settings,
        env: options.env,
        log,
        runtime: runtime.value,
        startTimeoutMs,
        backend: {
          events,
          store: store.value,
          providers: providers.value,
          planOptions,
          desired: () => manifests.value.current,
          reconcileErrors,
          ready: () => isReady,
          waitingFor,
          // Before the queue runs, the intent is in the record and the first reconcile covers every app.
          requestReconcile: (name) => queue.current?.add(name),
          operations,
          leading: () => leadership.current?.term(),
          replica: { id: replica.id, heartbeatMs, connectionBudget },
          logs: appLogs.value.logs,
        },
      }),
    (surface, graceMs) => surface.close(graceMs),
  );
  /** The reconciler the queue runs; a clone's new app is reconciled with it inside its operation. */
  let appReconciler: Reconciler | undefined;
  const operations = createServerOperations({
    settings,
    ...(options.env ? { env: options.env } : {}),
    log,
    store: () => store.value,
    providers: () => providers.value,
    runtime: () => runtime.value,
    queue: () => queue.current,
    reconciler: () => {
      if (!appReconciler) throw new AppvisorError('SHUTTING_DOWN');
      return appReconciler;
    },
    reloadManifests: () => manifests.value.reload(),
    term: () => leadership.current?.term(),
    application,
    applications,
    planOptions,
    masterKey: storeKey,
    announce: (names) => void store.current?.announce(names),
  });
  const queue = new Resource(
    'queue',
    async () => {
      const desired = manifests.value;
      appReconciler = createAppReconciler({
        leadership: leadership.value,
        feed: {
          note: (name, version) => feed.current?.note(name, version),
        },
        drift,
        upgradeHeldBy: () => upgradeGate.check(),
        applicationsHeldBy,
        store: store.value,
        providers: providers.value,
        planOptions,
        desired,
        runtime: runtime.value,
        migrate: createMigrator({ applications, providers: providers.value, main }),
        claimData: createDataClaimer({ applications, providers: providers.value, main }),
        backupBeforeDrop: createDropBackup({
          settings,
          store: store.value,
          providers: providers.value,
          main,
          application,
          applications,
          log,
          masterKey: storeKey(),
        }),
        stepTimeoutMs: options.stepTimeoutMs ?? 60_000,
        errors: reconcileErrors,
      });
      const work = new ReconcileQueue({
        log,
        concurrency: reconcileConcurrency(settings),
        resyncMs: options.resyncMs ?? 300_000,
        // The resync re-reads apps.d and the record names, then reconciles every app.
        keys: async () => {
          await desired.reload();
          await desired.refreshRecords();
          return desired.names();
        },
        ...(options.backoff ? { backoff: options.backoff } : {}),
        reconcile: appReconciler,
      });
      work.on(QUEUE_EVENTS.end, (e) => {
        events.emit('reconcile', { app: e.key, outcome: e.outcome, durationMs: e.durationMs });
      });
      return work;
    },
    (work, graceMs) => work.close({ graceMs: Math.min(graceMs, 5_000) }),
  );
  const feed = new Resource(
    'change feed',
    async () => {
      const changes = new ChangeFeed({
        url: mainUrl,
        store: store.value,
        origin: replica.id,
        log,
        ...(options.pollMs !== undefined ? { pollMs: options.pollMs } : {}),
        ...(options.listen !== undefined ? { listen: options.listen } : {}),
        // Another replica changed these records (an operator's start or stop, the leader's reconcile).
        onChange: (names) => {
          for (const name of names) manifests.value.noteRecord(name);
          queue.value.addAll(names);
          // A secret rotated on the leader raises the records' versions: the running apps here
          // (and the main app, whose secret a rotation of `main` changed) take the secrets as
          // they stand, without a restart.
          runtime.value.refreshSecrets([...names, MAIN_APP]).catch((err: unknown) => {
            log.warn(
              { err: messageOf(err) },
              "cannot refresh the apps' JWT secrets; they keep the ones they have",
            );
          });
        },
      });
      await changes.start();
      return changes;
    },
    (changes) => changes.close(),
  );
  const watcher = new Resource(
    'watcher',
    async (signal) => {
      const desired = manifests.value;
      const watching = watchManifests(settings.appsDir, () => void desired.reload(), { log });
      try {
        // A stop meanwhile ends the wait with its reason.
        await abortable(() => watching.ready, signal);
      } catch (err) {
        await watching.close();
        throw err;
      }
      // What changed between the first read and the watcher being up is read now, not at the resync.
      await desired.reload();
      return watching;
    },
    (watching) => watching.close(),
  );

  const manager = new RunnableManager(
    [
      ...(loopWatcher ? [loopWatcher] : []),
      appLogs,
      ...[store, leadership, providers, manifests, runtime, heartbeat, http, queue, feed, watcher],
    ],
    { log },
  );
  await manager.start();
  // Now that the gateway listens, the other replicas learn its address at once.
  void heartbeat.current?.beatNow();
  // Every replica follows the heartbeats for a rolling upgrade: the leader to hold a migration
  // back, every one to stay out of rotation while it runs newer code than a live replica.
  const allGates = [upgradeGate, ...namedGates.map(([, gate]) => gate)];
  const gateKey = (olders: readonly ReturnType<typeof upgradeGate.last>[]): string =>
    olders.map((older) => (older ? `${older.replica}${older.leaving ? ' leaving' : ''}` : '')).join('|');
  let heldBy = gateKey(allGates.map((gate) => gate.last()));
  const gateTimer = setInterval(() => {
    void Promise.all(allGates.map((gate) => gate.check())).then((olders) => {
      // An older replica is gone (or came): the apps held back for it are looked at again.
      if (gateKey(olders) === heldBy) return;
      heldBy = gateKey(olders);
      reconcileAll();
      // `waiting` may have changed: an older replica that drains waits to see it gone.
      void heartbeat.current?.beatNow();
    });
  }, 1_000);
  gateTimer.unref();

  const ready = (async () => {
    await Promise.all(allGates.map((gate) => gate.check()));
    await runtime.value
      .acquireMain()
      .catch((err) => log.error({ err: messageOf(err) }, 'the main app failed to start'));
    queue.value.addAll(manifests.value.names());
    await queue.value.onIdle();
    // with-main apps start in the background of their reconcile; ready waits for them.
    await runtime.value.settled();
    isReady = true;
    const { current } = manifests.value;
    log.info({ apps: current.apps.size, invalid: current.invalid.length }, 'first reconcile done; ready');
    const removed = await sweepKilledOperations(backupsDirOf(settings)).catch(() => []);
    if (removed.length > 0)
      log.info({ removed }, 'removed the copies of app data that killed backups or restores left');
  })();
  ready.catch((err) => log.error({ err: messageOf(err) }, 'first reconcile failed'));

  let closing: Promise<void> | undefined;
  const close = (opts: { graceMs?: number } = {}): Promise<void> => {
    closing ??= (async () => {
      const graceMs = opts.graceMs ?? 10_000;
      log.info({ graceMs }, 'shutting down');
      clearInterval(gateTimer);
      const drainMs = Math.min(graceMs, settings.shutdownDrainMs ?? 0);
      let handedOverMs = 0;
      if (drainMs > 0 && isReady) {
        // readyz says 503 first and the replica goes on serving meanwhile, so the load balancer
        // takes it out of rotation before its connections close (none is cut mid-request); its
        // heartbeat says it is leaving, so replicas on newer code take its place at once.
        leaving = true;
        await heartbeat.current?.beatNow();
        // Still in rotation until the replicas on newer code that waited for this one joined it.
        const handover = await handOver(store.value, {
          self: replica.id,
          codeVersion: {
            version: application.version,
            applications: namedGates.map(([key]) => applications.named(key)!.application),
          },
          heartbeatMs,
          timeoutMs: Math.min(HANDOVER_TIMEOUT_MS, graceMs - drainMs),
        });
        handedOverMs = handover.waitedMs;
        if (handover.waitedFor.length > 0) log.info(handover, 'handed over to the replicas on newer code');
        isReady = false;
        log.info({ drainMs }, 'draining: readyz answers 503 while requests are still served');
        await new Promise((resolve) => setTimeout(resolve, drainMs));
      }
      await manager.stop({ graceMs: Math.max(0, graceMs - drainMs - handedOverMs) });
      log.info('stopped');
    })();
    return closing;
  };

  return {
    url: http.value.url,
    address: http.value.address,
    adminToken: http.value.adminToken,
    adminTokenFile: http.value.adminTokenFile,
    ready,
    runtime: runtime.value,
    queue: queue.value,
    events,
    replica,
    leading: () => leadership.value.leading,
    drift: () => drift.names(),
    reload: () => manifests.value.reload(),
    close,
  };
}
