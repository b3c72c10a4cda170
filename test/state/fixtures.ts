import type { AppManifest } from '../../src/manifests/types.js';
import type { AppRecord, HistoryEntry } from '../../src/state/types.js';

export function manifest(name: string, overrides: Partial<AppManifest> = {}): AppManifest {
  return {
    apiVersion: 'appvisor/v1',
    kind: 'App',
    name,
    displayName: name.toUpperCase(),
    enabled: true,
    startMode: 'on-first-visit',
    environment: 'local',
    database: { mode: 'new-database', name: name.replace(/-/g, '_'), adopt: false },
    upgrade: true,
    jwt: { secret: 'own' },
    domains: [],
    config: {},
    deletionPolicy: 'retain',
    ...overrides,
  };
}

/** A record with only the required fields. */
export function minimalRecord(name: string): AppRecord {
  return {
    name,
    file: `${name}.yaml`,
    spec: manifest(name),
    specHash: `hash-${name}`,
    inventory: [],
    hasSecret: false,
    status: 'stopped',
    createdAt: '2025-01-02T03:04:05.000Z',
    updatedAt: '2025-01-02T03:04:05.000Z',
  };
}

/** A record using every field, with nested JSON and text that needs care (quotes, unicode). */
export function fullRecord(name: string): AppRecord {
  return {
    name,
    file: `sub dir/${name}.yml`,
    spec: manifest(name, {
      displayName: 'Ünïcødé "CRM" — ✓',
      startMode: 'with-main',
      database: { mode: 'new-schema', name: 'main', schema: `${name}_schema`, adopt: true },
      domains: ['crm.example.com', 'crm.example.org'],
      config: { nested: { list: [1, 'two', null, true], quote: "it's" }, big: 'x'.repeat(100_000) },
      deletionPolicy: 'drop',
    }),
    specHash: 'sha256:0123456789abcdef',
    inventory: [
      {
        kind: 'schema',
        dialect: 'postgres',
        server: 'postgres://postgres@127.0.0.1:5432/main',
        name: `${name}_schema`,
        database: 'main',
        state: 'created',
        owner: `appvisor:abc:${name}`,
        at: '2025-01-02T03:04:06.000Z',
      },
    ],
    hasSecret: true,
    status: 'error',
    lastError: { code: 'DB_UNREACHABLE', message: "cannot reach 'x'", at: '2025-01-02T03:04:07.000Z' },
    createdAt: '2025-01-02T03:04:05.000Z',
    updatedAt: '2025-01-03T00:00:00.000Z',
    lastReconciledAt: '2025-01-03T00:00:01.000Z',
  };
}

/** `record` as the store answers it after `writes` writes: at that version. */
export function stored(record: AppRecord, writes = 1): AppRecord {
  return { ...record, version: writes };
}

export function historyEntry(app: string, n: number, withError = false): HistoryEntry {
  return {
    app,
    reconcileId: `r${n}`,
    at: new Date(Date.UTC(2025, 0, 1, 0, 0, n)).toISOString(),
    outcome: withError ? 'failed' : 'created',
    steps: [{ action: 'create-database', detail: `db ${app}`, result: 'created' }],
    ...(withError ? { error: { code: 'DB_UNREACHABLE', message: 'down' } } : {}),
    durationMs: 10 + n,
  };
}
