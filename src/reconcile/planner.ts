/**
 * The planner: a pure function from desired state (manifests) and actual state (records,
 * observations, runtime) to the ordered steps that converge them (SPEC §4). No I/O, no clock,
 * no randomness: the same input always gives the same plan, which is what `appvisor plan`
 * prints and what the executor carries out.
 */
import { formatDuration, parseDuration } from '../config/duration.js';
import { redactUrl } from '../dialects/url.js';
import { AppvisorError } from '../errors.js';
import { isolationOf } from '../manifests/defaults.js';
import type { AppManifest, LoadedManifest, StartMode } from '../manifests/types.js';
import type { AppRecord, AppStatus, OperatorIntent } from '../state/types.js';
import { idleCheck } from './idle.js';
import {
  ACTIONS,
  type Action,
  type Actual,
  type ActualApp,
  type DatabaseTarget,
  type Desired,
  type Plan,
  type PlanOptions,
  type Step,
} from './model.js';
import { ownerMarker, parseOwner } from './owner.js';
import {
  connectionRef,
  describeTarget,
  isTargetOf,
  locateTarget,
  resolveTarget,
  targetOfItem,
} from './target.js';

/** What differs between two manifests of one app, by the consequence it has (SPEC §4 "Change"). */
export interface SpecChange {
  /** Anything differs at all. */
  readonly changed: boolean;
  /** database.mode / name / schema / connection / adopt. */
  readonly database: boolean;
  /** jwt.secret. */
  readonly jwt: boolean;
  readonly config: boolean;
  readonly upgrade: boolean;
  /** isolation (mode or limits, defaults filled in) changed. */
  readonly isolation: boolean;
  /** application (the settings' name the manifest picks) changed. */
  readonly application: boolean;
  /** A running instance must be restarted (database, jwt, config, upgrade, isolation or application changed). */
  readonly restart: boolean;
  /** domains (as a set) or displayName changed: routes only, never a restart. */
  readonly routes: boolean;
  readonly domains: boolean;
  readonly displayName: boolean;
  /** 'enable' for false → true, 'disable' for true → false. */
  readonly enabled: 'enable' | 'disable' | undefined;
  /** The new startMode, when it changed. */
  readonly startMode: StartMode | undefined;
  /** Only what the record alone holds differs (deletionPolicy, dropAfter): an update-record step. */
  readonly recordOnly: boolean;
  /** deletionPolicy or dropAfter changed (whatever else did). */
  readonly deletion: boolean;
  /** idleStop changed (whatever else did): the record alone holds it, nothing restarts. */
  readonly idleStop: boolean;
}

const ACTION_ORDER: ReadonlyMap<Action, number> = new Map(ACTIONS.map((a, i) => [a, i]));
const NO_APP: ActualApp = { hasSecret: false };
/** Statuses in which an instance is up: it has a spec that a restart or route update can change. */
export const UP: ReadonlySet<AppStatus> = new Set(['running', 'starting']);
/** Statuses in which `start` has nothing to do. */
const NOT_STARTABLE: ReadonlySet<AppStatus> = new Set(['running', 'starting', 'upgrading']);

function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bs = b as unknown[];
    return a.length === bs.length && a.every((v, i) => jsonEqual(v, bs[i]));
  }
  const ak = Object.keys(a);
  const bo = b as Record<string, unknown>;
  if (ak.length !== Object.keys(bo).length) return false;
  const ao = a as Record<string, unknown>;
  return ak.every((k) => Object.hasOwn(bo, k) && jsonEqual(ao[k], bo[k]));
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const set = new Set(a);
  return set.size === new Set(b).size && b.every((x) => set.has(x));
}

