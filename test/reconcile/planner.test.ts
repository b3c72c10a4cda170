import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { AppManifest } from '../../src/manifests/types.js';
import {
  ACTIONS,
  type Action,
  type Actual,
  type ActualApp,
  type Desired,
  type PlanOptions,
  type Step,
} from '../../src/reconcile/model.js';
import { ownerMarker } from '../../src/reconcile/owner.js';
import { classifyChange, isScheduled, plan, planApp } from '../../src/reconcile/planner.js';
import {
  actual,
  current,
  desired,
  hashOf,
  invalidFile,
  item,
  loaded,
  MAIN_SQLITE,
  type ManifestPatch,
  manifest,
  NOW,
  OPTS,
  PG_SERVER,
  record,
  STORE,
} from './fixtures.js';

/** An expected step: its action and, optionally, text its detail must contain. */
type Want = readonly [Action, string?];

interface Case {
  readonly label: string;
  readonly d: Desired;
  readonly a: Actual;
  readonly opts?: PlanOptions;
  readonly want: readonly Want[];
}

function expectSteps(steps: readonly Step[], want: readonly Want[]): void {
  expect(steps.map((s) => s.action)).toEqual(want.map((w) => w[0]));
  want.forEach(([, detail], i) => {
    if (detail !== undefined) expect(steps[i]?.detail).toContain(detail);
  });
}

function runCases(cases: readonly Case[]): void {
  it.each(cases)('$label', ({ d, a, opts, want }) => {
    expectSteps(planApp('crm', d, a, opts ?? OPTS), want);
  });
}

const CRM = manifest('crm');
const URL_PW = 'postgres://crm:hunter2@db.example.com:5433/postgres';
const ours = { exists: true, owner: ownerMarker(STORE, 'crm') };

/** Desired = one crm manifest; actual = a new app with the given observation and extras. */
function fresh(patch: ManifestPatch, app: Partial<ActualApp> = {}, live = false): Pick<Case, 'd' | 'a'> {
  return {
    d: desired([loaded(manifest('crm', patch))]),
    a: actual({ crm: { hasSecret: false, observed: { exists: false }, ...app } }, { live }),
  };
}

/** Record applied from `before`, manifest now `after` (both patches on crm's defaults). */
const STOP = { action: 'stop', by: 'admin token via admin-ui', at: '2026-01-02T03:04:05.000Z' } as const;
const START = { action: 'start', by: 'alice', at: '2026-01-02T03:05:00.000Z' } as const;

function changed(
  before: ManifestPatch,
  after: ManifestPatch,
  app: Partial<ActualApp> = {},
  live = false,
): Pick<Case, 'd' | 'a'> {
  const spec = manifest('crm', before);
  return {
    d: desired([loaded(manifest('crm', after))]),
    a: actual({ crm: current(spec, app) }, { live }),
  };
}

describe('classifyChange', () => {
  const none = {
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
  };
  it.each<[string, ManifestPatch, ManifestPatch, Partial<ReturnType<typeof classifyChange>>]>([
    ['identical', {}, {}, {}],
    ['domains reordered', { domains: ['a.test', 'b.test'] }, { domains: ['b.test', 'a.test'] }, {}],
    ['idleStop only', {}, { idleStop: '15m' }, { changed: true, recordOnly: true, idleStop: true }],
    ['config key order', { config: { a: 1, b: [1, { c: 2 }] } }, { config: { b: [1, { c: 2 }], a: 1 } }, {}],
    ['domains', {}, { domains: ['crm.test'] }, { changed: true, routes: true, domains: true }],
    ['displayName', {}, { displayName: 'CRM' }, { changed: true, routes: true, displayName: true }],
    [
      'config value',
      { config: { a: 1 } },
      { config: { a: 2 } },
      { changed: true, restart: true, config: true },
    ],
    [
      'config nested',
      { config: { a: { b: [1] } } },
      { config: { a: { b: [1, 2] } } },
      { changed: true, restart: true, config: true },
    ],
    ['config key added', {}, { config: { a: null } }, { changed: true, restart: true, config: true }],
    ['upgrade', {}, { upgrade: false }, { changed: true, restart: true, upgrade: true }],
    [
      'isolation mode',
      {},
      { isolation: { mode: 'worker', memoryLimitMb: 256, watchdogMs: 5000 } },
      { changed: true, restart: true, isolation: true },
    ],
    [
      'isolation written out as the default',
      {},
      { isolation: { mode: 'shared', memoryLimitMb: 256, watchdogMs: 5000 } },
      {},
    ],
    ['application', {}, { application: 'crm' }, { changed: true, restart: true, application: true }],
    ['jwt', {}, { jwt: { secret: 'shared' } }, { changed: true, restart: true, jwt: true }],
    ['database name', {}, { database: { name: 'crm2' } }, { changed: true, restart: true, database: true }],
    ['database adopt', {}, { database: { adopt: true } }, { changed: true, restart: true, database: true }],
    [
      'database mode',
      {},
      { database: { mode: 'new-schema', schema: 'crm' } },
      { changed: true, restart: true, database: true },
    ],
    [
      'database connection',
      { database: { mode: 'new-connection', connection: { url: 'mysql://a@h' } } },
      { database: { mode: 'new-connection', connection: { url: 'mysql://b@h' } } },
      { changed: true, restart: true, database: true },
    ],
    ['disable', {}, { enabled: false }, { changed: true, enabled: 'disable' }],
    ['enable', { enabled: false }, {}, { changed: true, enabled: 'enable' }],
    ['to with-main', {}, { startMode: 'with-main' }, { changed: true, startMode: 'with-main' }],
    ['to on-first-visit', { startMode: 'with-main' }, {}, { changed: true, startMode: 'on-first-visit' }],
    [
      'deletionPolicy only',
      {},
      { deletionPolicy: 'drop' },
      { changed: true, recordOnly: true, deletion: true },
    ],
    [
      'dropAfter only',
      { deletionPolicy: 'drop' },
      { deletionPolicy: 'drop', dropAfter: '1h' },
      { changed: true, recordOnly: true, deletion: true },
    ],
    [
      'deletionPolicy with domains',
      {},
      { deletionPolicy: 'drop', domains: ['x.test'] },
      { changed: true, routes: true, domains: true, deletion: true },
    ],
  ])('%s', (_label, before, after, want) => {
    expect(classifyChange(manifest('crm', before), manifest('crm', after))).toEqual({ ...none, ...want });
  });
});

