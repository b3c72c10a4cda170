/**
 * `plan` and `apply` without the CLI around them: what they read, decide and do. The CLI files
 * only parse flags and print.
 */
import { randomBytes } from 'node:crypto';
import PQueue from 'p-queue';
import type { Logger } from 'pino';
import { describeMainDatabase } from '../config/main-database.js';
import { reconcileConcurrency } from '../config/settings.js';
import type { Settings } from '../config/types.js';
import { parseDatabaseUrl } from '../dialects/registry.js';
import { type ErrorSummary, summaryOf } from '../errors.js';
import { checkApplications, knownApplications } from '../manifests/applications-check.js';
import { loadManifests } from '../manifests/load.js';
import { createDropBackup } from '../ops/drop-backup.js';
import { generateSecret } from '../providers/secrets.js';
import { ProviderSet } from '../providers/set.js';
import { type ApplicationSet, loadApplications } from '../runtime/applications.js';
import { loadMasterKey } from '../secrets/master-key.js';
import type { StateExport } from '../state/export-format.js';
import { mainDatabaseRefusals } from '../state/main-check.js';
import { openStateReader } from '../state/reader.js';
import { openCommandStore } from './command-store.js';
import { toDesired } from './desired.js';
import type { StepOutcome } from './executor.js';
import { asExportedManifests, exportedObservations, exportedStore } from './exported-observations.js';
import { createDataClaimer, createMigrator } from './migrate.js';
import type { Desired, Plan, PlanOptions, Step } from './model.js';
import { liveObservations, type ObservationSource, SHARED_LEFTOVERS_FRESH_MS } from './observation-source.js';
import { type ObserveDeps, observeAll } from './observe.js';
import { plan } from './planner.js';
import { applicationName, reconcileApp } from './reconciler.js';
import { noteUnobserved } from './unobserved.js';

/** What `plan` needs besides the manifests, and where it comes from: the live servers or an export. */
interface PlanSources {
  readonly main: PlanOptions['main'];
  readonly store: ObserveDeps['store'];
  readonly source: ObservationSource;
  /** What a first install into the main database would refuse (SPEC §8.6). */
  mainRefusals(adopt: boolean): Promise<readonly ErrorSummary[]>;
  close(): Promise<void>;
}

/**
 * A dry run: reads manifests, the state store and the servers; changes nothing anywhere. With
 * `state` (a `state export`), reads that instead and connects to no database at all.
 */
export async function computePlan(
  settings: Settings,
  opts: ManifestReadOptions & { allowEmpty?: boolean; state?: StateExport } = {},
): Promise<Plan> {
  const applications = await loadApplications(settings);
  const read = await readDesired(settings, opts);
  // The export keeps connection URLs without their password and config as a digest: the
  // manifests' are compared so.
  const desired = opts.state ? asExportedManifests(read) : read;
  const sources = opts.state ? exportSources(opts.state) : await liveSources(settings, opts);
  try {
    const pOpts = planOptions(settings, sources.main, applications, opts.allowEmpty);
    const actual = await observeAll(desired, {
      store: sources.store,
      source: sources.source,
      main: sources.main,
      applicationOf: (m) => applicationName(m, pOpts),
    });
    const planned = noteUnobserved(plan(desired, actual, { ...pOpts, now: Date.now() }), actual);
    // What apply/serve would refuse on the main database itself comes first: nothing else
    // happens until it is settled.
    const refusals = await sources.mainRefusals(settings.mainDatabase?.adopt ?? false);
    if (refusals.length === 0) return planned;
    const steps: Step[] = refusals.map((err) => ({
      app: 'main',
      action: 'refuse',
      code: err.code,
      detail: err.message,
    }));
    return { ...planned, changes: [...steps, ...planned.changes] };
  } finally {
    await sources.close();
  }
}