/** Classifies the difference between the last applied spec and the manifest. */
export function classifyChange(before: AppManifest, after: AppManifest): SpecChange {
  const b = before.database;
  const a = after.database;
  const database =
    b.mode !== a.mode ||
    b.name !== a.name ||
    b.schema !== a.schema ||
    b.connection?.url !== a.connection?.url ||
    b.adopt !== a.adopt;
  const jwt = before.jwt.secret !== after.jwt.secret;
  const config = !jsonEqual(before.config, after.config);
  const upgrade = before.upgrade !== after.upgrade;
  const domains = !sameSet(before.domains, after.domains);
  const displayName = before.displayName !== after.displayName;
  const enabled = before.enabled === after.enabled ? undefined : after.enabled ? 'enable' : 'disable';
  const startMode = before.startMode === after.startMode ? undefined : after.startMode;
  // Absent and written-as-default are the same isolation: no restart for spelling it out.
  const isolation = !jsonEqual(isolationOf(before), isolationOf(after));
  const application = (before.application ?? null) !== (after.application ?? null);
  const restart = database || jwt || config || upgrade || isolation || application;
  const routes = domains || displayName;
  const stepWorthy = restart || routes || enabled !== undefined || startMode !== undefined;
  const deletion = before.deletionPolicy !== after.deletionPolicy || before.dropAfter !== after.dropAfter;
  const idleStop = before.idleStop !== after.idleStop;
  const recordOnly = !stepWorthy && (deletion || idleStop);
  return {
    changed: stepWorthy || recordOnly,
    database,
    jwt,
    config,
    upgrade,
    isolation,
    application,
    restart,
    routes,
    domains,
    displayName,
    enabled,
    startMode,
    recordOnly,
    deletion,
    idleStop,
  };
}

const NO_CHANGE: SpecChange = Object.freeze({
  changed: false,
  database: false,
  jwt: false,
  config: false,
  upgrade: false,
  isolation: false,
  application: false,
  restart: false,
  routes: false,
  domains: false,
  displayName: false,
  enabled: undefined,
  startMode: undefined,
  recordOnly: false,
  deletion: false,
  idleStop: false,
});

/** The grace a removal of `m` gets before its drop: dropAfter, else the setting, else 24 h. */
export function dropGraceMs(m: AppManifest, opts: PlanOptions): number {
  const own = m.dropAfter === undefined ? undefined : parseDuration(m.dropAfter);
  return own ?? opts.deletionGraceMs ?? DEFAULT_DELETION_GRACE_MS;
}

const DEFAULT_DELETION_GRACE_MS = 86_400_000;