describe('rule 1: a new app', () => {
  runCases([
    {
      label: 'absent database: create it, its secret and its record',
      ...fresh({}),
      want: [
        ['create-database', 'database crm on postgres 127.0.0.1:5432'],
        ['generate-secret', 'jwt.secret: own'],
        ['create-record', 'from crm.yaml'],
      ],
    },
    {
      label: 'an unobserved target counts as absent',
      d: desired([loaded(CRM)]),
      a: actual(),
      want: [['create-database'], ['generate-secret'], ['create-record']],
    },
    {
      label: 'with-main: started after the record',
      ...fresh({ startMode: 'with-main' }),
      want: [['create-database'], ['generate-secret'], ['create-record'], ['start', 'startMode: with-main']],
    },
    {
      label: 'enabled: false provisions but does not start',
      ...fresh({ startMode: 'with-main', enabled: false }),
      want: [['create-database'], ['generate-secret'], ['create-record']],
    },
    {
      label: 'jwt shared: no secret of its own',
      ...fresh({ jwt: { secret: 'shared' } }),
      want: [['create-database'], ['create-record']],
    },
    {
      label: 'own secret already stored (interrupted run): not generated again',
      ...fresh({}, { hasSecret: true }),
      want: [['create-database'], ['create-record']],
    },
    {
      label: 'found with our marker for this app: no create, the record says so',
      ...fresh({}, { observed: ours }),
      want: [['generate-secret'], ['create-record', "found with appvisor's marker for this app"]],
    },
    {
      label: 'foreign database with adopt: true: adopted',
      ...fresh({ database: { adopt: true } }, { observed: { exists: true } }),
      want: [
        ['adopt-database', 'adopt existing database crm on postgres'],
        ['generate-secret'],
        ['create-record'],
      ],
    },
    {
      label: 'foreign database without adopt: refused, nothing else',
      ...fresh({ startMode: 'with-main' }, { observed: { exists: true } }),
      want: [
        [
          'refuse',
          'database crm on postgres 127.0.0.1:5432 already exists and appvisor did not create it; set database.adopt: true to use it',
        ],
      ],
    },
    {
      label: "another appvisor store's marker is foreign",
      ...fresh({}, { observed: { exists: true, owner: ownerMarker('other-store', 'crm') } }),
      want: [['refuse', 'appvisor did not create it']],
    },
    {
      label: 'our marker for another app: refused, naming that app',
      ...fresh({}, { observed: { exists: true, owner: ownerMarker(STORE, 'billing') } }),
      want: [['refuse', 'database crm on postgres 127.0.0.1:5432 already exists and belongs to app billing']],
    },
    {
      label: 'our marker for another app with adopt: true: adopted',
      ...fresh(
        { database: { adopt: true } },
        { observed: { exists: true, owner: ownerMarker(STORE, 'billing') } },
      ),
      want: [['adopt-database'], ['generate-secret'], ['create-record']],
    },
    {
      label: 'no state store yet: nothing on a server can be ours',
      d: desired([loaded(CRM)]),
      a: actual({ crm: { hasSecret: false, observed: ours } }, { storeId: undefined }),
      want: [['refuse', 'appvisor did not create it']],
    },
    {
      label: 'new-schema: create-schema in the main database',
      ...fresh({ database: { mode: 'new-schema', schema: 'crm' } }),
      want: [
        ['create-schema', 'schema crm in database appvisor on postgres 127.0.0.1:5432'],
        ['generate-secret'],
        ['create-record'],
      ],
    },
    {
      label: 'new-schema existing, adopt: true: adopt says schema',
      ...fresh(
        { database: { mode: 'new-schema', schema: 'crm', adopt: true } },
        { observed: { exists: true } },
      ),
      want: [
        ['adopt-database', 'adopt existing schema crm in database appvisor'],
        ['generate-secret'],
        ['create-record'],
      ],
    },
    {
      label: 'new-schema existing, no adopt: refused as a schema',
      ...fresh({ database: { mode: 'new-schema', schema: 'crm' } }, { observed: { exists: true } }),
      want: [['refuse', 'schema crm in database appvisor on postgres 127.0.0.1:5432 already exists']],
    },
    {
      label: 'new-schema on a sqlite main database: refused',
      ...fresh({ database: { mode: 'new-schema', schema: 'crm' } }),
      opts: { main: MAIN_SQLITE },
      want: [['refuse', 'new-schema needs a PostgreSQL main database; the main database is sqlite']],
    },
    {
      label: 'new-connection: created on that server, named without its password',
      ...fresh({
        database: { mode: 'new-connection', connection: { url: 'mysql://root:pw@10.0.0.9:3306/' } },
      }),
      want: [
        ['create-database', 'database crm on mysql mysql://root:***@10.0.0.9:3306/'],
        ['generate-secret'],
        ['create-record'],
      ],
    },
    {
      label: 'new-connection with an unsupported scheme: refused',
      ...fresh({ database: { mode: 'new-connection', connection: { url: 'mssql://sa@h' } } }),
      want: [['refuse', 'must start with postgres://']],
    },
    {
      label: 'upgrade: true and a code version: migrate a new database',
      ...fresh({}),
      opts: { ...OPTS, codeVersion: 3 },
      want: [
        ['create-database'],
        ['generate-secret'],
        ['create-record'],
        ['upgrade', 'migrate to version 3'],
      ],
    },
    {
      // Migrations run only in the upgrade step (a boot only checks): a new database is
      // installed whatever `upgrade` says, which holds back only the upgrade of existing data.
      label: 'upgrade: false: the install on a new database, no upgrade',
      ...fresh({ upgrade: false }),
      opts: { ...OPTS, codeVersion: 3 },
      want: [
        ['create-database'],
        ['generate-secret'],
        ['create-record'],
        ['upgrade', 'migrate to version 3 (install on a new database'],
      ],
    },
    {
      label: 'adopted data already at the code version: no migration',
      ...fresh({ database: { adopt: true } }, { observed: { exists: true }, dataVersion: 3 }),
      opts: { ...OPTS, codeVersion: 3 },
      want: [['adopt-database'], ['generate-secret'], ['create-record']],
    },
    {
      label: 'adopted data behind the code: migrated',
      ...fresh({ database: { adopt: true } }, { observed: { exists: true }, dataVersion: 1 }),
      opts: { ...OPTS, codeVersion: 3 },
      want: [
        ['adopt-database'],
        ['generate-secret'],
        ['create-record'],
        ['upgrade', 'migrate to version 3 (data at version 1)'],
      ],
    },
    {
      label: 'live, with-main, nothing running: started',
      ...fresh({ startMode: 'with-main' }, {}, true),
      want: [['create-database'], ['generate-secret'], ['create-record'], ['start']],
    },
    {
      label: 'live, with-main, already starting: not started twice',
      ...fresh({ startMode: 'with-main' }, { runtime: { status: 'starting' } }, true),
      want: [['create-database'], ['generate-secret'], ['create-record']],
    },
  ]);

  it('puts codes on refusals and targets on database steps', () => {
    const refused = planApp(
      'crm',
      desired([loaded(CRM)]),
      actual({ crm: { hasSecret: false, observed: { exists: true } } }),
      OPTS,
    );
    expect(refused).toEqual([
      {
        app: 'crm',
        action: 'refuse',
        code: 'ADOPT_REFUSED',
        detail:
          'database crm on postgres 127.0.0.1:5432 already exists and appvisor did not create it; set database.adopt: true to use it',
      },
    ]);
    const unsupported = planApp(
      'crm',
      desired([loaded(manifest('crm', { database: { mode: 'new-schema', schema: 'crm' } }))]),
      actual(),
      { main: MAIN_SQLITE },
    );
    expect(unsupported[0]?.code).toBe('UNSUPPORTED_MODE');

    const [create, , rec] = planApp('crm', desired([loaded(CRM)]), actual(), OPTS);
    const target = {
      dialect: 'postgres',
      server: PG_SERVER,
      serverRef: 'main',
      kind: 'database',
      database: 'crm',
    };
    expect(create?.target).toEqual(target);
    expect(rec?.target).toEqual(target);
  });
});

