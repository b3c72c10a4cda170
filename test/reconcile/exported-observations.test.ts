/**
 * A state export as observeAll reads it (src/reconcile/exported-observations.ts): what it saw is
 * answered as the servers answered, what it could not have seen is a guess that says so.
 */
import { describe, expect, it } from 'vitest';
import {
  asExportedManifests,
  exportedObservations,
  exportedStore,
} from '../../src/reconcile/exported-observations.js';
import type { DatabaseTarget, Plan } from '../../src/reconcile/model.js';
import { observeAll } from '../../src/reconcile/observe.js';
import { ownerMarker } from '../../src/reconcile/owner.js';
import { noteUnobserved } from '../../src/reconcile/unobserved.js';
import type { StateExport } from '../../src/state/export-format.js';
import { desired, loaded, MAIN_PG, manifest, PG_SERVER, record, STORE } from './fixtures.js';

const OURS = ownerMarker(STORE, 'crm');
const OTHER = 'postgres://u:***@db.example.com:5433/postgres';

const DOC: StateExport = {
  format: 'appvisor-state',
  version: 1,
  exportedAt: '2026-01-01T00:00:00Z',
  storeId: STORE,
  main: MAIN_PG,
  hasMainSecret: true,
  secrets: ['main', 'crm'],
  records: [{ ...record(manifest('crm')), version: 1 }],
  servers: [
    {
      dialect: 'postgres',
      server: PG_SERVER,
      databases: [{ name: 'crm', owner: OURS }, { name: 'legacy' }],
      schemas: [{ name: 'billing', owner: ownerMarker(STORE, 'billing') }],
      leftovers: [{ name: '_avtmp_crm_1', owner: OURS }],
    },
    {
      dialect: 'postgres',
      server: 'postgres://u:***@down.example.com:5432/postgres',
      error: {
        code: 'DB_UNREACHABLE',
        message: 'cannot reach postgres server down.example.com: ECONNREFUSED',
      },
    },
  ],
  dataEmpty: [{ dialect: 'postgres', server: PG_SERVER, kind: 'database', database: 'crm', empty: true }],
  mainRefusals: [],
};

const ON_MAIN: DatabaseTarget = {
  dialect: 'postgres',
  server: PG_SERVER,
  serverRef: 'main',
  kind: 'database',
  database: 'crm',
};

describe('exportedObservations', () => {
  const source = exportedObservations(DOC);

  it.each([
    ['a database it listed, with its marker', ON_MAIN, { exists: true, owner: OURS }],
    ['a database it listed without a marker', { ...ON_MAIN, database: 'legacy' }, { exists: true }],
    ['a database its server did not hold', { ...ON_MAIN, database: 'blog' }, { exists: false }],
    [
      'a schema it listed',
      { ...ON_MAIN, kind: 'schema', database: 'appvisor', schema: 'billing' },
      { exists: true, owner: ownerMarker(STORE, 'billing') },
    ],
    [
      'a server it does not know: absent, and said so',
      { ...ON_MAIN, server: OTHER, serverRef: { url: OTHER } },
      {
        exists: false,
        unobserved: `not observed offline: postgres server ${OTHER} is not in the state export, taken as holding nothing`,
      },
    ],
  ] as const)('observes %s', async (_label, target, want) => {
    expect(await source.observe(target as DatabaseTarget, {})).toEqual(want);
  });

  it('answers a server that could not be read with its error, as an online plan meets it', async () => {
    const target = { ...ON_MAIN, server: 'postgres://u:***@down.example.com:5432/postgres' };
    await expect(source.observe(target, {})).rejects.toMatchObject({
      code: 'DB_UNREACHABLE',
      message: 'cannot reach postgres server down.example.com: ECONNREFUSED (at export)',
    });
  });

  it('lists the leftovers and the data-empty answers it holds; an answer it lacks is a guess said so', async () => {
    expect(await source.leftovers(ON_MAIN, {})).toEqual([{ name: '_avtmp_crm_1', owner: OURS }]);
    expect(await source.dataEmpty(ON_MAIN)).toEqual({ value: true });
    expect(await source.dataEmpty({ ...ON_MAIN, database: 'legacy' })).toEqual({
      value: false,
      unobserved: 'not observed offline: whether the data of legacy is empty, taken as not empty',
    });
  });
});