/** The state store and the servers themselves. */
async function liveSources(settings: Settings, opts: ManifestReadOptions): Promise<PlanSources> {
  const mainUrl = parseDatabaseUrl(settings.database.url);
  const main = describeMainDatabase(mainUrl, settings.dataDir);
  // The key when one is at hand (never created here): it opens the records' sealed connection URLs.
  const masterKey = await loadMasterKey({ env: opts.env, dataDir: settings.dataDir, create: false });
  const reader = await openStateReader(mainUrl, masterKey ? { masterKey } : {});
  const providers = new ProviderSet(mainUrl, { dataDir: settings.dataDir });
  return {
    main,
    store: reader,
    source: liveObservations(providers),
    mainRefusals: async (adopt) => (await mainDatabaseRefusals(mainUrl, { adopt })).map((e) => e.toJSON()),
    async close() {
      await providers.close();
      await reader.close();
    },
  };
}

/** A `state export`: its main database stands for the settings' (which may not be reachable here). */
function exportSources(state: StateExport): PlanSources {
  return {
    main: state.main,
    store: exportedStore(state),
    source: exportedObservations(state),
    mainRefusals: async (adopt) => (adopt ? [] : state.mainRefusals),
    close: async () => undefined,
  };
}

/** How manifest files are read and named in messages. */
export interface ManifestReadOptions {
  /** Environment for `${VAR}` interpolation. @default process.env */
  readonly env?: NodeJS.ProcessEnv;
  /** The apps folder as the user typed it, for `file:line:col` messages. */
  readonly displayDir?: string;
}

/** The manifests, checked against the settings' applications (an unknown one: an invalid file). */
export async function readDesired(settings: Settings, opts: ManifestReadOptions): Promise<Desired> {
  const set = await loadManifests(settings.appsDir, manifestOptions(opts));
  return toDesired(checkApplications(set, knownApplications(settings)));
}

function manifestOptions(opts: ManifestReadOptions): ManifestReadOptions {
  return {
    ...(opts.env ? { env: opts.env } : {}),
    ...(opts.displayDir ? { displayDir: opts.displayDir } : {}),
  };
}

function planOptions(
  settings: Settings,
  main: PlanOptions['main'],
  applications: ApplicationSet,
  allowEmpty?: boolean,
): PlanOptions {
  const { application } = applications.default;
  return {
    main,
    codeVersion: application.version,
    application: application.name,
    applications: applications.codes(),
    deletionGraceMs: settings.deletionGraceMs,
    ...(allowEmpty ? { allowEmpty: true } : {}),
  };
}

export interface ApplyReport {
  /** The plan computed before anything ran. */
  readonly plan: Plan;
  readonly outcomes: readonly StepOutcome[];
  /** Apps whose reconcile failed, with the error. */
  readonly failures: readonly (ErrorSummary & { readonly app: string })[];
}

export interface ApplyOptions extends ManifestReadOptions {
  readonly allowEmpty?: boolean;
  readonly log: Logger;
  /** Called after every step, for progress output. */
  readonly onStep?: (outcome: StepOutcome) => void;
  /** Called once with the plan, before the first step (progress output: its step count). */
  readonly onPlan?: (plan: Plan) => void;
  /** Called when an app starts reconciling: (index, total, name). */
  readonly onApp?: (index: number, total: number, name: string) => void;
  /** How long to wait for another process's reconcile lock. @default 30000 */
  readonly lockWaitMs?: number;
}

/**
 * Carries out the provisioning part of the plan: databases, schemas, secrets, records and
 * migrations. Runtime steps (start/stop/restart/routes) are left to `serve`. Holds the
 * reconcile lock throughout, so it never runs alongside a server's reconcile. Up to
 * `reconcile.concurrency` apps are reconciled at once, as `serve` does; each app once.
 */