describe('rule 2: a current record and its manifest (CLI: spec vs record)', () => {
  runCases([
    { label: 'unchanged: nothing', ...changed({}, {}), want: [] },
    {
      label: 'unchanged with-main: nothing (CLI cannot see the runtime)',
      ...changed({ startMode: 'with-main' }, { startMode: 'with-main' }),
      want: [],
    },
    {
      label: 'domains: routes only',
      ...changed({}, { domains: ['crm.test'] }),
      want: [['update-routes', 'domains changed']],
    },
    {
      label: 'displayName: routes only',
      ...changed({}, { displayName: 'CRM' }),
      want: [['update-routes', 'displayName changed']],
    },
    {
      label: 'domains reordered: nothing',
      ...changed({ domains: ['a.test', 'b.test'] }, { domains: ['b.test', 'a.test'] }),
      want: [],
    },
    {
      label: 'config: restart',
      ...changed({ config: { a: 1 } }, { config: { a: 2 } }),
      want: [['restart', 'config changed']],
    },
    {
      label: 'upgrade flag: restart',
      ...changed({}, { upgrade: false }),
      want: [['restart', 'upgrade changed']],
    },
    {
      label: 'config and domains: restart and routes',
      ...changed({}, { config: { a: 1 }, domains: ['x.test'] }),
      want: [
        ['restart', 'config changed'],
        ['update-routes', 'domains changed'],
      ],
    },
    {
      label: 'jwt shared -> own without a secret: generate, restart',
      ...changed({ jwt: { secret: 'shared' } }, {}, { hasSecret: false }),
      want: [['generate-secret'], ['restart', 'jwt.secret changed']],
    },
    {
      label: 'jwt shared -> own with a kept secret: restart only',
      ...changed({ jwt: { secret: 'shared' } }, {}, { hasSecret: true }),
      want: [['restart', 'jwt.secret changed']],
    },
    {
      label: 'jwt own -> shared: restart',
      ...changed({}, { jwt: { secret: 'shared' } }),
      want: [['restart', 'jwt.secret changed']],
    },
    {
      label: 'enabled true -> false: stop',
      ...changed({}, { enabled: false }),
      want: [['stop', 'enabled: false']],
    },
    {
      label: 'enabled true -> false with a config change: stop only',
      ...changed({}, { enabled: false, config: { a: 1 } }),
      want: [['stop']],
    },
    {
      label: 'enabled false -> true, with-main: start',
      ...changed({ enabled: false, startMode: 'with-main' }, { startMode: 'with-main' }),
      want: [['start', 'enabled: true']],
    },
    {
      label: 'enabled false -> true, on-first-visit: routes',
      ...changed({ enabled: false }, {}),
      want: [['update-routes', 'enabled: true; starts on first visit']],
    },
    {
      label: 'enabled false -> true with new domains: one routes step',
      ...changed({ enabled: false }, { domains: ['x.test'] }),
      want: [['update-routes', 'domains changed']],
    },
    {
      label: 'to with-main: start',
      ...changed({}, { startMode: 'with-main' }),
      want: [['start', 'startMode: with-main']],
    },
    {
      label: 'to with-main while disabled: nothing',
      ...changed({ enabled: false }, { enabled: false, startMode: 'with-main' }),
      want: [],
    },
    { label: 'to on-first-visit: nothing', ...changed({ startMode: 'with-main' }, {}), want: [] },
    {
      label: 'deletionPolicy only: the record is updated, a step of its own (the plan is the whole diff)',
      ...changed({}, { deletionPolicy: 'drop' }),
      want: [['update-record', 'deletionPolicy: retain → drop']],
    },
    {
      label: 'dropAfter only: update-record',
      ...changed({ deletionPolicy: 'drop' }, { deletionPolicy: 'drop', dropAfter: '0s' }),
      want: [['update-record', 'dropAfter: (default) → 0s']],
    },
    {
      label: 'config change while disabled: no restart',
      ...changed({ enabled: false }, { enabled: false, config: { a: 1 } }),
      want: [],
    },
    {
      label: 'domains change while disabled: routes (the 503 moves with them)',
      ...changed({ enabled: false }, { enabled: false, domains: ['x.test'] }),
      want: [['update-routes']],
    },
    {
      label: 'database renamed, new one absent: create it and restart',
      ...changed({}, { database: { name: 'crm2' } }, { observed: { exists: false } }),
      want: [
        ['create-database', 'database crm2 on postgres'],
        ['restart', 'database changed'],
      ],
    },
    {
      label: 'database renamed onto a foreign database: refused, nothing else',
      ...changed({}, { database: { name: 'crm2' }, config: { a: 1 } }, { observed: { exists: true } }),
      want: [['refuse', 'database crm2 on postgres 127.0.0.1:5432 already exists']],
    },
    {
      label: 'database renamed onto a foreign database with adopt: adopt and restart',
      ...changed({}, { database: { name: 'crm2', adopt: true } }, { observed: { exists: true } }),
      want: [
        ['adopt-database', 'crm2'],
        ['restart', 'database changed'],
      ],
    },
    {
      label: 'switch to new-schema: create-schema and restart',
      ...changed({}, { database: { mode: 'new-schema', schema: 'crm' } }, { observed: { exists: false } }),
      want: [['create-schema', 'schema crm in database appvisor'], ['restart']],
    },
    {
      label: 'adopt flag only (same target): restart, no provisioning',
      ...changed({}, { database: { adopt: true } }),
      want: [['restart', 'database changed']],
    },
    {
      label: 'drift: database gone (observed)',
      ...changed({}, {}, { observed: { exists: false } }),
      want: [
        ['create-database', 'database crm on postgres 127.0.0.1:5432 was missing: dropped outside appvisor?'],
      ],
    },
    {
      label: 'drift: database gone (observedRecorded)',
      ...changed({}, {}, { observed: undefined, observedRecorded: { exists: false } }),
      want: [['create-database', 'was missing']],
    },
    {
      label: 'not observed: no drift assumed',
      ...changed({}, {}, { observed: undefined }),
      want: [],
    },
    {
      label: 'inventory says creating: resume the creation',
      d: desired([loaded(CRM)]),
      a: actual({
        crm: current(CRM, { record: record(CRM, { inventory: [item('crm', { state: 'creating' })] }) }),
      }),
      want: [['create-database', 'resume an interrupted creation']],
    },
    {
      label: 'creating, and it exists with our marker: resume (the create is idempotent)',
      d: desired([loaded(CRM)]),
      a: actual({
        crm: current(CRM, { record: record(CRM, { inventory: [item('crm', { state: 'creating' })] }) }),
      }),
      want: [['create-database', 'resume an interrupted creation']],
    },
    {
      label: "creating, but it exists with another store's marker: refused, never silently adopted",
      d: desired([loaded(CRM)]),
      a: actual({
        crm: current(CRM, {
          record: record(CRM, { inventory: [item('crm', { state: 'creating' })] }),
          observed: { exists: true, owner: ownerMarker('other-store', 'crm') },
        }),
      }),
      want: [['refuse', 'appvisor did not create it']],
    },
    {
      label: 'adopted database gone: created again',
      d: desired([loaded(CRM)]),
      a: actual({
        crm: current(CRM, {
          record: record(CRM, { inventory: [item('crm', { state: 'adopted' })] }),
          observed: { exists: false },
        }),
      }),
      want: [['create-database', 'was missing']],
    },
    {
      label: 'own secret missing: generated',
      ...changed({}, {}, { hasSecret: false }),
      want: [['generate-secret']],
    },
    {
      label: 'data behind the code: upgrade',
      ...changed({}, {}, { dataVersion: 2 }),
      opts: { ...OPTS, codeVersion: 3 },
      want: [['upgrade', 'migrate to version 3 (data at version 2)']],
    },
    {
      label: 'data behind the code while a live replica runs the older application: held back, naming it',
      ...changed({}, {}, { dataVersion: 2 }),
      opts: { ...OPTS, codeVersion: 3, upgradeHeldBy: { replica: 'web-2-41-ab12', version: 2 } },
      want: [['refuse', 'held back: replica web-2-41-ab12 runs version 2']],
    },
    {
      label: 'data at the code version: nothing',
      ...changed({}, {}, { dataVersion: 3 }),
      opts: { ...OPTS, codeVersion: 3 },
      want: [],
    },
    {
      label: 'data behind, upgrade: false: nothing (the runtime reports needs-upgrade)',
      ...changed({ upgrade: false }, { upgrade: false }, { dataVersion: 2 }),
      opts: { ...OPTS, codeVersion: 3 },
      want: [],
    },
    {
      label: 'schema app after the main database moved to sqlite: refused',
      ...changed(
        { database: { mode: 'new-schema', schema: 'crm' } },
        { database: { mode: 'new-schema', schema: 'crm' } },
      ),
      opts: { main: MAIN_SQLITE },
      want: [['refuse', 'new-schema needs a PostgreSQL main database']],
    },
    {
      label: 'manifest moved to another file: nothing',
      d: desired([loaded(CRM, 'renamed.yaml')]),
      a: actual({ crm: current(CRM) }),
      want: [],
    },
  ]);
});

