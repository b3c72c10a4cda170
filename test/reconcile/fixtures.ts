/** Small builders for planner tests: fully-defaulted manifests, records, desired and actual state. */
import type { AppManifest, InvalidFile, LoadedManifest, ManifestError } from '../../src/manifests/types.js';
import type { Actual, ActualApp, Desired, PlanOptions } from '../../src/reconcile/model.js';
import { ownerMarker } from '../../src/reconcile/owner.js';
import type { AppRecord, AppStatus, InventoryItem, OperatorIntent } from '../../src/state/types.js';

export const STORE = 'store-1';
export const PG_SERVER = '127.0.0.1:5432';
export const MAIN_PG: PlanOptions['main'] = { dialect: 'postgres', server: PG_SERVER, database: 'appvisor' };
export const MAIN_SQLITE: PlanOptions['main'] = { dialect: 'sqlite', server: 'data', database: 'main' };
/** The time plans are made at in these tests (drops are scheduled from it). */
export const NOW = Date.parse('2026-01-01T00:00:00Z');
export const OPTS: PlanOptions = { main: MAIN_PG, now: NOW };

type DeepPartial<T> = { -readonly [K in keyof T]?: T[K] extends object ? Partial<T[K]> : T[K] };
export type ManifestPatch = Omit<DeepPartial<AppManifest>, 'database' | 'jwt'> & {
  database?: Partial<AppManifest['database']>;
  jwt?: Partial<AppManifest['jwt']>;
};

/** A manifest with every default applied (SPEC §3), then `patch` on top. */
export function manifest(name: string, patch: ManifestPatch = {}): AppManifest {
  const { database, jwt, ...rest } = patch;
  return {
    apiVersion: 'appvisor/v1',
    kind: 'App',
    name,
    displayName: name,
    enabled: true,
    startMode: 'on-first-visit',
    environment: 'local',
    upgrade: true,
    domains: [],
    config: {},
    deletionPolicy: 'retain',
    ...rest,
    database: { mode: 'new-database', name: name.replaceAll('-', '_'), adopt: false, ...database },
    jwt: { secret: 'own', ...jwt },
  } as AppManifest;
}

function stable(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stable).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .filter((k) => o[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${stable(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/** Stands in for the manifest pipeline's stable hash. */
export function hashOf(m: AppManifest): string {
  return stable(m);
}

export function loaded(m: AppManifest, file = `${m.name}.yaml`): LoadedManifest {
  return { file, manifest: m, hash: hashOf(m) };
}

/** An inventory item for an app's database (or schema) on the main PostgreSQL server. */
export function item(app: string, patch: Partial<InventoryItem> = {}): InventoryItem {
  return {
    kind: 'database',
    dialect: 'postgres',
    server: PG_SERVER,
    name: app.replaceAll('-', '_'),
    state: 'created',
    owner: ownerMarker(STORE, app),
    at: '2025-01-01T00:00:00.000Z',
    ...patch,
  };
}

export interface RecordPatch {
  readonly status?: AppStatus;
  readonly inventory?: readonly InventoryItem[];
  readonly file?: string;
  readonly hasSecret?: boolean;
  readonly application?: string;
  readonly dropAt?: string;
  readonly intent?: OperatorIntent;
}

/** The record appvisor would hold after applying `spec` (by default with the database it created). */
export function record(spec: AppManifest, patch: RecordPatch = {}): AppRecord {
  return {
    name: spec.name,
    file: patch.file ?? `${spec.name}.yaml`,
    spec,
    specHash: hashOf(spec),
    inventory: patch.inventory ?? [item(spec.name)],
    hasSecret: patch.hasSecret ?? spec.jwt.secret === 'own',
    status: patch.status ?? 'running',
    createdAt: '2025-01-01T00:00:00.000Z',
    updatedAt: '2025-01-01T00:00:00.000Z',
    ...(patch.application ? { application: patch.application } : {}),
    ...(patch.dropAt ? { dropAt: patch.dropAt } : {}),
    ...(patch.intent ? { intent: patch.intent } : {}),
  };
}

export function desired(apps: readonly LoadedManifest[], invalid: readonly InvalidFile[] = []): Desired {
  const errors: ManifestError[] = invalid.flatMap((f) => f.errors);
  return { apps: new Map(apps.map((a) => [a.manifest.name, a])), invalid, errors };
}

export function invalidFile(file: string, name?: string): InvalidFile {
  return {
    file,
    ...(name === undefined ? {} : { name }),
    errors: [{ file, line: 3, column: 5, message: 'enabled must be a boolean' }],
  };
}

export interface ActualPatch {
  readonly live?: boolean;
  readonly storeId?: string | undefined;
  readonly hasMainSecret?: boolean;
}

export function actual(apps: Record<string, ActualApp> = {}, patch: ActualPatch = {}): Actual {
  return {
    apps: new Map(Object.entries(apps)),
    storeId: 'storeId' in patch ? patch.storeId : STORE,
    hasMainSecret: patch.hasMainSecret ?? true,
    live: patch.live ?? false,
  };
}

/** The actual state of an app that was applied from `spec` and is in order: record, database, secret. */
export function current(
  spec: AppManifest,
  patch: Partial<ActualApp> & { readonly record?: AppRecord } = {},
): ActualApp {
  return {
    record: record(spec),
    observed: { exists: true, owner: ownerMarker(STORE, spec.name) },
    hasSecret: spec.jwt.secret === 'own',
    ...patch,
  };
}
