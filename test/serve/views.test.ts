/**
 * What the admin API shows of an app (SPEC §6 `GET /_supervisor/api/apps`), derived from the
 * manifest (or the last applied spec), the record, the runtime and the last reconcile error.
 */
import { describe, expect, it } from 'vitest';
import type { ErrorCode } from '../../src/errors.js';
import type { InvalidFile, LoadedManifest } from '../../src/manifests/types.js';
import type { PlanOptions } from '../../src/reconcile/model.js';
import type { AppView } from '../../src/runtime/view.js';
import { allViews, appView, type LiveState, type ViewSources } from '../../src/serve/views.js';
import type { AppRecord } from '../../src/state/types.js';
import {
  desired,
  invalidFile,
  loaded,
  MAIN_PG,
  MAIN_SQLITE,
  manifest,
  record,
} from '../reconcile/fixtures.js';

const STARTED = new Date('2026-01-02T03:04:05.000Z');
const STOP = { action: 'stop', by: 'admin token via test', at: '2026-01-02T03:04:05.000Z' } as const;
const LAST_ERROR = {
  code: 'DB_UNREACHABLE',
  message: 'cannot reach the server',
  at: '2026-01-01T00:00:00Z',
} as const;
const REFUSED = { code: 'ADOPT_REFUSED', message: 'database crm already exists' } as const;

interface Row {
  readonly label: string;
  readonly manifests?: readonly LoadedManifest[];
  readonly invalid?: readonly InvalidFile[];
  readonly record?: AppRecord;
  readonly live?: Partial<LiveState>;
  readonly reconcileError?: { readonly code: ErrorCode; readonly message: string };
  readonly main?: PlanOptions['main'];
  /** The view (matched), or undefined for none. */
  readonly want: Partial<AppView> | undefined;
}

function sources(row: Omit<Row, 'label' | 'want'>): ViewSources {
  const live: LiveState = { status: undefined, error: null, startedAt: null, ...row.live };
  return {
    desired: desired(row.manifests ?? [], row.invalid ?? []),
    records: new Map(row.record ? [[row.record.name, row.record]] : []),
    main: row.main ?? MAIN_PG,
    live: (name) => (name === 'crm' ? live : { status: undefined, error: null, startedAt: null }),
    reconcileErrors: new Map(row.reconcileError ? [['crm', row.reconcileError]] : []),
  };
}

const CRM = manifest('crm', { displayName: 'CRM', domains: ['crm.test'] });
const twoErrors: InvalidFile = {
  file: 'crm.yaml',
  name: 'crm',
  errors: [
    { file: 'crm.yaml', line: 3, column: 5, message: 'enabled must be a boolean' },
    { file: 'crm.yaml', line: 7, column: 1, message: 'unknown field colour' },
  ],
};