describe('rule 2 in live mode (serve): the runtime decides', () => {
  const running = (specHash?: string) => ({ status: 'running', ...(specHash ? { specHash } : {}) }) as const;
  const cfg1 = manifest('crm', { config: { a: 1 } });
  runCases([
    {
      label: 'running the manifest already: nothing, even if the record is behind',
      d: desired([loaded(cfg1)]),
      a: actual({ crm: current(CRM, { runtime: running(hashOf(cfg1)) }) }, { live: true }),
      want: [],
    },
    {
      label: 'running the record, config changed: restart',
      ...changed({}, { config: { a: 1 } }, { runtime: running(hashOf(CRM)) }, true),
      want: [['restart', 'config changed']],
    },
    {
      label: 'starting counts as up: restart',
      ...changed({}, { config: { a: 1 } }, { runtime: { status: 'starting', specHash: hashOf(CRM) } }, true),
      want: [['restart']],
    },
    {
      label: 'running, unknown spec hash: compared as the record',
      ...changed({}, { domains: ['x.test'] }, { runtime: running() }, true),
      want: [['update-routes', 'domains changed']],
    },
    {
      label: 'running, domains changed: routes only',
      ...changed({}, { domains: ['x.test'] }, { runtime: running(hashOf(CRM)) }, true),
      want: [['update-routes']],
    },
    {
      label: 'running an older spec than the record (apply ran meanwhile): restart',
      d: desired([loaded(cfg1)]),
      a: actual({ crm: current(cfg1, { runtime: running('old-hash') }) }, { live: true }),
      want: [['restart', 'the running instance has an older spec']],
    },
    {
      label: 'running, deletionPolicy only: update-record, no restart',
      ...changed({}, { deletionPolicy: 'drop' }, { runtime: running(hashOf(CRM)) }, true),
      want: [['update-record', 'deletionPolicy: retain → drop']],
    },
    {
      label: 'running, disabled: stop',
      ...changed({}, { enabled: false }, { runtime: running(hashOf(CRM)) }, true),
      want: [['stop', 'enabled: false']],
    },
    {
      label: 'disabled and already stopped: nothing',
      ...changed({}, { enabled: false }, { runtime: { status: 'stopped' } }, true),
      want: [],
    },
    {
      label: 'stopped, config changed: no restart',
      ...changed({}, { config: { a: 1 } }, { runtime: { status: 'stopped' } }, true),
      want: [],
    },
    {
      label: 'stopped, domains changed: routes',
      ...changed({}, { domains: ['x.test'] }, { runtime: { status: 'stopped' } }, true),
      want: [['update-routes']],
    },
    {
      label: 'needs-upgrade, the data migrated since (apply, another process): start',
      ...changed({}, {}, { runtime: { status: 'needs-upgrade' }, dataVersion: 3 }, true),
      opts: { ...OPTS, codeVersion: 3 },
      want: [['start', 'its data is at version 3 now']],
    },
    {
      label: 'needs-upgrade, the data still behind (upgrade: false): nothing',
      ...changed(
        { upgrade: false },
        { upgrade: false },
        { runtime: { status: 'needs-upgrade' }, dataVersion: 2 },
        true,
      ),
      opts: { ...OPTS, codeVersion: 3 },
      want: [],
    },
    {
      label: 'with-main, stopped: start',
      ...changed(
        { startMode: 'with-main' },
        { startMode: 'with-main' },
        { runtime: { status: 'stopped' } },
        true,
      ),
      want: [['start', 'startMode: with-main']],
    },
    {
      label: 'with-main, no runtime entry yet: start',
      ...changed({ startMode: 'with-main' }, { startMode: 'with-main' }, {}, true),
      want: [['start']],
    },
    {
      label: 'with-main, in error: start again',
      ...changed(
        { startMode: 'with-main' },
        { startMode: 'with-main' },
        { runtime: { status: 'error' } },
        true,
      ),
      want: [['start']],
    },
    {
      label: 'on-first-visit, its last start failed: start again',
      ...changed({}, {}, { runtime: { status: 'error' } }, true),
      want: [['start', 'its last start failed; retry']],
    },
    {
      label: 'an isolated instance crashed: restart, saying how it ended',
      ...changed({}, {}, { runtime: { status: 'error', crashed: 'APP_UNRESPONSIVE' } }, true),
      want: [['start', 'it crashed (APP_UNRESPONSIVE); restart']],
    },
    {
      label: 'with-main, upgrading: nothing',
      ...changed(
        { startMode: 'with-main' },
        { startMode: 'with-main' },
        { runtime: { status: 'upgrading' } },
        true,
      ),
      want: [],
    },
    {
      label: 'with-main, stopped by an operator: stays stopped, whatever the manifest says',
      ...changed(
        { startMode: 'with-main' },
        { startMode: 'with-main', config: { a: 1 } },
        {
          runtime: { status: 'stopped' },
          record: record(manifest('crm', { startMode: 'with-main' }), { intent: STOP }),
        },
        true,
      ),
      want: [],
    },
    {
      label: 'operator stop, then the manifest switches to with-main: still stopped (only a start ends it)',
      ...changed(
        {},
        { startMode: 'with-main' },
        { runtime: { status: 'stopped' }, record: record(manifest('crm'), { intent: STOP }) },
        true,
      ),
      want: [],
    },
    {
      label: 'operator stop of a running app: stop, naming who',
      ...changed(
        {},
        {},
        { runtime: { status: 'running' }, record: record(manifest('crm'), { intent: STOP }) },
        true,
      ),
      want: [['stop', 'stopped by admin token via admin-ui at 2026-01-02T03:04:05.000Z']],
    },
    {
      label: 'operator start of an on-first-visit app: start now',
      ...changed(
        {},
        {},
        { runtime: { status: 'stopped' }, record: record(manifest('crm'), { intent: START }) },
        true,
      ),
      want: [['start', 'started by alice at 2026-01-02T03:05:00.000Z']],
    },
    {
      label: 'operator start of a disabled app: nothing',
      ...changed(
        { enabled: false },
        { enabled: false },
        {
          runtime: { status: 'disabled' },
          record: record(manifest('crm', { enabled: false }), { intent: START }),
        },
        true,
      ),
      want: [],
    },
    {
      label: 'with-main disabled, stopped: nothing',
      ...changed(
        { startMode: 'with-main' },
        { startMode: 'with-main', enabled: false },
        { runtime: { status: 'stopped' } },
        true,
      ),
      want: [],
    },
    {
      label: 'on-first-visit enabled again: routes',
      ...changed({ enabled: false }, {}, { runtime: { status: 'disabled' } }, true),
      want: [['update-routes', 'enabled: true; starts on first visit']],
    },
    {
      label: 'on-first-visit, stopped, unchanged: nothing',
      ...changed({}, {}, { runtime: { status: 'stopped' } }, true),
      want: [],
    },
    {
      label: 'database renamed while running: create and restart',
      ...changed(
        {},
        { database: { name: 'crm2' } },
        { observed: { exists: false }, runtime: running(hashOf(CRM)) },
        true,
      ),
      want: [
        ['create-database', 'crm2'],
        ['restart', 'database changed'],
      ],
    },
  ]);
});

