/**
 * What observeApp and observeAll derive from the store, the servers and the runtime: table-driven
 * over the in-memory store and fake providers (each row: what is there, what is observed).
 */
import { describe, expect, it } from 'vitest';
import { AppvisorError } from '../../src/errors.js';
import type { LoadedManifest } from '../../src/manifests/types.js';
import type { ActualApp, DatabaseTarget, PlanOptions, RuntimeState } from '../../src/reconcile/model.js';
import { liveObservations } from '../../src/reconcile/observation-source.js';
import { type ObserveDeps, observeAll, observeApp } from '../../src/reconcile/observe.js';
import { ownerMarker } from '../../src/reconcile/owner.js';
import type { AppRecord } from '../../src/state/types.js';
import { FakeProvider, fakeProviders } from '../support/fake-provider.js';
import { MemoryStateStore } from '../support/memory-store.js';
import {
  desired,
  item,
  loaded,
  MAIN_PG,
  MAIN_SQLITE,
  manifest,
  PG_SERVER,
  record,
  STORE,
} from './fixtures.js';

const OURS = ownerMarker(STORE, 'crm');
const OTHER_URL = 'postgres://u:pw@db.example.com:5433/postgres';
const OTHER_SERVER = 'postgres://u:***@db.example.com:5433/postgres';
const CRM_DB: DatabaseTarget = {
  dialect: 'postgres',
  server: PG_SERVER,
  serverRef: 'main',
  kind: 'database',
  database: 'crm',
};

interface Row {
  readonly label: string;
  readonly manifests: readonly LoadedManifest[];
  readonly record?: AppRecord;
  readonly secrets?: readonly string[];
  readonly databases?: Readonly<Record<string, string | undefined>>;
  readonly schemas?: Readonly<Record<string, string | undefined>>;
  /** Half-made objects on the main server, with their marker. */
  readonly leftovers?: Readonly<Record<string, string>>;
  readonly runtime?: RuntimeState;
  readonly main?: PlanOptions['main'];
  /** A store that does not exist yet (plan on a fresh main database): no store id. */
  readonly noStore?: true;
  /** The observation, record left out (it is the stored record whenever there is one). */
  readonly want: Omit<ActualApp, 'record'>;
  /** The provider calls made, in order. */
  readonly calls: readonly string[];
}

function objects(map: Map<string, { owner?: string }>, from: Row['databases']): void {
  for (const [name, owner] of Object.entries(from ?? {})) map.set(name, owner === undefined ? {} : { owner });
}

async function setUp(
  row: Pick<Row, 'record' | 'secrets' | 'databases' | 'schemas' | 'leftovers' | 'noStore'>,
) {
  const store = new MemoryStateStore({ storeId: STORE });
  const fence = await store.beginTerm();
  if (row.record) await store.putRecord(row.record, fence);
  for (const s of row.secrets ?? []) await store.ensureSecret(s, `secret of ${s}`, fence);
  const provider = new FakeProvider();
  objects(provider.databases, row.databases);
  objects(provider.schemas, row.schemas);
  for (const [name, owner] of Object.entries(row.leftovers ?? {})) provider.leftovers.set(name, owner);
  const reader: ObserveDeps['store'] = {
    storeId: row.noStore ? undefined : store.storeId,
    listRecords: () => store.listRecords(),
    getRecord: (n) => store.getRecord(n),
    getSecret: (n) => store.getSecret(n),
  };
  return { store, provider, reader };
}