describe('observeAll over an export', () => {
  it('sees the records, the secrets and the servers as exported, and notes what it could not see', async () => {
    const remote = manifest('remote', {
      database: {
        mode: 'new-connection',
        connection: { url: 'postgres://u:pw@db.example.com:5433/postgres' },
      },
    });
    const d = asExportedManifests(desired([loaded(manifest('crm')), loaded(remote)]));
    const actual = await observeAll(d, {
      store: exportedStore(DOC),
      source: exportedObservations(DOC),
      main: MAIN_PG,
    });
    expect(actual).toMatchObject({ storeId: STORE, hasMainSecret: true, live: false });
    expect(actual.apps.get('crm')).toMatchObject({
      observed: { exists: true, owner: OURS },
      hasSecret: true,
      leftovers: [{ name: '_avtmp_crm_1' }],
    });
    expect(actual.apps.get('crm')?.unobserved).toBeUndefined();
    expect(actual.apps.get('remote')).toEqual({
      observed: { exists: false },
      hasSecret: false,
      unobserved: `not observed offline: postgres server ${OTHER} is not in the state export, taken as holding nothing`,
    });
  });
});

describe('asExportedManifests', () => {
  it("hides a connection URL's password as the export does, keeping the manifest's hash", () => {
    const remote = loaded(
      manifest('remote', {
        database: {
          mode: 'new-connection',
          connection: { url: 'postgres://u:pw@db.example.com:5433/postgres' },
        },
      }),
    );
    const plain = loaded(manifest('crm'));
    const out = asExportedManifests(desired([remote, plain]));
    expect(out.apps.get('remote')?.manifest.database.connection?.url).toBe(OTHER);
    expect(out.apps.get('remote')?.hash).toBe(remote.hash);
    expect(out.apps.get('crm')?.manifest.database).toEqual(plain.manifest.database);
    expect(out.apps.get('crm')?.hash).toBe(plain.hash);
  });

  it('keeps config only as a digest of its values, whatever their order', () => {
    const a = loaded(
      manifest('wiki', { config: { theme: 'dark', apiKey: 'wk-secret', nested: { b: 1, a: [2] } } }),
    );
    const b = loaded(
      manifest('wiki', { config: { nested: { a: [2], b: 1 }, apiKey: 'wk-secret', theme: 'dark' } }),
    );
    const c = loaded(
      manifest('wiki', { config: { theme: 'dark', apiKey: 'wk-other', nested: { b: 1, a: [2] } } }),
    );
    const digest = (l: typeof a) => asExportedManifests(desired([l])).apps.get('wiki')!.manifest.config;
    expect(JSON.stringify(digest(a))).not.toContain('wk-secret');
    expect(digest(a)).toEqual({ sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(digest(b)).toEqual(digest(a));
    expect(digest(c)).not.toEqual(digest(a));
  });
});

describe('noteUnobserved', () => {
  it("appends the note to each step of the app it concerns, and to no other app's", () => {
    const plan: Plan = {
      changes: [
        { app: 'remote', action: 'create-database', detail: 'database remote' },
        { app: 'remote', action: 'create-record', detail: 'from remote.yaml' },
        { app: 'crm', action: 'update-routes', detail: 'domains changed' },
      ],
      errors: [],
    };
    const apps = new Map([
      ['remote', { hasSecret: false, unobserved: 'not observed offline: x' }],
      ['crm', { hasSecret: true }],
    ]);
    const noted = noteUnobserved(plan, { apps, storeId: STORE, hasMainSecret: true, live: false });
    expect(noted.changes.map((c) => c.detail)).toEqual([
      'database remote (not observed offline: x)',
      'from remote.yaml (not observed offline: x)',
      'domains changed',
    ]);
    expect(noteUnobserved(plan, { apps: new Map(), storeId: STORE, hasMainSecret: true, live: false })).toBe(
      plan,
    );
  });
});