describe('rule 3: an orphaned record whose manifest is back', () => {
  const orphan = (spec: AppManifest, app: Partial<ActualApp> = {}): ActualApp =>
    current(spec, { record: record(spec, { status: 'orphaned' }), ...app });
  runCases([
    {
      label: 'same target, data present: restore the record only',
      d: desired([loaded(CRM)]),
      a: actual({ crm: orphan(CRM) }),
      want: [['create-record', 'restore orphaned record; data and secret kept']],
    },
    {
      label: 'with-main: restore and start',
      d: desired([loaded(manifest('crm', { startMode: 'with-main' }))]),
      a: actual({ crm: orphan(CRM) }),
      want: [
        ['create-record', 'restore orphaned record'],
        ['start', 'startMode: with-main'],
      ],
    },
    {
      label: 'with-main but disabled: restore only',
      d: desired([loaded(manifest('crm', { startMode: 'with-main', enabled: false }))]),
      a: actual({ crm: orphan(CRM) }),
      want: [['create-record']],
    },
    {
      label: 'target changed: provision it and restore',
      d: desired([loaded(manifest('crm', { database: { name: 'crm2' } }))]),
      a: actual({ crm: orphan(CRM, { observed: { exists: false } }) }),
      want: [
        ['create-database', 'database crm2'],
        ['create-record', 'restore orphaned record'],
      ],
    },
    {
      label: 'target changed onto a foreign database: refused',
      d: desired([loaded(manifest('crm', { database: { name: 'crm2' } }))]),
      a: actual({ crm: orphan(CRM, { observed: { exists: true } }) }),
      want: [['refuse', 'already exists']],
    },
    {
      label: 'data dropped meanwhile: created again, then restored',
      d: desired([loaded(CRM)]),
      a: actual({ crm: orphan(CRM, { observed: { exists: false } }) }),
      want: [['create-database', 'was missing'], ['create-record']],
    },
    {
      label: 'now wants its own secret: generated',
      d: desired([loaded(CRM)]),
      a: actual({ crm: orphan(manifest('crm', { jwt: { secret: 'shared' } }), { hasSecret: false }) }),
      want: [['generate-secret'], ['create-record']],
    },
    {
      label: 'data behind the code: migrated after the restore',
      d: desired([loaded(CRM)]),
      a: actual({ crm: orphan(CRM, { dataVersion: 1 }) }),
      opts: { ...OPTS, codeVersion: 2 },
      want: [['create-record'], ['upgrade', 'migrate to version 2']],
    },
  ]);
});

describe('rule 4: the manifest is gone', () => {
  const drop = manifest('crm', { deletionPolicy: 'drop' });
  const other = loaded(manifest('other'));
  const gone = (
    spec: AppManifest,
    app: Partial<ActualApp> = {},
    live = false,
    recordPatch = {},
  ): Pick<Case, 'd' | 'a'> => ({
    d: desired([other]),
    a: actual(
      { crm: current(spec, { record: record(spec, recordPatch), ...app }), other: current(other.manifest) },
      { live },
    ),
  });
  runCases([
    {
      label: 'retain: orphan, data and secret kept',
      ...gone(CRM),
      want: [['orphan', 'data and secret kept']],
    },
    {
      label: 'live and running: stop, then orphan',
      ...gone(CRM, { runtime: { status: 'running' } }, true),
      want: [['stop', 'manifest removed'], ['orphan']],
    },
    {
      label: 'live and stopped: orphan only',
      ...gone(CRM, { runtime: { status: 'stopped' } }, true),
      want: [['orphan']],
    },
    {
      label: 'CLI (not live): no stop',
      ...gone(CRM, { runtime: { status: 'running' } }, false),
      want: [['orphan']],
    },
    {
      label: 'drop: orphan and drop the database it created',
      ...gone(drop),
      want: [
        ['orphan', 'deletionPolicy: drop'],
        ['drop-database', 'database crm on postgres 127.0.0.1:5432'],
      ],
    },
    {
      label: 'drop: a creation that was interrupted is dropped too',
      ...gone(drop, {}, false, { inventory: [item('crm', { state: 'creating' })] }),
      want: [['orphan'], ['drop-database']],
    },
    {
      label: 'drop: a schema it created',
      ...gone(drop, {}, false, { inventory: [item('crm', { kind: 'schema', database: 'appvisor' })] }),
      want: [['orphan'], ['drop-schema', 'schema crm in database appvisor on postgres']],
    },
    {
      label: 'drop: an adopted database is refused, the created one dropped',
      ...gone(drop, {}, false, {
        inventory: [item('crm', { state: 'adopted', name: 'legacy' }), item('crm')],
      }),
      want: [
        [
          'refuse',
          'not dropping database legacy on postgres 127.0.0.1:5432: adopted; appvisor did not create it',
        ],
        ['orphan'],
        ['drop-database', 'database crm on'],
      ],
    },
    {
      label: 'drop: an object on a server no longer known is refused',
      ...gone(drop, {}, false, { inventory: [item('crm', { server: '10.9.9.9:5432' })] }),
      want: [['refuse', 'drop it by hand'], ['orphan']],
    },
    {
      label: 'drop with an empty inventory: orphan only (never drops what it did not record)',
      ...gone(drop, {}, false, { inventory: [] }),
      want: [['orphan']],
    },
    {
      label: 'an invalid file still names the app: nothing',
      d: desired([other], [invalidFile('crm-renamed.yaml', 'crm')]),
      a: actual(
        { crm: current(CRM, { runtime: { status: 'running' } }), other: current(other.manifest) },
        { live: true },
      ),
      want: [],
    },
    {
      label: 'its file is invalid and names nothing: nothing',
      d: desired([other], [invalidFile('crm.yaml')]),
      a: actual({ crm: current(drop), other: current(other.manifest) }),
      want: [],
    },
    {
      label: 'another invalid file does not protect it',
      d: desired([other], [invalidFile('zzz.yaml', 'zzz')]),
      a: actual({ crm: current(CRM), other: current(other.manifest) }),
      want: [['orphan']],
    },
  ]);

  it('drop on a new-connection server targets that server by its recorded URL', () => {
    const spec = manifest('crm', {
      deletionPolicy: 'drop',
      database: { mode: 'new-connection', connection: { url: URL_PW } },
    });
    const server = 'postgres://crm:***@db.example.com:5433/postgres';
    const steps = planApp(
      'crm',
      desired([]),
      actual({ crm: current(spec, { record: record(spec, { inventory: [item('crm', { server })] }) }) }),
      { ...OPTS, allowEmpty: true },
    );
    expectSteps(steps, [['orphan'], ['drop-database', `database crm on postgres ${server}`]]);
    expect(steps[1]?.target?.serverRef).toHaveProperty('url', URL_PW);
  });
});

