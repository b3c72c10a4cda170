/**
 * schema/*.schema.json is the single source of truth; these tests fail when the TypeScript
 * types drift from it. The compiler checks the fixtures against the types (`satisfies` on
 * object literals rejects missing and extra fields); the tests check them against the schemas.
 */
import { describe, expect, it } from 'vitest';
import type { SettingsInput } from '../../src/config/types.js';
import { applyDefaults, type ManifestInput } from '../../src/manifests/defaults.js';
import type {
  AppManifest,
  DatabaseMode,
  DeletionPolicy,
  IsolationMode,
  SecretMode,
  StartMode,
} from '../../src/manifests/types.js';
import { APP_SCHEMA, SETTINGS_SCHEMA } from '../../src/manifests/validate.js';

type DeepRequired<T> = T extends readonly (infer U)[]
  ? readonly DeepRequired<U>[]
  : T extends object
    ? { readonly [K in keyof T]-?: DeepRequired<T[K]> }
    : T;

/** Compiles only when the list names every member of the union. */
type Complete<T extends string, L extends readonly T[]> = [Exclude<T, L[number]>] extends [never]
  ? true
  : false;

const START_MODES = ['on-first-visit', 'with-main'] as const satisfies readonly StartMode[];
const DATABASE_MODES = [
  'new-database',
  'new-connection',
  'new-schema',
] as const satisfies readonly DatabaseMode[];
const SECRET_MODES = ['own', 'shared'] as const satisfies readonly SecretMode[];
const DELETION_POLICIES = ['retain', 'drop'] as const satisfies readonly DeletionPolicy[];
const ENVIRONMENTS = ['local'] as const satisfies readonly AppManifest['environment'][];
const ISOLATION_MODES = ['shared', 'worker', 'process'] as const satisfies readonly IsolationMode[];
const complete: [
  Complete<StartMode, typeof START_MODES>,
  Complete<DatabaseMode, typeof DATABASE_MODES>,
  Complete<SecretMode, typeof SECRET_MODES>,
  Complete<DeletionPolicy, typeof DELETION_POLICIES>,
  Complete<AppManifest['environment'], typeof ENVIRONMENTS>,
  Complete<IsolationMode, typeof ISOLATION_MODES>,
] = [true, true, true, true, true, true];

type RequiredKeys<T> = { [K in keyof T]-?: object extends Pick<T, K> ? never : K }[keyof T];
const REQUIRED_INPUT = [
  'apiVersion',
  'kind',
  'name',
] as const satisfies readonly RequiredKeys<ManifestInput>[];
const requiredComplete: Complete<RequiredKeys<ManifestInput>, typeof REQUIRED_INPUT> = true;

/** Every field of AppManifest, optional ones included. */
const FULL_MANIFEST = {
  apiVersion: 'appvisor/v1',
  kind: 'App',
  name: 'x',
  displayName: 'X',
  enabled: true,
  startMode: 'with-main',
  environment: 'local',
  database: {
    mode: 'new-connection',
    name: 'x',
    schema: 's',
    connection: { url: 'postgres://h' },
    adopt: false,
  },
  upgrade: true,
  jwt: { secret: 'own' },
  domains: ['x.example.com'],
  config: {},
  deletionPolicy: 'retain',
  dropAfter: '24h',
  idleStop: '15m',
  application: 'crm',
  isolation: { mode: 'worker', memoryLimitMb: 256, watchdogMs: 5000 },
} as const satisfies DeepRequired<AppManifest>;

const FULL_SETTINGS = {
  listen: { host: 'h', port: 1 },
  appsDir: 'a',
  backupsDir: 'b',
  dataDir: 'd',
  database: { url: 'sqlite:x', connectionBudget: 64, schemaPoolSize: 10 },
  app: 'm',
  // Free-form by name, like config: a leaf.
  applications: {},
  deletionGrace: '24h',
  shutdownDrain: '2s',
  reconcile: { concurrency: 4 },
  idleStop: '15m',
  mainDatabase: { adopt: true },
  admin: { hosts: ['admin.example.com'] },
  metrics: { maxAppLabels: 10_000 },
} as const satisfies DeepRequired<SettingsInput>;

type Schema = {
  properties?: Record<string, Schema>;
  type?: string;
  items?: Schema;
  enum?: unknown[];
  const?: unknown;
};