const ROWS: readonly Row[] = [
  {
    label: 'a new app with nothing on the server: absent, no secret',
    manifests: [loaded(manifest('crm'))],
    want: { observed: { exists: false }, hasSecret: false },
    calls: ['observeDatabase crm', 'listLeftovers'],
  },
  {
    label: 'a database carrying our marker: seen with it',
    manifests: [loaded(manifest('crm'))],
    databases: { crm: OURS },
    want: { observed: { exists: true, owner: OURS }, hasSecret: false },
    calls: ['observeDatabase crm', 'listLeftovers'],
  },
  {
    label: 'a foreign database: seen without a marker',
    manifests: [loaded(manifest('crm'))],
    databases: { crm: undefined },
    want: { observed: { exists: true }, hasSecret: false },
    calls: ['observeDatabase crm', 'listLeftovers'],
  },
  {
    label: 'a stored secret without a record (an interrupted create): has its secret',
    manifests: [loaded(manifest('crm'))],
    secrets: ['crm'],
    want: { observed: { exists: false }, hasSecret: true },
    calls: ['observeDatabase crm', 'listLeftovers'],
  },
  {
    label: 'a record with its secret and data version: both carried over',
    manifests: [loaded(manifest('crm'))],
    record: { ...record(manifest('crm')), dataVersion: 3 },
    databases: { crm: OURS },
    want: { observed: { exists: true, owner: OURS }, hasSecret: true, dataVersion: 3 },
    calls: ['observeDatabase crm', 'listLeftovers'],
  },
  {
    label: "leftovers: only those with this store's marker for this very app",
    manifests: [loaded(manifest('crm'))],
    leftovers: {
      _avtmp_crm_1: OURS,
      _avtmp_support_1: ownerMarker(STORE, 'support'),
      _avtmp_crm_2: ownerMarker('another-store', 'crm'),
    },
    want: {
      observed: { exists: false },
      hasSecret: false,
      leftovers: [{ name: '_avtmp_crm_1', target: { ...CRM_DB, database: '_avtmp_crm_1' } }],
    },
    calls: ['observeDatabase crm', 'listLeftovers'],
  },
  {
    label: 'no store yet: no leftover can be ours, none are listed',
    manifests: [loaded(manifest('crm'))],
    leftovers: { _avtmp_crm_1: OURS },
    noStore: true,
    want: { observed: { exists: false }, hasSecret: false },
    calls: ['observeDatabase crm'],
  },
  {
    label: 'a new-schema app: its schema is observed, and the leftovers of a killed restore asked for',
    manifests: [loaded(manifest('crm', { database: { mode: 'new-schema', schema: 'crm_s' } }))],
    schemas: { crm_s: OURS },
    want: { observed: { exists: true, owner: OURS }, hasSecret: false },
    calls: ['observeSchema crm_s', 'listLeftovers'],
  },
  {
    label: "a new-schema app's leftovers (a restore's temporary schema), named for the sweep",
    manifests: [loaded(manifest('crm', { database: { mode: 'new-schema', schema: 'crm_s' } }))],
    schemas: { crm_s: OURS },
    leftovers: { _avtmps_crm_1: OURS, _avtmps_support_1: ownerMarker(STORE, 'support') },
    want: {
      observed: { exists: true, owner: OURS },
      hasSecret: false,
      leftovers: [{ name: '_avtmps_crm_1', target: { ...CRM_DB, database: '_avtmps_crm_1' } }],
    },
    calls: ['observeSchema crm_s', 'listLeftovers'],
  },
  {
    label: 'a target that cannot be resolved (new-schema on SQLite): nothing observed',
    manifests: [loaded(manifest('crm', { database: { mode: 'new-schema' } }))],
    main: MAIN_SQLITE,
    want: { hasSecret: false },
    calls: [],
  },
  {
    label: 'a database renamed in the manifest: the new one observed, and the recorded one too',
    manifests: [loaded(manifest('crm', { database: { name: 'crm2' } }))],
    record: record(manifest('crm')),
    databases: { crm: OURS },
    want: {
      observed: { exists: false },
      observedRecorded: { exists: true, owner: OURS },
      hasSecret: true,
    },
    calls: ['observeDatabase crm2', 'listLeftovers', 'observeDatabase crm'],
  },
  {
    label: 'a recorded database on another server: not observed from the main one',
    manifests: [loaded(manifest('crm', { database: { name: 'crm2' } }))],
    record: record(manifest('crm'), { inventory: [item('crm', { server: OTHER_SERVER })] }),
    want: { observed: { exists: false }, hasSecret: true },
    calls: ['observeDatabase crm2', 'listLeftovers'],
  },
  {
    label: 'a removed manifest: the recorded database is observed',
    manifests: [],
    record: record(manifest('crm')),
    databases: { crm: OURS },
    want: { observedRecorded: { exists: true, owner: OURS }, hasSecret: true },
    calls: ['observeDatabase crm'],
  },
  {
    label: "the runtime's view is carried over",
    manifests: [loaded(manifest('crm'))],
    runtime: { status: 'running', specHash: 'h1' },
    want: { observed: { exists: false }, hasSecret: false, runtime: { status: 'running', specHash: 'h1' } },
    calls: ['observeDatabase crm', 'listLeftovers'],
  },
];

describe('observeApp', () => {
  it.each(ROWS)('$label', async (row) => {
    const { store, provider, reader } = await setUp(row);
    const runtime = row.runtime;
    const { record, ...rest } = await observeApp(
      'crm',
      desired(row.manifests),
      {
        store: reader,
        source: liveObservations(fakeProviders(provider)),
        main: row.main ?? MAIN_PG,
        ...(runtime ? { runtime: (n: string) => (n === 'crm' ? runtime : undefined) } : {}),
      },
      await store.getRecord('crm'),
    );
    expect(record).toEqual(row.record ? { ...row.record, version: 1 } : undefined);
    expect(rest).toEqual(row.want);
    expect(provider.calls).toEqual(row.calls);
    // Observing changes nothing.
    expect(provider.changes()).toEqual([]);
  });
});