describe('empty-set guard', () => {
  const recs = {
    a: current(manifest('a')),
    b: current(manifest('b', { deletionPolicy: 'drop' })),
    old: current(manifest('old'), { record: record(manifest('old'), { status: 'orphaned' }) }),
  };

  it('holds back every removal when no valid manifest is left', () => {
    const p = plan(desired([]), actual(recs), OPTS);
    const message =
      'no valid manifest is left but 2 app(s) are known; nothing is removed (pass --allow-empty to remove them all)';
    // A refusal per app it holds back (plan exits 2), and the guard field kept (SPEC §5).
    expect(p.changes).toEqual([
      { app: 'a', action: 'refuse', code: 'EMPTY_SET_GUARD', detail: message },
      { app: 'b', action: 'refuse', code: 'EMPTY_SET_GUARD', detail: message },
    ]);
    expect(p.guard).toBe(message);
    expect(planApp('a', desired([]), actual(recs), OPTS)).toEqual([p.changes[0]]);
  });

  it('--allow-empty removes them', () => {
    const p = plan(desired([]), actual(recs), { ...OPTS, allowEmpty: true });
    expect(p.guard).toBeUndefined();
    expect(p.changes.map((s) => `${s.app} ${s.action}`)).toEqual(['a orphan', 'b orphan', 'b drop-database']);
  });

  it('does not apply while one manifest is still valid', () => {
    const p = plan(desired([loaded(manifest('a'))]), actual(recs), OPTS);
    expect(p.guard).toBeUndefined();
    expect(p.changes.map((s) => `${s.app} ${s.action}`)).toEqual(['b orphan', 'b drop-database']);
  });

  it('counts only apps it would remove: invalid files and orphans do not trip it', () => {
    const d = desired([], [invalidFile('a.yaml', 'a'), invalidFile('b.yaml')]);
    const p = plan(d, actual(recs), OPTS);
    expect(p.guard).toBeUndefined();
    expect(p.changes).toEqual([]);
    expect(p.errors).toEqual(d.errors);

    const one = plan(desired([], [invalidFile('a.yaml', 'a')]), actual(recs), OPTS);
    expect(one.guard).toContain('but 1 app(s) are known');
    expect(one.changes.map((c) => `${c.app} ${c.action} ${c.code}`)).toEqual(['b refuse EMPTY_SET_GUARD']);
  });

  it('an empty folder with no records is not guarded', () => {
    expect(plan(desired([]), actual(), OPTS)).toEqual({ changes: [], errors: [] });
  });
});

describe('rule 5: orphaned and still gone', () => {
  it.each([false, true])('nothing (live: %s), even with deletionPolicy: drop', (live) => {
    const spec = manifest('crm', { deletionPolicy: 'drop' });
    const a = actual({ crm: current(spec, { record: record(spec, { status: 'orphaned' }) }) }, { live });
    expect(planApp('crm', desired([loaded(manifest('x'))]), a, OPTS)).toEqual([]);
  });

  it('an app nobody knows: nothing', () => {
    expect(planApp('ghost', desired([]), actual(), OPTS)).toEqual([]);
  });
});

describe('rule 6: no secrets in steps', () => {
  it('a connection URL with a password never shows, whatever the step', () => {
    const conn = (name: string, patch: ManifestPatch = {}) =>
      manifest(name, { ...patch, database: { mode: 'new-connection', connection: { url: URL_PW }, name } });
    const server = 'postgres://crm:***@db.example.com:5433/postgres';
    const changedSpec = manifest('moved', { database: { mode: 'new-database', name: 'moved' } });
    const goneSpec = conn('gone', { deletionPolicy: 'drop' });
    const d = desired([
      loaded(conn('fresh')),
      loaded(conn('foreign')),
      loaded(conn('moved', { config: { token: 'not-in-steps' } })),
    ]);
    const a = actual(
      {
        foreign: { hasSecret: false, observed: { exists: true } },
        moved: current(changedSpec, { observed: { exists: false } }),
        gone: current(goneSpec, { record: record(goneSpec, { inventory: [item('gone', { server })] }) }),
      },
      { hasMainSecret: false },
    );
    const p = plan(d, a, OPTS);
    expect(p.changes.map((s) => `${s.app} ${s.action}`)).toEqual([
      'main generate-secret',
      'foreign refuse',
      'fresh create-database',
      'fresh generate-secret',
      'fresh create-record',
      'gone orphan',
      'gone drop-database',
      'moved create-database',
      'moved restart',
    ]);
    for (const text of [JSON.stringify(p), inspect(p, { depth: null })]) {
      expect(text).not.toContain('hunter2');
      expect(text).not.toContain('not-in-steps');
      expect(text).toContain('db.example.com');
    }
    // The executor still gets the real URL.
    const fresh = p.changes.find((s) => s.app === 'fresh' && s.action === 'create-database');
    expect(fresh?.target?.serverRef).toHaveProperty('url', URL_PW);
  });
});

describe('plan', () => {
  const d = desired(
    [
      loaded(manifest('zeta')),
      loaded(manifest('alpha', { startMode: 'with-main' })),
      loaded(manifest('mid')),
    ],
    [invalidFile('broken.yaml')],
  );
  const a = actual({
    mid: current(manifest('mid')),
    gone: current(manifest('gone')),
    beta: { hasSecret: false },
  });

  it('covers manifests and records, sorted by name, main secret first, errors passed on', () => {
    const p = plan(d, a, OPTS);
    expect(p.changes.map((s) => `${s.app} ${s.action}`)).toEqual([
      'alpha create-database',
      'alpha generate-secret',
      'alpha create-record',
      'alpha start',
      'gone orphan',
      'zeta create-database',
      'zeta generate-secret',
      'zeta create-record',
    ]);
    expect(p.errors).toEqual(d.errors);
    expect(p.errors).toHaveLength(1);
    expect(p.guard).toBeUndefined();

    const withMain = plan(d, actual({}, { hasMainSecret: false }), OPTS);
    expect(withMain.changes[0]).toEqual({
      app: 'main',
      action: 'generate-secret',
      detail: expect.stringContaining('main'),
    });
  });

  it('agrees with planApp, app by app', () => {
    const p = plan(d, a, OPTS);
    for (const name of ['alpha', 'beta', 'gone', 'mid', 'zeta']) {
      expect(planApp(name, d, a, OPTS)).toEqual(p.changes.filter((s) => s.app === name));
    }
  });

  it('is deterministic and does not mutate its input', () => {
    const before = JSON.stringify([...d.apps.values(), ...a.apps.values()]);
    expect(plan(d, a, OPTS)).toEqual(plan(d, a, OPTS));
    expect(JSON.stringify([...d.apps.values(), ...a.apps.values()])).toBe(before);
  });

  it('orders every app’s steps by ACTIONS', () => {
    const big = manifest('big', { startMode: 'with-main', config: { a: 1 }, database: { name: 'big2' } });
    const spec = manifest('big', { jwt: { secret: 'shared' } });
    const steps = planApp(
      'big',
      desired([loaded(big)]),
      actual({ big: current(spec, { observed: { exists: false }, hasSecret: false, dataVersion: 0 }) }),
      { ...OPTS, codeVersion: 1 },
    );
    expect(steps.map((s) => s.action)).toEqual([
      'create-database',
      'generate-secret',
      'upgrade',
      'restart',
      'start',
    ]);
    const idx = steps.map((s) => ACTIONS.indexOf(s.action));
    expect(idx).toEqual([...idx].sort((x, y) => x - y));
  });
});

describe('application identity (SPEC §8.6)', () => {
  const WITH_APP: PlanOptions = { ...OPTS, application: 'crm-app', codeVersion: 3 };
  const withApp = (application?: string): Pick<Case, 'd' | 'a'> =>
    changed({}, {}, { record: record(CRM, application ? { application } : {}) });
  runCases([
    {
      label: 'data owned by another application: refused before anything, naming both',
      ...withApp('appvisor-sample'),
      opts: WITH_APP,
      want: [
        [
          'refuse',
          "crm's data belongs to application appvisor-sample, but this appvisor runs application crm-app",
        ],
      ],
    },
    {
      label: 'data owned by this application: nothing to say',
      ...withApp('crm-app'),
      opts: WITH_APP,
      want: [['upgrade']],
    },
    {
      label: 'data with no owner recorded: claimed, and the plan says so',
      ...withApp(undefined),
      opts: WITH_APP,
      want: [['update-record', "claim the app's data for application crm-app"], ['upgrade']],
    },
    {
      label: 'an orphaned record of another application coming back: refused',
      d: desired([loaded(CRM)]),
      a: actual({ crm: current(CRM, { record: record(CRM, { status: 'orphaned', application: 'other' }) }) }),
      opts: WITH_APP,
      want: [['refuse', 'belongs to application other']],
    },
  ]);

  it('the refusal carries APP_WRONG_APPLICATION', () => {
    const { d, a } = withApp('appvisor-sample');
    expect(planApp('crm', d, a, WITH_APP)[0]).toMatchObject({
      action: 'refuse',
      code: 'APP_WRONG_APPLICATION',
    });
  });
});