/** An ISO time to the second, as plans show times; `up` for a deadline, so a grace is never cut short. */
function isoSeconds(ms: number, round: 'up' | 'down'): string {
  const s = round === 'up' ? Math.ceil(ms / 1000) : Math.floor(ms / 1000);
  return new Date(s * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** `deletionPolicy: retain → drop; dropAfter: 24h → 1h; idleStop: off → 15m` for an update-record step. */
function recordReason(before: AppManifest, after: AppManifest): string {
  const parts: string[] = [];
  if (before.deletionPolicy !== after.deletionPolicy) {
    parts.push(`deletionPolicy: ${before.deletionPolicy} → ${after.deletionPolicy}`);
  }
  if (before.dropAfter !== after.dropAfter) {
    parts.push(`dropAfter: ${before.dropAfter ?? '(default)'} → ${after.dropAfter ?? '(default)'}`);
  }
  if (before.idleStop !== after.idleStop) {
    parts.push(`idleStop: ${before.idleStop ?? '(default)'} → ${after.idleStop ?? '(default)'}`);
  }
  return parts.join('; ');
}

function restartReason(c: SpecChange, before: AppManifest, after: AppManifest): string {
  const parts: string[] = [];
  if (c.database) parts.push('database');
  if (c.jwt) parts.push('jwt.secret');
  if (c.config) parts.push('config');
  if (c.upgrade) parts.push('upgrade');
  if (c.isolation) parts.push('isolation');
  const changed = parts.length > 0 ? `${parts.join(', ')} changed` : '';
  if (!c.application) return changed;
  const moved = `application ${applicationLabel(before)} → ${applicationLabel(after)}`;
  return changed === '' ? moved : `${moved}; ${changed}`;
}

function restartStep(name: string, c: SpecChange, before: AppManifest, after: AppManifest): Step {
  const detail = restartReason(c, before, after);
  if (!c.application) return { app: name, action: 'restart', detail };
  const application = { from: applicationLabel(before), to: applicationLabel(after) };
  return { app: name, action: 'restart', detail, application };
}

/** A manifest's application as the plan names it: its settings key, or `default`. */
function applicationLabel(m: AppManifest): string {
  return m.application ?? 'default';
}

/**
 * The application an app runs (SPEC §8.6): the one its manifest names, else the default one;
 * an AppvisorError for a name the settings do not list (the manifest checks catch that first:
 * this keeps the planner from ever running the default one in its place).
 */
export function applicationFor(
  m: Pick<AppManifest, 'application' | 'name'>,
  opts: PlanOptions,
): { name?: string; version?: number; upgradeHeldBy?: PlanOptions['upgradeHeldBy'] } | AppvisorError {
  if (m.application === undefined) {
    return {
      ...(opts.application !== undefined ? { name: opts.application } : {}),
      ...(opts.codeVersion !== undefined ? { version: opts.codeVersion } : {}),
      ...(opts.upgradeHeldBy ? { upgradeHeldBy: opts.upgradeHeldBy } : {}),
    };
  }
  const named = opts.applications?.get(m.application);
  if (named) return named;
  const known = [...(opts.applications?.keys() ?? [])].sort();
  return new AppvisorError('CONFIG_INVALID', {
    detail: `app ${m.name} names application '${m.application}', which settings applications does not list (known: ${known.join(', ') || 'none'})`,
  });
}

function routesReason(c: SpecChange): string {
  const parts: string[] = [];
  if (c.domains) parts.push('domains');
  if (c.displayName) parts.push('displayName');
  return `${parts.join(', ')} changed`;
}

/** The application an app's plan is made for: who owns its data, and its code's version. */
type AppCode = Exclude<ReturnType<typeof applicationFor>, AppvisorError>;

/** Everything `planOne` needs that is computed once per plan rather than once per app. */
interface Context {
  readonly desired: Desired;
  readonly actual: Actual;
  readonly opts: PlanOptions;
  readonly invalidNames: ReadonlySet<string>;
  readonly invalidFiles: ReadonlySet<string>;
  /** The EMPTY_SET_GUARD message when the guard holds removals back. */
  readonly guard: string | undefined;
}

function buildContext(desired: Desired, actual: Actual, opts: PlanOptions): Context {
  const invalidNames = new Set<string>();
  const invalidFiles = new Set<string>();
  for (const f of desired.invalid) {
    invalidFiles.add(f.file);
    if (f.name !== undefined) invalidNames.add(f.name);
  }
  let guard: string | undefined;
  if (desired.apps.size === 0 && !opts.allowEmpty) {
    let count = 0;
    for (const [name, app] of actual.apps) {
      const r = app.record;
      if (r && r.status !== 'orphaned' && !invalidNames.has(name) && !invalidFiles.has(r.file)) count++;
    }
    if (count > 0) guard = new AppvisorError('EMPTY_SET_GUARD', { count }).message;
  }
  return { desired, actual, opts, invalidNames, invalidFiles, guard };
}

function sortSteps(steps: Step[]): Step[] {
  return steps.sort((x, y) => (ACTION_ORDER.get(x.action) ?? 0) - (ACTION_ORDER.get(y.action) ?? 0));
}

function refuse(app: string, err: AppvisorError): Step {
  return { app, action: 'refuse', detail: err.message, code: err.code };
}

function createStep(app: string, target: DatabaseTarget, detail: string): Step {
  return { app, action: target.kind === 'schema' ? 'create-schema' : 'create-database', detail, target };
}

/** The provisioning outcome for one app's target. */
type Provision =
  | { readonly refused: Step }
  | { readonly refused?: undefined; readonly steps: readonly Step[]; readonly note?: string };

/**
 * Rule 1's provisioning, shared by create, change and restore. A target already in the record's
 * inventory only needs a create when it went missing or its creation was interrupted; a new
 * target is created, recognised as ours, adopted, or refused.
 */
function provision(
  name: string,
  m: AppManifest,
  target: DatabaseTarget,
  app: ActualApp,
  ctx: Context,
): Provision {
  const where = describeTarget(target);
  const storeId = ctx.actual.storeId;
  const ours = storeId !== undefined && app.observed?.owner === ownerMarker(storeId, name);
  const item = app.record?.inventory.find((i) => isTargetOf(i, target));
  // A 'creating' item whose object now carries someone else's marker was never created by us:
  // resuming (an idempotent create) would silently adopt it, so it is judged like a new target.
  const foreign =
    item?.state === 'creating' && app.observed?.exists === true && app.observed.owner !== undefined && !ours;
  if (item && !foreign) {
    if (item.state === 'creating') {
      return { steps: [createStep(name, target, `${where}: resume an interrupted creation`)] };
    }
    const seen = app.observed ?? app.observedRecorded;
    if (seen?.exists === false) {
      return { steps: [createStep(name, target, `${where} was missing: dropped outside appvisor?`)] };
    }
    return { steps: [] };
  }
  // A target nobody observed is treated as absent: the caller observes every new target.
  const seen = app.observed;
  if (!seen?.exists) return { steps: [createStep(name, target, where)] };
  if (ours) {
    return {
      steps: [],
      note: `${where} found with appvisor's marker for this app (left by an interrupted run)`,
    };
  }
  if (m.database.adopt) {
    return { steps: [{ app: name, action: 'adopt-database', detail: `adopt existing ${where}`, target }] };
  }
  const owner = parseOwner(seen.owner);
  if (storeId !== undefined && owner?.storeId === storeId) {
    return {
      refused: {
        app: name,
        action: 'refuse',
        code: 'ADOPT_REFUSED',
        detail: `${where} already exists and belongs to app ${owner.app}; set database.adopt: true to use it`,
      },
    };
  }
  return {
    refused: refuse(
      name,
      new AppvisorError('ADOPT_REFUSED', { kind: target.kind, name: locateTarget(target) }),
    ),
  };
}

function secretStep(name: string, m: AppManifest, app: ActualApp): Step | undefined {
  if (m.jwt.secret !== 'own' || app.hasSecret) return undefined;
  return { app: name, action: 'generate-secret', detail: 'jwt.secret: own; value (sensitive)' };
}

/**
 * Migrations run only here (a boot only checks the data version): the install when no data
 * version is recorded or the database is being created — whatever `upgrade` says, as installing
 * on an empty database upgrades no existing data — and, with `upgrade: true`, older data.
 */
function upgradeStep(
  name: string,
  m: AppManifest,
  app: ActualApp,
  application: AppCode,
  creating: boolean,
): Step | undefined {
  const code = application.version;
  if (code === undefined) return undefined;
  const install = creating || app.dataVersion === undefined;
  if (!install && (!m.upgrade || app.dataVersion! >= code)) return undefined;
  if (install && !m.upgrade) {
    return {
      app: name,
      action: 'upgrade',
      detail: creating
        ? `migrate to version ${code} (install on a new database; upgrade: false holds back only existing data)`
        : // A record written before data versions were recorded: an empty database is installed,
          // existing data only has its version recorded (upgrade: false holds it back).
          `migrate to version ${code} (install if empty; upgrade: false holds back existing data)`,
    };
  }
  const from = app.dataVersion === undefined || creating ? '' : ` (data at version ${app.dataVersion})`;
  const held = install ? undefined : application.upgradeHeldBy;
  if (held) {
    const err = new AppvisorError('UPGRADE_HELD_BACK', {
      app: name,
      codeVersion: code,
      replica: held.replica,
      version: held.version,
    });
    // A replica that drains serves no new visits: they wait here for the migration after it.
    return {
      app: name,
      action: 'refuse',
      code: err.code,
      detail: err.message,
      ...(held.leaving ? { awaitUpgrade: true as const } : {}),
    };
  }
  return { app: name, action: 'upgrade', detail: `migrate to version ${code}${from}` };
}

/** Start for a new or restored app: wanted when enabled and with-main (or asked by an operator), unless already up or stopped by one. */
function initialStart(
  name: string,
  m: AppManifest,
  app: ActualApp,
  record: AppRecord | undefined,
  live: boolean,
): Step | undefined {
  if (!m.enabled) return undefined;
  const intent = live ? record?.intent : undefined;
  if (intent?.action === 'stop') return undefined;
  if (live && app.runtime && NOT_STARTABLE.has(app.runtime.status)) return undefined;
  if (intent?.action === 'start') return operatorStart(name, intent);
  if (m.startMode !== 'with-main') return undefined;
  return { app: name, action: 'start', detail: 'startMode: with-main' };
}

function operatorStart(name: string, intent: OperatorIntent): Step {
  return {
    app: name,
    action: 'start',
    detail: `started by ${intent.by} at ${intent.at}`,
    requestedAt: intent.at,
  };
}

function push(steps: Step[], step: Step | undefined): void {
  if (step) steps.push(step);
}

/**
 * The application check (SPEC §8.6): data that records another application as its owner is
 * refused before anything runs on it; data that records none is claimed, and the plan says so.
 */
function applicationCheck(
  name: string,
  app: ActualApp,
  code: string | undefined,
): { refused: Step } | { refused?: undefined; claim?: Step } {
  const record = app.record;
  if (code === undefined || record === undefined) return {};
  if (record.application === undefined) {
    return {
      claim: {
        app: name,
        action: 'update-record',
        detail: `claim the app's data for application ${code} (no owning application was recorded)`,
        claim: true,
      },
    };
  }
  if (record.application === code) return {};
  // Empty data (no table of any application, data version 0 or none) may change application:
  // there is nothing the other one could misread. The executor checks again before it writes.
  if (app.dataEmpty === true) {
    return {
      claim: {
        app: name,
        action: 'update-record',
        detail: `the app's data is empty: it moves from application ${record.application} to ${code}`,
        claim: true,
        moveFrom: record.application,
      },
    };
  }
  return {
    refused: refuse(
      name,
      new AppvisorError('APP_WRONG_APPLICATION', { app: name, data: record.application, code }),
    ),
  };
}

/**
 * What creating, changing and restoring share: the application check, the target resolved and
 * provisioned (or the refusal), plus the app's own secret and the upgrade when they are due.
 */
function provisionedSteps(
  name: string,
  loaded: LoadedManifest,
  app: ActualApp,
  ctx: Context,
): { refused: Step } | { refused?: undefined; target: DatabaseTarget; steps: Step[]; note?: string } {
  const m = loaded.manifest;
  const application = applicationFor(m, ctx.opts);
  if (application instanceof AppvisorError) return { refused: refuse(name, application) };
  const owner = applicationCheck(name, app, application.name);
  if (owner.refused) return { refused: owner.refused };
  const target = resolveTarget(m, ctx.opts.main);
  if (target instanceof AppvisorError) return { refused: refuse(name, target) };
  const p = provision(name, m, target, app, ctx);
  if (p.refused) return { refused: p.refused };
  const steps = [...sweepSteps(name, app), ...p.steps];
  push(steps, owner.claim);
  push(steps, secretStep(name, m, app));
  const creating = p.steps.some((s) => s.action === 'create-database' || s.action === 'create-schema');
  // Empty data that moves holds no data version whatever the record says: the new one installs.
  const data = owner.claim?.moveFrom !== undefined ? { ...app, dataVersion: undefined } : app;
  push(steps, upgradeStep(name, m, data, application, creating));
  return p.note ? { target, steps, note: p.note } : { target, steps };
}

/** Removes what interrupted creates of this app left behind (only objects with this store's marker). */
function sweepSteps(name: string, app: ActualApp): Step[] {
  return (app.leftovers ?? []).map((l) => ({
    app: name,
    action: 'sweep',
    detail: `${l.target.kind} ${locateTarget(l.target)}: left half-made by an interrupted create (carries this store's marker for ${name})`,
    target: l.target,
  }));
}

/** What a restore keeps, in words that are true of this record. */
function restoreDetail(record: AppRecord, app: ActualApp): string {
  const kept: string[] = [];
  const hasData = record.inventory.some((i) => i.state !== 'creating');
  if (hasData) kept.push('data');
  if (app.hasSecret) kept.push('secret');
  const parts = ['restore orphaned record'];
  if (kept.length > 0) parts.push(`${kept.join(' and ')} kept`);
  if (!hasData) {
    parts.push(
      record.spec.deletionPolicy === 'drop'
        ? 'its data was dropped (deletionPolicy: drop): the app starts on an empty database'
        : 'no data of it was kept',
    );
  }
  if (record.dropAt !== undefined && hasData)
    parts.push(`the drop scheduled for ${record.dropAt} is cancelled`);
  return parts.join('; ');
}

/** Rules 1 and 3: a new app, or an orphaned record whose manifest is back. */
function planCreate(
  name: string,
  loaded: LoadedManifest,
  app: ActualApp,
  ctx: Context,
  restore: boolean,
): Step[] {
  const p = provisionedSteps(name, loaded, app, ctx);
  if (p.refused) return [p.refused];
  const steps = p.steps;
  const record = app.record;
  const base = restore && record ? restoreDetail(record, app) : `from ${loaded.file}`;
  steps.push({
    app: name,
    action: 'create-record',
    detail: p.note ? `${base}; ${p.note}` : base,
    target: p.target,
  });
  push(steps, initialStart(name, loaded.manifest, app, record, ctx.actual.live));
  return sortSteps(steps);
}

/** Stop / start / restart / update-routes for an app whose record is current (rule 2). */
function runtimeSteps(
  name: string,
  loaded: LoadedManifest,
  record: AppRecord,
  change: SpecChange,
  app: ActualApp,
  live: boolean,
  opts: PlanOptions,
): Step[] {
  const m = loaded.manifest;
  const steps: Step[] = [];
  const routes = (detail: string): void => {
    steps.push({ app: name, action: 'update-routes', detail });
  };
  const enableDetail = 'enabled: true; starts on first visit';
  const status = app.runtime?.status ?? 'stopped';
  const intent = record.intent;

  if (live && UP.has(status)) {
    if (!m.enabled) return [{ app: name, action: 'stop', detail: 'enabled: false' }];
    if (intent?.action === 'stop') {
      return [
        {
          app: name,
          action: 'stop',
          detail: `stopped by ${intent.by} at ${intent.at}`,
          requestedAt: intent.at,
        },
      ];
    }
    // Idle long enough: stopped (whatever else changed; its next visit starts it on the current spec).
    const idle = idleCheck(m, app.runtime, opts);
    if (idle.due) return [{ app: name, action: 'stop', detail: idle.detail, idleSince: idle.idleSince }];
    const runningHash = app.runtime?.specHash ?? record.specHash;
    if (runningHash === loaded.hash) return steps;
    // Started on another spec than the record's: restarted, unless the two differ only in what
    // never restarts an app (routes, idleStop), which the routes it serves already follow.
    const running = app.runtime?.spec;
    if (runningHash !== record.specHash && (running === undefined || classifyChange(running, m).restart)) {
      return [{ app: name, action: 'restart', detail: 'the running instance has an older spec' }];
    }
    if (change.restart) steps.push(restartStep(name, change, record.spec, m));
    if (change.routes) routes(routesReason(change));
    return steps;
  }

  if (live) {
    // Nothing is up: the manifest and the operator's intent decide the start, the record the routes.
    if (m.enabled && !NOT_STARTABLE.has(status) && intent?.action !== 'stop') {
      // Stopped for idleness: only a visit, or an operator's start given since, brings it back.
      const idleAt = app.runtime?.idleStoppedAt;
      if (intent?.action === 'start' && (idleAt === undefined || Date.parse(intent.at) > idleAt)) {
        steps.push(operatorStart(name, intent));
      } else if (m.startMode === 'with-main' && idleAt === undefined) {
        const detail =
          change.enabled === 'enable' ? 'enabled: true; startMode: with-main' : 'startMode: with-main';
        steps.push({ app: name, action: 'start', detail });
      } else if (status === 'error') {
        // A visit's start failed, or an isolated instance crashed: the reconcile retries it (with
        // the queue's backoff), not the visits.
        const crashed = app.runtime?.crashed;
        const detail = crashed ? `it crashed (${crashed}); restart` : 'its last start failed; retry';
        steps.push({ app: name, action: 'start', detail });
      } else if (status === 'needs-upgrade') {
        // Its boot found old data, which has been migrated since (by `apply` or another process).
        const application = applicationFor(m, opts);
        const code = application instanceof AppvisorError ? undefined : application.version;
        if (code !== undefined && app.dataVersion !== undefined && app.dataVersion >= code) {
          steps.push({ app: name, action: 'start', detail: `its data is at version ${code} now` });
        }
      }
    }
    if (change.routes) routes(routesReason(change));
    else if (m.enabled && m.startMode !== 'with-main' && change.enabled === 'enable') routes(enableDetail);
    return steps;
  }

  // CLI plan/apply: no runtime to look at, so only the spec change decides.
  if (!change.changed) return steps;
  if (change.enabled === 'disable') {
    steps.push({ app: name, action: 'stop', detail: 'enabled: false' });
  } else if (change.enabled === 'enable') {
    if (m.startMode === 'with-main')
      steps.push({ app: name, action: 'start', detail: 'enabled: true; startMode: with-main' });
    else if (!change.routes) routes(enableDetail);
  } else if (m.enabled) {
    if (change.restart) steps.push(restartStep(name, change, record.spec, m));
    if (change.startMode === 'with-main')
      steps.push({ app: name, action: 'start', detail: 'startMode: with-main' });
  }
  if (change.routes) routes(routesReason(change));
  return steps;
}

/** Rule 2: a current record and its manifest. */
function planChange(
  name: string,
  loaded: LoadedManifest,
  record: AppRecord,
  app: ActualApp,
  ctx: Context,
): Step[] {
  const p = provisionedSteps(name, loaded, app, ctx);
  if (p.refused) return [p.refused];
  const steps = p.steps;
  const change = record.specHash === loaded.hash ? NO_CHANGE : classifyChange(record.spec, loaded.manifest);
  // What only the record holds is a step of its own too: the plan is the whole diff.
  if (change.deletion || change.idleStop) {
    steps.push({
      app: name,
      action: 'update-record',
      detail: recordReason(record.spec, loaded.manifest),
    });
  }
  steps.push(...runtimeSteps(name, loaded, record, change, app, ctx.actual.live, ctx.opts));
  return sortSteps(steps);
}

/** The server a recorded object lives on, if appvisor can still reach it. */
function recordedServer(
  item: AppRecord['inventory'][number],
  record: AppRecord,
  ctx: Context,
): DatabaseTarget['serverRef'] | undefined {
  const main = ctx.opts.main;
  if (item.dialect === main.dialect && item.server === main.server) return 'main';
  const url = record.spec.database.connection?.url;
  if (url !== undefined && redactUrl(url) === item.server) return connectionRef(url);
  return undefined;
}

/**
 * The drops of a record with deletionPolicy: drop, each due at `dueAt` (scheduled, never
 * immediate: SPEC §8.6), plus refusals for what appvisor may not drop when `withRefusals`.
 */
function dropSteps(
  name: string,
  record: AppRecord,
  ctx: Context,
  dueAt: string,
  withRefusals: boolean,
): Step[] {
  const steps: Step[] = [];
  const now = ctx.opts.now;
  const due = now !== undefined && Date.parse(dueAt) <= now;
  for (const item of record.inventory) {
    const kind = item.kind;
    if (item.state === 'adopted') {
      if (withRefusals) {
        const err = new AppvisorError('DROP_REFUSED', {
          kind,
          name: `${item.name} on ${item.dialect} ${item.server}`,
          reason: 'adopted; appvisor did not create it',
        });
        steps.push(refuse(name, err));
      }
      continue;
    }
    const ref = recordedServer(item, record, ctx);
    if (ref === undefined) {
      if (withRefusals) {
        const err = new AppvisorError('DROP_REFUSED', {
          kind,
          name: `${item.name} on ${item.dialect} ${item.server}`,
          reason: 'its server is no longer the main server nor in the last applied manifest; drop it by hand',
        });
        steps.push(refuse(name, err));
      }
      continue;
    }
    const target = targetOfItem(item, ref);
    steps.push({
      app: name,
      action: kind === 'schema' ? 'drop-schema' : 'drop-database',
      detail: `${describeTarget(target)} (deletionPolicy: drop; due ${dueAt}${due ? ', now' : ''})`,
      target,
      dueAt,
    });
  }
  return steps;
}

/** Rule 4: the manifest is gone. */
function planRemoval(name: string, record: AppRecord, app: ActualApp, ctx: Context): Step[] {
  const drop = record.spec.deletionPolicy === 'drop';
  const steps: Step[] = [];
  if (ctx.actual.live && app.runtime && UP.has(app.runtime.status)) {
    steps.push({ app: name, action: 'stop', detail: 'manifest removed' });
  }
  const kept = app.hasSecret ? 'data and secret kept' : 'data kept';
  const secret = app.hasSecret ? '; secret kept' : '';
  const now = ctx.opts.now;
  if (!drop || now === undefined) {
    steps.push({ app: name, action: 'orphan', detail: `manifest removed; ${kept}` });
    return sortSteps(steps);
  }
  const graceMs = dropGraceMs(record.spec, ctx.opts);
  // No grace (dropAfter: 0s) is due now, in this very run.
  const dropAt = graceMs === 0 ? isoSeconds(now, 'down') : isoSeconds(now + graceMs, 'up');
  const drops = dropSteps(name, record, ctx, dropAt, true);
  const droppable = drops.some((s) => s.dueAt !== undefined);
  const when =
    graceMs === 0
      ? 'data dropped now (deletionPolicy: drop, dropAfter: 0s)'
      : `data kept until ${dropAt}, then dropped (deletionPolicy: drop, grace ${formatDuration(graceMs)}); put the file back before then to keep it`;
  steps.push({
    app: name,
    action: 'orphan',
    detail: droppable ? `manifest removed; ${when}${secret}` : `manifest removed; ${kept}`,
    ...(droppable ? { dropAt } : {}),
  });
  steps.push(...drops);
  return sortSteps(steps);
}

/** An orphaned record: its scheduled drops (shown until done), nothing else. */
function planOrphaned(name: string, record: AppRecord, ctx: Context): Step[] {
  if (record.spec.deletionPolicy !== 'drop' || record.dropAt === undefined) return [];
  return dropSteps(name, record, ctx, record.dropAt, false);
}

function planOne(name: string, ctx: Context): Step[] {
  const loaded = ctx.desired.apps.get(name);
  const app = ctx.actual.apps.get(name) ?? NO_APP;
  const record = app.record;
  // Blocked only where something was to be decided: a manifest, or a drop that is scheduled.
  const scheduled = record?.status === 'orphaned' && record.dropAt !== undefined;
  if (app.observeError && (loaded || scheduled)) {
    return [
      {
        app: name,
        action: 'refuse',
        code: app.observeError.code,
        detail: `blocked: ${app.observeError.message}`,
      },
    ];
  }
  if (loaded) {
    if (!record) return planCreate(name, loaded, app, ctx, false);
    if (record.status === 'orphaned') return planCreate(name, loaded, app, ctx, true);
    return planChange(name, loaded, record, app, ctx);
  }
  if (!record) return [];
  if (record.status === 'orphaned') return planOrphaned(name, record, ctx);
  // An invalid manifest is never a removal: the app keeps its last applied spec.
  if (ctx.invalidNames.has(name) || ctx.invalidFiles.has(record.file)) return [];
  if (ctx.guard !== undefined) {
    return [{ app: name, action: 'refuse', code: 'EMPTY_SET_GUARD', detail: ctx.guard }];
  }
  return planRemoval(name, record, app, ctx);
}

/** The steps for one app, in the order of ACTIONS (what a keyed reconcile carries out). */
export function planApp(name: string, desired: Desired, actual: Actual, opts: PlanOptions): Step[] {
  return planOne(name, buildContext(desired, actual, opts));
}

/**
 * The whole plan: every app named by a manifest or a record, sorted by name, preceded by the
 * main app's secret when it does not exist yet (apps with `jwt.secret: shared` need it).
 */
export function plan(desired: Desired, actual: Actual, opts: PlanOptions): Plan {
  const ctx = buildContext(desired, actual, opts);
  const names = new Set(desired.apps.keys());
  for (const [name, app] of actual.apps) if (app.record) names.add(name);
  const changes: Step[] = [];
  if (!actual.hasMainSecret) {
    changes.push({
      app: 'main',
      action: 'generate-secret',
      detail: "main app's JWT secret; value (sensitive)",
    });
  }
  for (const name of [...names].sort()) {
    for (const step of planOne(name, ctx)) changes.push(step);
  }
  return ctx.guard === undefined
    ? { changes, errors: desired.errors }
    : { changes, errors: desired.errors, guard: ctx.guard };
}

/** Whether `step` is scheduled for later than `now` (the executor leaves it for a later run). */
export function isScheduled(step: Step, now: number): boolean {
  return step.dueAt !== undefined && Date.parse(step.dueAt) > now;
}
