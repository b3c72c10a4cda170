import { AppvisorError, type ErrorSummary } from '../errors.js';
import { isolationOf } from '../manifests/defaults.js';
import type { AppManifest, InvalidFile } from '../manifests/types.js';
import type { Desired, PlanOptions } from '../reconcile/model.js';
import { applicationFor } from '../reconcile/planner.js';
import { resolveTarget } from '../reconcile/target.js';
import type { ApplicationView, AppReplicaStatus, AppView } from '../runtime/view.js';
import type { AppRecord, AppStatus, ReplicaAppStatus } from '../state/types.js';

/** One live replica as the app views see it: what it says about an app (undefined: stopped). */
export interface ReplicaSource {
  readonly id: string;
  readonly app: (name: string) => ReplicaAppStatus | undefined;
}

/** What the runtime says about one app right now. */
export interface LiveState {
  readonly status: AppStatus | undefined;
  readonly error: ErrorSummary | null;
  readonly startedAt: Date | null;
  /** Why it is stopped when appvisor stopped it by itself (`idle`). */
  readonly statusReason?: 'idle' | null;
  /** An isolated instance's memory as it last reported it (MiB). */
  readonly memoryMb?: number | undefined;
}

export interface ViewSources {
  readonly desired: Desired;
  readonly records: ReadonlyMap<string, AppRecord>;
  readonly main: PlanOptions['main'];
  readonly live: (name: string) => LiveState;
  /** The last reconcile error of apps that have no record to hold it (e.g. a refused create). */
  readonly reconcileErrors: ReadonlyMap<string, ErrorSummary>;
  /** The live replicas, this one included, sorted by id. */
  readonly replicas?: readonly ReplicaSource[];
  /** The applications a manifest may pick (their names and versions); absent: none is shown. */
  readonly planOptions?: Pick<PlanOptions, 'application' | 'codeVersion' | 'applications'>;
}

function invalidError(file: InvalidFile): ErrorSummary {
  const first = file.errors[0];
  const where = first ? `${first.file}:${first.line}:${first.column}: ${first.message}` : file.file;
  const more = file.errors.length > 1 ? ` (+${file.errors.length - 1} more)` : '';
  return { code: 'MANIFEST_INVALID', message: `${where}${more}` };
}

function databaseView(m: AppManifest, main: PlanOptions['main']): AppView['database'] {
  const target = resolveTarget(m, main);
  const dialect = target instanceof Error ? null : target.dialect;
  return {
    mode: m.database.mode,
    dialect,
    name: m.database.mode === 'new-schema' ? main.database : m.database.name,
    schema: m.database.mode === 'new-schema' ? (m.database.schema ?? null) : null,
  };
}

/**
 * One app's view for the admin API (SPEC §6): the manifest (or, while it is invalid or gone,
 * the last applied spec), the runtime's status and the most relevant error.
 */
export function appView(name: string, src: ViewSources): AppView | undefined {
  const loaded = src.desired.apps.get(name);
  const record = src.records.get(name);
  const invalid = src.desired.invalid.find((f) => f.name === name || (record && f.file === record.file));
  const spec = loaded?.manifest ?? record?.spec;
  if (!spec) {
    if (!invalid) return undefined;
    return {
      name,
      displayName: name,
      status: 'error',
      enabled: false,
      startMode: 'on-first-visit',
      database: { mode: 'new-database', dialect: null, name, schema: null },
      domains: [],
      jwt: { secret: 'own' },
      error: invalidError(invalid),
      startedAt: null,
      lastReconciledAt: null,
      file: invalid.file,
      replicas: replicaStatuses(name, src),
    };
  }
  const live = src.live(name);
  const reconcileError = src.reconcileErrors.get(name);
  let status: AppStatus = live.status ?? record?.status ?? 'stopped';
  if (status === 'provisioning' && !live.status && reconcileError) status = 'error';
  if (!record && reconcileError) status = 'error';
  const error =
    live.error ??
    (invalid ? invalidError(invalid) : null) ??
    reconcileError ??
    (record?.lastError ? { code: record.lastError.code, message: record.lastError.message } : null);
  return {
    name,
    displayName: spec.displayName,
    status,
    // An operator's stop since is the reason it stays stopped now (the intent says whose).
    statusReason:
      status === 'stopped' && record?.intent?.action !== 'stop' ? (live.statusReason ?? null) : null,
    enabled: spec.enabled,
    startMode: spec.startMode,
    database: databaseView(spec, src.main),
    domains: spec.domains,
    jwt: { secret: spec.jwt.secret },
    ...applicationView(spec, src),
    error,
    startedAt: live.startedAt ? live.startedAt.toISOString() : null,
    lastReconciledAt: record?.lastReconciledAt ?? null,
    file: loaded?.file ?? record?.file ?? null,
    dropAt: record?.dropAt ?? null,
    intent: record?.intent ?? null,
    replicas: replicaStatuses(name, src),
    isolation: {
      mode: isolationOf(spec).mode,
      ...(live.memoryMb !== undefined ? { memoryMb: live.memoryMb } : {}),
    },
  };
}

/** `{application}` for the app's spec, when the sources know that application. */
function applicationView(spec: AppManifest, src: ViewSources): { application?: ApplicationView } {
  if (!src.planOptions) return {};
  const found = applicationFor(spec, src.planOptions as PlanOptions);
  if (found instanceof AppvisorError || found.name === undefined || found.version === undefined) return {};
  return { application: { key: spec.application ?? null, name: found.name, version: found.version } };
}

/** The app on each live replica: `stopped` where that replica's heartbeat does not list it. */
function replicaStatuses(name: string, src: ViewSources): AppReplicaStatus[] {
  return (src.replicas ?? []).map((r) => {
    const there = r.app(name);
    return { id: r.id, status: there?.status ?? 'stopped', startedAt: there?.startedAt ?? null };
  });
}

/** Every app named by a manifest, an invalid file or a record, sorted by name. */
export function allViews(src: ViewSources): AppView[] {
  const names = new Set<string>([...src.desired.apps.keys(), ...src.records.keys()]);
  for (const f of src.desired.invalid) if (f.name) names.add(f.name);
  return [...names]
    .sort()
    .map((n) => appView(n, src))
    .filter((v): v is AppView => v !== undefined);
}