export async function applyPlan(settings: Settings, opts: ApplyOptions): Promise<ApplyReport> {
  const mainUrl = parseDatabaseUrl(settings.database.url);
  const main = describeMainDatabase(mainUrl, settings.dataDir);
  const applications = await loadApplications(settings);
  const { application } = applications.default;
  const desired = await readDesired(settings, opts);
  // The leader lease, as a replica would hold it: a running server (which reconciles apps.d
  // itself) refuses it at once with LOCK_HELD naming the server; another apply is waited for.
  const held = await openCommandStore(settings, {
    log: opts.log,
    ...(opts.env ? { env: opts.env } : {}),
    ...(opts.lockWaitMs !== undefined ? { lockWaitMs: opts.lockWaitMs } : {}),
  });
  const { store, lease } = held;
  const concurrency = reconcileConcurrency(settings);
  const providers = new ProviderSet(mainUrl, {
    dataDir: settings.dataDir,
    log: opts.log,
    adminConnections: concurrency,
    ...(settings.database.schemaPoolSize !== undefined
      ? { schemaPoolSize: settings.database.schemaPoolSize }
      : {}),
  });
  const pOpts = planOptions(settings, main, applications, opts.allowEmpty);
  // Losing the lease aborts what is left; the term fences every write made under it.
  const lockLost = { signal: lease.signal };
  const outcomes: StepOutcome[] = [];
  const failures: (ErrorSummary & { app: string })[] = [];
  try {
    const { fence } = lease;
    const observed = await observeAll(desired, {
      store,
      source: liveObservations(providers),
      main,
      applicationOf: (m) => applicationName(m, pOpts),
    });
    const before = plan(desired, observed, {
      ...pOpts,
      now: Date.now(),
    });
    opts.onPlan?.(before);
    const mainSecret = before.changes.find((s) => s.app === 'main' && s.action === 'generate-secret');
    if (mainSecret) {
      const t0 = performance.now();
      await store.ensureSecret('main', generateSecret(), fence);
      const outcome: StepOutcome = { step: mainSecret, result: 'created', ms: performance.now() - t0 };
      outcomes.push(outcome);
      opts.onStep?.(outcome);
    }
    const names = [
      ...new Set(
        before.changes.filter((s) => s.app !== 'main' || desired.apps.has('main')).map((s) => s.app),
      ),
    ];
    const migrate = createMigrator({ applications, providers, main });
    const claimData = createDataClaimer({ applications, providers, main });
    const backupBeforeDrop = createDropBackup({
      settings,
      store,
      providers,
      main,
      application,
      applications,
      log: opts.log,
      masterKey: held.masterKey,
    });
    // Listed again for the apply's runs (the plan's listing is older than its first step), then
    // shared by them: once per app would read a fleet's every database per app.
    const source = liveObservations(providers, { leftoversFreshMs: SHARED_LEFTOVERS_FRESH_MS });
    let started = 0;
    const reconcileOne = async (name: string): Promise<void> => {
      opts.onApp?.(started++, names.length, name);
      const reconcileId = randomBytes(4).toString('hex');
      const log = opts.log.child({ app: name, reconcileId });
      try {
        await reconcileApp(
          name,
          {
            store,
            fence,
            providers,
            source,
            planOptions: pOpts,
            desired: () => desired,
            migrate,
            claimData,
            backupBeforeDrop,
            onStep: (o) => {
              outcomes.push(o);
              opts.onStep?.(o);
            },
          },
          { reconcileId, log, signal: lockLost.signal },
        );
      } catch (err) {
        failures.push({ app: name, ...summaryOf(err, 'APP_ERROR', { app: name }) });
      }
    };
    // reconcileOne never rejects: a failure is the app's, in `failures`.
    const work = new PQueue({ concurrency });
    await Promise.all(names.map((name) => work.add(() => reconcileOne(name))));
    // In the plan's order, whichever app finished first.
    const order = new Map(names.map((name, i) => [name, i]));
    failures.sort((a, b) => order.get(a.app)! - order.get(b.app)!);
    return { plan: before, outcomes, failures };
  } finally {
    await providers.close();
    await held.close();
  }
}