describe('scheduled drops (SPEC §8.6)', () => {
  const drop = manifest('crm', { deletionPolicy: 'drop' });
  const at = (ms: number) =>
    new Date(Math.ceil((NOW + ms) / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const HOUR = 3_600_000;
  const gone = (spec: AppManifest, patch = {}): Pick<Case, 'd' | 'a'> => ({
    d: desired([loaded(manifest('other'))]),
    a: actual({ crm: current(spec, { record: record(spec, patch) }) }),
  });

  it('a removal orphans at once and schedules the drop after the default grace of 24 h', () => {
    const { d, a } = gone(drop);
    const steps = planApp('crm', d, a, OPTS);
    expectSteps(steps, [
      ['orphan', `data kept until ${at(24 * HOUR)}, then dropped`],
      ['drop-database', `due ${at(24 * HOUR)})`],
    ]);
    expect(steps[0]?.dropAt).toBe(at(24 * HOUR));
    expect(steps[1]?.dueAt).toBe(at(24 * HOUR));
    expect(isScheduled(steps[1]!, NOW)).toBe(true);
  });

  it.each([
    ['the setting', { ...OPTS, deletionGraceMs: HOUR }, drop, HOUR],
    [
      "the manifest's dropAfter over the setting",
      { ...OPTS, deletionGraceMs: HOUR },
      manifest('crm', { deletionPolicy: 'drop', dropAfter: '15m' }),
      15 * 60_000,
    ],
  ])('the grace comes from %s', (_label, opts, spec, ms) => {
    const { d, a } = gone(spec);
    expect(planApp('crm', d, a, opts).at(-1)?.dueAt).toBe(at(ms));
  });

  it('dropAfter: 0s drops in the same run, and says so', () => {
    const { d, a } = gone(manifest('crm', { deletionPolicy: 'drop', dropAfter: '0s' }));
    const steps = planApp('crm', d, a, OPTS);
    expectSteps(steps, [
      ['orphan', 'data dropped now'],
      ['drop-database', ', now)'],
    ]);
    expect(isScheduled(steps[1]!, NOW)).toBe(false);
  });

  it('an orphaned record shows its scheduled drop in every plan until it is due, then drops', () => {
    const { d, a } = gone(drop, { status: 'orphaned', dropAt: at(HOUR) });
    const before = planApp('crm', d, a, OPTS);
    expectSteps(before, [['drop-database', `due ${at(HOUR)})`]]);
    expect(isScheduled(before[0]!, NOW)).toBe(true);
    const after = planApp('crm', d, a, { ...OPTS, now: NOW + 2 * HOUR });
    expectSteps(after, [['drop-database', ', now)']]);
    expect(isScheduled(after[0]!, NOW + 2 * HOUR)).toBe(false);
  });

  it('putting the file back cancels the drop, and the message says the data is kept', () => {
    const a = actual({
      crm: current(drop, { record: record(drop, { status: 'orphaned', dropAt: at(HOUR) }) }),
    });
    expectSteps(planApp('crm', desired([loaded(drop)]), a, OPTS), [
      ['create-record', `data and secret kept; the drop scheduled for ${at(HOUR)} is cancelled`],
    ]);
  });

  it('putting the file back after the drop says the data is gone (never "kept")', () => {
    const rec = record(drop, { status: 'orphaned', inventory: [] });
    const a = actual({ crm: current(drop, { record: rec, observed: { exists: false } }) });
    const steps = planApp('crm', desired([loaded(drop)]), a, OPTS);
    expectSteps(steps, [['create-database'], ['create-record', 'its data was dropped']]);
    expect(steps[1]?.detail).not.toContain('data and');
  });

  it('without a clock nothing is ever due: the removal orphans and keeps the data', () => {
    const { d, a } = gone(drop);
    expectSteps(planApp('crm', d, a, { main: OPTS.main }), [['orphan', 'data and secret kept']]);
  });
});

describe('sweep of leftovers (SPEC §5)', () => {
  it("a leftover with this store's marker for the app is swept before anything else", () => {
    const target = {
      dialect: 'postgres',
      server: PG_SERVER,
      serverRef: 'main',
      kind: 'database',
      database: '_avtmp_0123456789abcdef',
    } as const;
    const a = actual({ crm: current(CRM, { leftovers: [{ name: '_avtmp_0123456789abcdef', target }] }) });
    const steps = planApp('crm', desired([loaded(CRM)]), a, OPTS);
    expectSteps(steps, [
      ['sweep', 'database _avtmp_0123456789abcdef on postgres 127.0.0.1:5432: left half-made'],
    ]);
    expect(steps[0]?.target?.database).toBe('_avtmp_0123456789abcdef');
  });
});

describe("the state store's schema", () => {
  it.each([
    ['named after the app', manifest('appvisor', { database: { mode: 'new-schema' } })],
    [
      'set in the manifest',
      manifest('crm', { database: { mode: 'new-schema', schema: 'appvisor', adopt: true } }),
    ],
  ])('is never an app schema (%s), adopt or not', (_label, m) => {
    const steps = planApp(m.name, desired([loaded(m)]), actual({}), OPTS);
    expect(steps).toMatchObject([{ action: 'refuse', code: 'UNSUPPORTED_MODE' }]);
    expect(steps[0]?.detail).toBe(
      "schema appvisor holds appvisor's state store; set database.schema to another name",
    );
  });
});

describe('idle stop (SPEC §8.2): planned on the activity the runtime saw', () => {
  const MIN = 60_000;
  /** Running, with its last activity `idleMs` before NOW (busy: a request is open). */
  const running = (idleMs: number, busy = false) =>
    ({
      status: 'running',
      activity: { busy, idleSince: NOW - idleMs },
    }) as const;
  const idle15 = { idleStop: '15m' } as const;
  const idleCase = (
    patch: ManifestPatch,
    runtime: ActualApp['runtime'],
    opts: PlanOptions = OPTS,
    intent?: typeof STOP | typeof START,
  ) => {
    const m = manifest('crm', patch);
    return {
      d: desired([loaded(m)]),
      a: actual(
        {
          crm: current(m, {
            ...(runtime ? { runtime } : {}),
            ...(intent ? { record: record(m, { intent }) } : {}),
          }),
        },
        { live: true },
      ),
      opts,
    };
  };
  runCases([
    {
      label: 'idle longer than its idleStop: stop, saying for how long',
      ...idleCase(idle15, running(16 * MIN)),
      want: [['stop', 'idle for 16m (idleStop 15m)']],
    },
    {
      label: 'idle exactly its idleStop: stop',
      ...idleCase(idle15, running(15 * MIN)),
      want: [['stop', 'idle for 15m']],
    },
    {
      label: 'idle, not long enough yet: nothing',
      ...idleCase(idle15, running(14 * MIN)),
      want: [],
    },
    {
      label: 'a request open for longer than idleStop: never while busy',
      ...idleCase(idle15, running(60 * MIN, true)),
      want: [],
    },
    {
      label: 'still starting: nothing',
      ...idleCase(idle15, { status: 'starting', activity: { busy: false, idleSince: NOW - 60 * MIN } }),
      want: [],
    },
    {
      label: 'the setting applies when the manifest says nothing',
      ...idleCase({}, running(16 * MIN), { ...OPTS, idleStopMs: 15 * MIN }),
      want: [['stop', 'idle for 16m (idleStop 15m)']],
    },
    {
      label: 'idleStop: off in the manifest overrides the setting',
      ...idleCase({ idleStop: 'off' }, running(16 * MIN), { ...OPTS, idleStopMs: 15 * MIN }),
      want: [],
    },
    {
      label: 'idleStop: 0 in the manifest overrides the setting',
      ...idleCase({ idleStop: 0 }, running(16 * MIN), { ...OPTS, idleStopMs: 15 * MIN }),
      want: [],
    },
    {
      label: 'no setting, no manifest idleStop: off',
      ...idleCase({}, running(600 * MIN)),
      want: [],
    },
    {
      label: 'without the plan time (the CLI): nothing is due',
      ...idleCase(idle15, running(16 * MIN), { main: OPTS.main }),
      want: [],
    },
    {
      label: 'an operator start does not exempt a running app from idle stop',
      ...idleCase(idle15, running(16 * MIN), OPTS, START),
      want: [['stop', 'idle for 16m']],
    },
    {
      label: 'idle-stopped on-first-visit app: stays stopped (a visit starts it)',
      ...idleCase(idle15, { status: 'stopped', idleStoppedAt: NOW - MIN }),
      want: [],
    },
    {
      label: 'idle-stopped with-main app: not started again by the reconcile',
      ...idleCase({ ...idle15, startMode: 'with-main' }, { status: 'stopped', idleStoppedAt: NOW - MIN }),
      want: [],
    },
    {
      label: 'idle-stopped, with an operator start from before the idle stop: stays stopped',
      ...idleCase(idle15, { status: 'stopped', idleStoppedAt: Date.parse(START.at) + 1 }, OPTS, START),
      want: [],
    },
    {
      label: 'idle-stopped, then an operator start: started (the start clears idle)',
      ...idleCase(idle15, { status: 'stopped', idleStoppedAt: Date.parse(START.at) - 1 }, OPTS, START),
      want: [['start', 'started by alice']],
    },
    {
      label: 'idle and stopped by an operator: the operator stop, not the idle one',
      ...idleCase(idle15, running(16 * MIN), OPTS, STOP),
      want: [['stop', 'stopped by admin token']],
    },
    {
      label: 'idleStop changed: update-record, no restart',
      ...changed({}, { idleStop: '1h' }, { runtime: running(MIN) }, true),
      want: [['update-record', 'idleStop: (default) → 1h']],
    },
    {
      label: 'running on an older spec that differs only in routes and idleStop: no restart',
      d: desired([loaded(manifest('crm', { domains: ['x.test'], idleStop: '1h' }))]),
      a: actual(
        {
          crm: current(manifest('crm', { domains: ['x.test'], idleStop: '1h' }), {
            runtime: { status: 'running', specHash: hashOf(CRM), spec: CRM },
          }),
        },
        { live: true },
      ),
      want: [],
    },
  ]);

  it('an idle stop carries the activity it saw, for the runtime to check again', () => {
    const { d, a } = idleCase(idle15, running(16 * MIN));
    const [step] = planApp('crm', d, a, OPTS);
    expect(step).toMatchObject({ action: 'stop', idleSince: NOW - 16 * MIN });
  });

  it('plan (the whole diff) shows a due idle stop and nothing for one not due', () => {
    const due = idleCase(idle15, running(16 * MIN));
    expect(plan(due.d, due.a, OPTS).changes.map((c) => c.action)).toEqual(['stop']);
    const later = idleCase(idle15, running(MIN));
    expect(plan(later.d, later.a, OPTS).changes).toEqual([]);
  });
});

describe('more than one application (SPEC §8.6): each app planned with its own', () => {
  // The default application is `sample` at 2; settings key `crm` is crm-app at 3.
  const APPS: PlanOptions = {
    ...OPTS,
    application: 'sample',
    codeVersion: 2,
    applications: new Map([['crm', { name: 'crm-app', version: 3 }]]),
  };
  const onCrm = manifest('crm', { application: 'crm' });
  /** crm applied from `spec`, its record naming `owner` with data at `version`; the manifest now `now`. */
  const app = (
    spec: AppManifest,
    now: AppManifest,
    owner: string,
    version: number,
    extra: Partial<ActualApp> = {},
  ): Pick<Case, 'd' | 'a'> => ({
    d: desired([loaded(now)]),
    a: actual({
      crm: current(spec, { record: record(spec, { application: owner }), dataVersion: version, ...extra }),
    }),
  });
  runCases([
    {
      label: "an app of a named application at that application's version: nothing to do",
      ...app(onCrm, onCrm, 'crm-app', 3),
      opts: APPS,
      want: [],
    },
    {
      label: "it is upgraded to its own application's version, not the default one's",
      ...app(onCrm, onCrm, 'crm-app', 2),
      opts: APPS,
      want: [['upgrade', 'migrate to version 3 (data at version 2)']],
    },
    {
      label: "an app of the default application at the default one's version: nothing to do",
      ...app(CRM, CRM, 'sample', 2),
      opts: APPS,
      want: [],
    },
    {
      label: 'an application the settings do not list: refused, naming the known ones',
      ...app(onCrm, manifest('crm', { application: 'crmm' }), 'crm-app', 3),
      opts: APPS,
      want: [['refuse', "names application 'crmm', which settings applications does not list (known: crm)"]],
    },
    {
      label: 'a change of application on data: refused, naming the owner',
      ...app(CRM, onCrm, 'sample', 2),
      opts: APPS,
      want: [
        ['refuse', "crm's data belongs to application sample, but this appvisor runs application crm-app"],
      ],
    },
    {
      label: 'a change of application on empty data: moved, installed, restarted',
      ...app(CRM, onCrm, 'sample', 2, { dataEmpty: true }),
      opts: APPS,
      want: [
        ['update-record', "the app's data is empty: it moves from application sample to crm-app"],
        ['upgrade', 'migrate to version 3'],
        ['restart', 'application default → crm'],
      ],
    },
    {
      label: 'empty data observed, but the owner is the manifest’s application: no move',
      ...app(onCrm, onCrm, 'crm-app', 3, { dataEmpty: true }),
      opts: APPS,
      want: [],
    },
    {
      label: "an older replica of crm-app holds back crm-app's upgrades only",
      ...app(onCrm, onCrm, 'crm-app', 2),
      opts: {
        ...APPS,
        applications: new Map([
          ['crm', { name: 'crm-app', version: 3, upgradeHeldBy: { replica: 'r2', version: 2 } }],
        ]),
      },
      want: [['refuse', 'replica r2 runs version 2']],
    },
    {
      label: "an older replica of the default application does not hold back crm-app's",
      ...app(onCrm, onCrm, 'crm-app', 2),
      opts: { ...APPS, upgradeHeldBy: { replica: 'r2', version: 1 } },
      want: [['upgrade', 'migrate to version 3']],
    },
  ]);

  it('the restart of a change of application names it in the JSON too', () => {
    const { d, a } = app(CRM, onCrm, 'sample', 2, { dataEmpty: true });
    const restart = planApp('crm', d, a, APPS).find((s) => s.action === 'restart');
    expect(restart?.application).toEqual({ from: 'default', to: 'crm' });
    const move = planApp('crm', d, a, APPS).find((s) => s.action === 'update-record');
    expect(move).toMatchObject({ claim: true, moveFrom: 'sample' });
  });

  it('in serve, a needs-upgrade app starts once its data is at its own application’s version', () => {
    const d = desired([loaded(onCrm)]);
    const at = (version: number) =>
      actual(
        {
          crm: current(onCrm, {
            record: record(onCrm, { application: 'crm-app' }),
            dataVersion: version,
            runtime: { status: 'needs-upgrade' },
          }),
        },
        { live: true },
      );
    // Version 2 is the default application's version, not crm-app's: still waiting.
    expect(planApp('crm', d, at(2), { ...APPS, now: NOW }).map((s) => s.action)).not.toContain('start');
    expect(planApp('crm', d, at(3), { ...APPS, now: NOW }).map((s) => s.detail)).toContain(
      'its data is at version 3 now',
    );
  });
});