/** Property paths of a schema: `database.connection.url`, `domains[]`; free-form objects are leaves. */
function schemaPaths(schema: Schema, prefix = ''): string[] {
  const out: string[] = [];
  for (const [key, sub] of Object.entries(schema.properties ?? {})) {
    const here = prefix ? `${prefix}.${key}` : key;
    out.push(here);
    if (sub.properties) out.push(...schemaPaths(sub, here));
    if (sub.type === 'array') out.push(`${here}[]`);
  }
  return out.sort();
}

/** The same paths of a value; `config` (free-form) is a leaf. */
function valuePaths(value: object, prefix = ''): string[] {
  const out: string[] = [];
  for (const [key, sub] of Object.entries(value)) {
    const here = prefix ? `${prefix}.${key}` : key;
    out.push(here);
    if (Array.isArray(sub)) out.push(`${here}[]`);
    else if (sub && typeof sub === 'object' && here !== 'config') out.push(...valuePaths(sub, here));
  }
  return out.sort();
}

function enumAt(schema: Schema, path: string): unknown[] {
  const node = path.split('.').reduce<Schema>((s, key) => s.properties![key]!, schema);
  return [...(node.enum ?? [node.const])].sort();
}

describe('AppManifest and schema/app.schema.json agree', () => {
  it('have the same fields', () => {
    expect(complete.every(Boolean) && requiredComplete).toBe(true);
    expect(valuePaths(FULL_MANIFEST)).toEqual(schemaPaths(APP_SCHEMA as Schema));
  });

  it.each([
    ['startMode', START_MODES],
    ['database.mode', DATABASE_MODES],
    ['jwt.secret', SECRET_MODES],
    ['deletionPolicy', DELETION_POLICIES],
    ['environment', ENVIRONMENTS],
    ['apiVersion', [FULL_MANIFEST.apiVersion]],
    ['kind', [FULL_MANIFEST.kind]],
    ['isolation.mode', ISOLATION_MODES],
  ])('%s allows exactly the values of the TypeScript type', (path, values) => {
    expect(enumAt(APP_SCHEMA as Schema, path)).toEqual([...values].sort());
  });

  it('requires exactly the fields ManifestInput requires', () => {
    expect([...(APP_SCHEMA.required as string[])].sort()).toEqual([...REQUIRED_INPUT].sort());
  });

  it('describes every field (editors show the descriptions)', () => {
    const missing: string[] = [];
    const walk = (schema: Schema & { description?: string }, path: string): void => {
      if (!schema.description) missing.push(path || '(root)');
      for (const [key, sub] of Object.entries(schema.properties ?? {}))
        walk(sub, path ? `${path}.${key}` : key);
      if (schema.items) walk(schema.items, `${path}[]`);
    };
    walk(APP_SCHEMA as Schema, '');
    walk(SETTINGS_SCHEMA as Schema, 'settings');
    expect(missing).toEqual([]);
  });

  it.each(DATABASE_MODES.map((mode) => [mode]))(
    'applyDefaults fills in every field the schema has (mode %s)',
    (mode) => {
      const extra =
        mode === 'new-connection'
          ? { connection: { url: 'postgres://h' } }
          : mode === 'new-schema'
            ? { schema: 's' }
            : {};
      const manifest = applyDefaults({
        apiVersion: 'appvisor/v1',
        kind: 'App',
        name: 'x',
        database: { mode, ...extra },
      });
      const expected = schemaPaths(APP_SCHEMA as Schema).filter(
        (p) =>
          !(p.startsWith('database.connection') && mode !== 'new-connection') &&
          !(p === 'database.schema' && mode !== 'new-schema') &&
          // No default of its own: the deletionGrace setting stands in when it is absent.
          p !== 'dropAfter' &&
          // The idleStop setting stands in when it is absent.
          p !== 'idleStop' &&
          // Absent means the default application and shared mode, so older manifests keep their hash.
          p !== 'application' &&
          !p.startsWith('isolation'),
      );
      expect(valuePaths(manifest)).toEqual(expected);
    },
  );
});

describe('SettingsInput and schema/appvisor.schema.json agree', () => {
  it('have the same fields', () => {
    expect(valuePaths(FULL_SETTINGS)).toEqual(schemaPaths(SETTINGS_SCHEMA as Schema));
  });
});
