import type {
  AppManifest,
  DatabaseMode,
  DeletionPolicy,
  IdleStop,
  Isolation,
  IsolationMode,
  SecretMode,
  StartMode,
} from './types.js';

/** A manifest as written, after it passed the schema: every optional field may be missing. */
export interface ManifestInput {
  readonly apiVersion: 'appvisor/v1';
  readonly kind: 'App';
  readonly name: string;
  readonly displayName?: string;
  readonly enabled?: boolean;
  readonly startMode?: StartMode;
  readonly environment?: 'local';
  readonly database?: {
    readonly mode?: DatabaseMode;
    readonly name?: string;
    readonly schema?: string;
    readonly connection?: { readonly url: string };
    readonly adopt?: boolean;
  };
  readonly upgrade?: boolean;
  readonly jwt?: { readonly secret?: SecretMode };
  readonly domains?: readonly string[];
  readonly config?: Readonly<Record<string, unknown>>;
  readonly deletionPolicy?: DeletionPolicy;
  readonly dropAfter?: string;
  readonly idleStop?: IdleStop;
  readonly application?: string;
  readonly isolation?: {
    readonly mode?: IsolationMode;
    readonly memoryLimitMb?: number;
    readonly watchdogMs?: number;
  };
}

/** SPEC §8.3's defaults: shared mode; for isolated apps 256 MiB and a 5 s watchdog. */
export const DEFAULT_ISOLATION: Isolation = Object.freeze({
  mode: 'shared',
  memoryLimitMb: 256,
  watchdogMs: 5000,
});

/** The app's isolation, its defaults filled in (a manifest without `isolation` is shared). */
export function isolationOf(manifest: Pick<AppManifest, 'isolation'>): Isolation {
  return manifest.isolation ?? DEFAULT_ISOLATION;
}

/** The database name an app gets when its manifest does not set one: `-` becomes `_`. */
export function defaultDatabaseName(appName: string): string {
  return appName.replaceAll('-', '_');
}

/**
 * Fills in every default of SPEC §3 and deep-freezes the result. Domains are lower-cased
 * (host names are case-insensitive) so that routes and duplicate checks compare them as equal.
 */
export function applyDefaults(input: ManifestInput): AppManifest {
  const db = input.database ?? {};
  const mode = db.mode ?? 'new-database';
  const manifest: AppManifest = {
    apiVersion: input.apiVersion,
    kind: input.kind,
    name: input.name,
    displayName: input.displayName ?? input.name,
    enabled: input.enabled ?? true,
    startMode: input.startMode ?? 'on-first-visit',
    environment: input.environment ?? 'local',
    database: {
      mode,
      name: db.name ?? defaultDatabaseName(input.name),
      ...(mode === 'new-schema' ? { schema: db.schema ?? input.name } : {}),
      ...(mode === 'new-connection' && db.connection ? { connection: { url: db.connection.url } } : {}),
      adopt: db.adopt ?? false,
    },
    upgrade: input.upgrade ?? true,
    jwt: { secret: input.jwt?.secret ?? 'own' },
    domains: (input.domains ?? []).map((domain) => domain.toLowerCase()),
    config: input.config ?? {},
    deletionPolicy: input.deletionPolicy ?? 'retain',
    ...(input.dropAfter !== undefined ? { dropAfter: input.dropAfter } : {}),
    ...(input.idleStop !== undefined ? { idleStop: input.idleStop } : {}),
    ...(input.application !== undefined ? { application: input.application } : {}),
    ...(input.isolation !== undefined
      ? {
          isolation: {
            mode: input.isolation.mode ?? DEFAULT_ISOLATION.mode,
            memoryLimitMb: input.isolation.memoryLimitMb ?? DEFAULT_ISOLATION.memoryLimitMb,
            watchdogMs: input.isolation.watchdogMs ?? DEFAULT_ISOLATION.watchdogMs,
          },
        }
      : {}),
  };
  return deepFreeze(manifest);
}

/** Freezes a JSON-like value and everything in it. Cycles are not expected (aliases are checked). */
export function deepFreeze<T>(value: T): T {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const next = stack.pop();
    if (next === null || typeof next !== 'object' || Object.isFrozen(next)) continue;
    Object.freeze(next);
    for (const child of Object.values(next)) stack.push(child);
  }
  return value;
}