const ROWS: readonly Row[] = [
  {
    label: 'a manifest with nothing else: stopped, its spec shown, no error',
    manifests: [loaded(CRM)],
    want: {
      name: 'crm',
      displayName: 'CRM',
      status: 'stopped',
      enabled: true,
      startMode: 'on-first-visit',
      database: { mode: 'new-database', dialect: 'postgres', name: 'crm', schema: null },
      domains: ['crm.test'],
      jwt: { secret: 'own' },
      error: null,
      startedAt: null,
      lastReconciledAt: null,
      file: 'crm.yaml',
      dropAt: null,
      intent: null,
    },
  },
  {
    label: "the runtime's status and start time win over the record's",
    manifests: [loaded(CRM)],
    record: { ...record(CRM, { status: 'stopped' }), lastReconciledAt: '2026-01-02T00:00:00.000Z' },
    live: { status: 'running', startedAt: STARTED },
    want: {
      status: 'running',
      startedAt: STARTED.toISOString(),
      lastReconciledAt: '2026-01-02T00:00:00.000Z',
    },
  },
  {
    label: "not routed: the record's status and last error",
    manifests: [loaded(CRM)],
    record: { ...record(CRM, { status: 'error' }), lastError: LAST_ERROR },
    want: { status: 'error', error: { code: LAST_ERROR.code, message: LAST_ERROR.message } },
  },
  {
    label: "the runtime's error wins over the record's",
    manifests: [loaded(CRM)],
    record: { ...record(CRM), lastError: LAST_ERROR },
    live: { status: 'error', error: { code: 'APP_ERROR', message: 'create() threw' } },
    want: { status: 'error', error: { code: 'APP_ERROR', message: 'create() threw' } },
  },
  {
    label: 'no record and a failed reconcile (a refused create): error, with the refusal',
    manifests: [loaded(CRM)],
    reconcileError: REFUSED,
    want: { status: 'error', error: REFUSED },
  },
  {
    label: 'a create that failed half-way (record provisioning, not routed): error',
    manifests: [loaded(CRM)],
    record: record(CRM, { status: 'provisioning' }),
    reconcileError: REFUSED,
    want: { status: 'error', error: REFUSED },
  },
  {
    label: "a reconcile error while the app runs: the runtime's status stays",
    manifests: [loaded(CRM)],
    record: record(CRM, { status: 'provisioning' }),
    live: { status: 'running' },
    reconcileError: REFUSED,
    want: { status: 'running', error: REFUSED },
  },
  {
    label: 'an invalid manifest of a recorded app: the last applied spec, with the file error',
    manifests: [],
    invalid: [invalidFile('crm.yaml', 'crm')],
    record: { ...record(CRM), lastError: LAST_ERROR },
    live: { status: 'running' },
    want: {
      status: 'running',
      displayName: 'CRM',
      domains: ['crm.test'],
      error: { code: 'MANIFEST_INVALID', message: 'crm.yaml:3:5: enabled must be a boolean' },
      file: 'crm.yaml',
    },
  },
  {
    label: 'an invalid file without a readable name is matched to its record by file',
    manifests: [],
    invalid: [invalidFile('crm.yaml')],
    record: record(CRM),
    want: {
      displayName: 'CRM',
      error: { code: 'MANIFEST_INVALID', message: 'crm.yaml:3:5: enabled must be a boolean' },
    },
  },
  {
    label: 'several errors in the file: the first, and how many more',
    manifests: [],
    invalid: [twoErrors],
    record: record(CRM),
    want: {
      error: { code: 'MANIFEST_INVALID', message: 'crm.yaml:3:5: enabled must be a boolean (+1 more)' },
    },
  },
  {
    label: 'an invalid manifest of an app never applied: an error placeholder naming the file',
    manifests: [],
    invalid: [invalidFile('crm.yaml', 'crm')],
    want: {
      name: 'crm',
      displayName: 'crm',
      status: 'error',
      enabled: false,
      database: { mode: 'new-database', dialect: null, name: 'crm', schema: null },
      error: { code: 'MANIFEST_INVALID', message: 'crm.yaml:3:5: enabled must be a boolean' },
      file: 'crm.yaml',
    },
  },
  {
    label: 'an app nobody knows: no view',
    manifests: [loaded(manifest('other'))],
    want: undefined,
  },
  {
    label: 'an orphaned record (manifest removed): its last spec, orphaned, with the scheduled drop',
    manifests: [],
    record: record(manifest('crm', { deletionPolicy: 'drop' }), {
      status: 'orphaned',
      dropAt: '2026-01-03T00:00:00Z',
      file: 'old/crm.yaml',
    }),
    want: { status: 'orphaned', dropAt: '2026-01-03T00:00:00Z', file: 'old/crm.yaml', error: null },
  },
  {
    label: "an operator's stop on the record is shown",
    manifests: [loaded(CRM)],
    record: record(CRM, { status: 'stopped', intent: STOP }),
    want: { status: 'stopped', intent: STOP },
  },
  {
    label: 'the manifest wins over the record while both exist (an edit not yet applied)',
    manifests: [loaded(manifest('crm', { displayName: 'New CRM', enabled: false }))],
    record: record(CRM, { status: 'running' }),
    want: { displayName: 'New CRM', enabled: false, status: 'running' },
  },
  {
    label: 'new-schema: the main database holds the schema',
    manifests: [loaded(manifest('crm', { database: { mode: 'new-schema', schema: 'crm_s' } }))],
    want: { database: { mode: 'new-schema', dialect: 'postgres', name: 'appvisor', schema: 'crm_s' } },
  },
  {
    label: 'new-schema on a SQLite main database: no dialect (it cannot work)',
    manifests: [loaded(manifest('crm', { database: { mode: 'new-schema', schema: 'crm_s' } }))],
    main: MAIN_SQLITE,
    want: { database: { mode: 'new-schema', dialect: null, name: 'main', schema: 'crm_s' } },
  },
  {
    label: "new-connection: the connection URL's dialect and the database named",
    manifests: [
      loaded(
        manifest('crm', {
          database: {
            mode: 'new-connection',
            name: 'crm_db',
            connection: { url: 'mariadb://u:pw@db:3306/' },
          },
        }),
      ),
    ],
    want: { database: { mode: 'new-connection', dialect: 'mysql', name: 'crm_db', schema: null } },
  },
];

describe('appView', () => {
  it.each(ROWS)('$label', (row) => {
    const view = appView('crm', sources(row));
    if (row.want === undefined) expect(view).toBeUndefined();
    else expect(view).toMatchObject(row.want);
  });

  it('never shows a connection URL or its password', () => {
    const url = 'postgres://crm:hunter2@db.example.com:5433/postgres';
    const view = appView(
      'crm',
      sources({
        manifests: [loaded(manifest('crm', { database: { mode: 'new-connection', connection: { url } } }))],
      }),
    );
    expect(JSON.stringify(view)).not.toContain('hunter2');
    expect(JSON.stringify(view)).not.toContain('db.example.com');
  });
});

describe('allViews', () => {
  it('lists every app named by a manifest, a record or an invalid file, sorted by name', () => {
    const views = allViews({
      ...sources({}),
      desired: desired(
        [loaded(manifest('zeta')), loaded(manifest('alpha'))],
        [invalidFile('beta.yaml', 'beta'), invalidFile('unnamed.yaml')],
      ),
      records: new Map([['mid', record(manifest('mid'), { status: 'orphaned' })]]),
    });
    expect(views.map((v) => [v.name, v.status])).toEqual([
      ['alpha', 'stopped'],
      ['beta', 'error'],
      ['mid', 'orphaned'],
      ['zeta', 'stopped'],
    ]);
  });
});