describe('observeAll', () => {
  it('observes every app named by a manifest or a record, listing leftovers once per server', async () => {
    const { store, provider, reader } = await setUp({
      record: record(manifest('gone'), { status: 'orphaned' }),
      databases: { crm: OURS },
      secrets: ['main'],
    });
    const actual = await observeAll(desired([loaded(manifest('crm')), loaded(manifest('support'))]), {
      store: reader,
      source: liveObservations(fakeProviders(provider)),
      main: MAIN_PG,
    });
    expect([...actual.apps.keys()].sort()).toEqual(['crm', 'gone', 'support']);
    expect(actual.apps.get('crm')?.observed).toEqual({ exists: true, owner: OURS });
    expect(actual.apps.get('support')?.observed).toEqual({ exists: false });
    expect(actual.apps.get('gone')?.record?.status).toBe('orphaned');
    expect(actual).toMatchObject({ storeId: STORE, hasMainSecret: true, live: false });
    expect(provider.calls.filter((c) => c === 'listLeftovers')).toHaveLength(1);
    expect(store.state.records.size).toBe(1);
  });

  it('blocks only the apps on a server it cannot reach, with the error, and says it is live with a runtime', async () => {
    const { provider, reader } = await setUp({});
    const down = new FakeProvider({ server: OTHER_SERVER }).fail(
      'observeDatabase',
      new AppvisorError('DB_UNREACHABLE', {
        dialect: 'postgres',
        server: OTHER_SERVER,
        detail: 'ECONNREFUSED',
      }),
    );
    const remote = manifest('remote', {
      database: { mode: 'new-connection', connection: { url: OTHER_URL } },
    });
    const actual = await observeAll(desired([loaded(remote), loaded(manifest('crm'))]), {
      store: reader,
      source: liveObservations(fakeProviders(provider, { [OTHER_URL]: down })),
      main: MAIN_PG,
      runtime: () => undefined,
    });
    expect(actual.apps.get('remote')).toEqual({
      hasSecret: false,
      observeError: {
        code: 'DB_UNREACHABLE',
        message: `cannot reach postgres server ${OTHER_SERVER}: ECONNREFUSED`,
      },
    });
    expect(actual.apps.get('crm')).toEqual({ observed: { exists: false }, hasSecret: false });
    expect(actual).toMatchObject({ hasMainSecret: false, live: true });
  });
});

describe('liveObservations: leftovers listed once in a while for a shared source', () => {
  const listings = (p: FakeProvider) => p.calls.filter((c) => c === 'listLeftovers').length;

  it('lists a server once for a plan, however many apps ask', async () => {
    const provider = new FakeProvider();
    const source = liveObservations(fakeProviders(provider));
    for (let i = 0; i < 5; i++) await source.leftovers(CRM_DB, {});
    expect(listings(provider)).toBe(1);
  });

  it('with leftoversFreshMs, lists again once the listing is older, and sees what changed', async () => {
    const provider = new FakeProvider();
    let now = 1_000;
    const source = liveObservations(fakeProviders(provider), { leftoversFreshMs: 2_000, now: () => now });
    expect(await source.leftovers(CRM_DB, {})).toEqual([]);
    provider.leftovers.set('crm_tmp', OURS);
    now += 1_999;
    // Still fresh: the runs of a burst share one listing (a missed leftover waits for the next).
    expect(await source.leftovers(CRM_DB, {})).toEqual([]);
    now += 1;
    expect(await source.leftovers(CRM_DB, {})).toEqual([{ name: 'crm_tmp', owner: OURS }]);
    expect(listings(provider)).toBe(2);
  });

  it('does not keep a failed listing: the next run asks the server again', async () => {
    let failures = 1;
    const provider = new FakeProvider().during('listLeftovers', () => {
      if (failures-- > 0) throw new AppvisorError('DB_UNREACHABLE', { server: PG_SERVER });
    });
    const source = liveObservations(fakeProviders(provider), { leftoversFreshMs: 60_000 });
    await expect(source.leftovers(CRM_DB, {})).rejects.toMatchObject({ code: 'DB_UNREACHABLE' });
    expect(await source.leftovers(CRM_DB, {})).toEqual([]);
    expect(listings(provider)).toBe(2);
  });
});
