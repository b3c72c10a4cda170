/**
 * The executor, table-driven: each row gives the app's manifests, what the store and the fake
 * server hold, and what happens during the run; the steps come from the real planner over a
 * real observation; the row expects the provider and runtime calls, the record written, the
 * history entry and the error.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { AppvisorError } from '../../src/errors.js';
import type { LoadedManifest } from '../../src/manifests/types.js';
import { type ExecuteResult, executeApp, type StepResult } from '../../src/reconcile/executor.js';
import type { Action, DatabaseTarget, PlanOptions } from '../../src/reconcile/model.js';
import { liveObservations } from '../../src/reconcile/observation-source.js';
import { observeApp } from '../../src/reconcile/observe.js';
import { ownerMarker } from '../../src/reconcile/owner.js';
import { planApp } from '../../src/reconcile/planner.js';
import { resolveTarget } from '../../src/reconcile/target.js';
import type { AppRecord, AppStatus, Fence, ReconcileOutcome } from '../../src/state/types.js';
import { FakeProvider, fakeProviders } from '../support/fake-provider.js';
import { FakeRuntime } from '../support/fake-runtime.js';
import { MemoryStateStore, snapshot } from '../support/memory-store.js';
import { desired, loaded, manifest, NOW, OPTS, record, STORE } from './fixtures.js';

const log = pino({ level: 'silent' });
const OURS = ownerMarker(STORE, 'crm');
const HOUR = 3_600_000;
const STOP = { action: 'stop', by: 'admin token via test', at: '2026-01-01T00:00:00.000Z' } as const;

const lockLost = (): AppvisorError =>
  new AppvisorError('LOCK_LOST', { target: 'memory', detail: 'the lock connection died' });
const denied = (): AppvisorError =>
  new AppvisorError('DB_PERMISSION_DENIED', {
    dialect: 'postgres',
    server: '127.0.0.1:5432',
    operation: 'CREATE DATABASE',
    detail: 'permission denied to create database',
  });
const opFailed = (): AppvisorError =>
  new AppvisorError('DB_OPERATION_FAILED', {
    operation: 'migrate',
    dialect: 'postgres',
    server: '127.0.0.1:5432',
    detail: 'syntax error',
  });

/** What a row's run can reach while it is set up and while it runs. */
interface World {
  readonly store: MemoryStateStore;
  readonly provider: FakeProvider;
  readonly runtime: FakeRuntime | undefined;
  readonly controller: AbortController;
  readonly fence: Fence;
  /** The upgrade step's migration (default: reaches the code version). */
  migrate: () => Promise<number>;
  /** Takes the snapshot that `nothingWritten` compares with (taken once after `during` anyway). */
  mark(): Promise<void>;
}

interface Row {
  readonly label: string;
  /** The valid manifests. */
  readonly manifests: readonly LoadedManifest[];
  /** Records in the store before the run (each at version 1). */
  readonly records?: readonly AppRecord[];
  /** Apps whose own secret is stored. */
  readonly secrets?: readonly string[];
  /** Databases on the fake server, with the marker they carry (undefined: none, a foreign one). */
  readonly databases?: Readonly<Record<string, string | undefined>>;
  /** serve: a runtime, with these apps routed in this status (started on their record's spec). */
  readonly runtime?: Readonly<Record<string, AppStatus>>;
  readonly opts?: Partial<PlanOptions>;
  /** Before the run (after planning): set failures, hooks, abort, take the lock away. */
  readonly during?: (w: World) => unknown;
  readonly want: {
    /** The plan, to show the row tests what it says. */
    readonly steps: readonly Action[];
    readonly outcomes: readonly (readonly [Action, StepResult])[];
    /** Calls that change the server. */
    readonly calls?: readonly string[];
    readonly runtime?: readonly string[];
    /** The error thrown. */
    readonly thrown?: string;
    /** Nothing in the store changed since `mark` (or since the run began). */
    readonly nothingWritten?: true;
    /** The record after the run (matched: a subset of its fields), or null for none. */
    readonly record?: object | null;
    /** Fields the record no longer has. */
    readonly cleared?: readonly (keyof AppRecord)[];
    /** The run's history entry, or null for none. */
    readonly history?: {
      readonly outcome: ReconcileOutcome;
      readonly steps: readonly (readonly [Action, string])[];
      readonly error?: string;
    } | null;
    readonly secret?: boolean;
  };
}

async function execute(row: Row) {
  const store = new MemoryStateStore({ storeId: STORE });
  const fence = await store.beginTerm();
  for (const r of row.records ?? []) await store.putRecord(r, fence);
  for (const s of row.secrets ?? []) await store.ensureSecret(s, `secret of ${s}`, fence);
  const provider = new FakeProvider();
  for (const [name, owner] of Object.entries(row.databases ?? {})) {
    provider.databases.set(name, owner === undefined ? {} : { owner });
  }
  const providers = fakeProviders(provider);
  const opts: PlanOptions = { ...OPTS, ...row.opts };
  const d = desired(row.manifests);
  let runtime: FakeRuntime | undefined;
  if (row.runtime) {
    runtime = new FakeRuntime();
    for (const [name, status] of Object.entries(row.runtime)) {
      const rec = (await store.getRecord(name))!;
      const l = { file: rec.file, manifest: rec.spec, hash: rec.specHash };
      runtime.route(l, resolveTarget(rec.spec, opts.main) as DatabaseTarget, rec.intent);
      Object.assign(runtime.apps.get(name)!, { status, specHash: rec.specHash });
    }
  }
  const rt = runtime;
  const actual = await observeApp(
    'crm',
    d,
    {
      store,
      source: liveObservations(providers),
      main: opts.main,
      ...(rt ? { runtime: (n: string) => rt.state(n) } : {}),
    },
    await store.getRecord('crm'),
  );
  const steps = planApp(
    'crm',
    d,
    { apps: new Map([['crm', actual]]), storeId: STORE, hasMainSecret: true, live: rt !== undefined },
    opts,
  );
  provider.calls.length = 0;
  if (rt) rt.calls.length = 0;

  let marked: Awaited<ReturnType<typeof snapshot>> | undefined;
  const world: World = {
    store,
    provider,
    runtime,
    controller: new AbortController(),
    fence,
    migrate: async () => opts.codeVersion ?? 0,
    mark: async () => {
      marked = await snapshot(store, ['crm']);
    },
  };
  await row.during?.(world);
  if (!marked) await world.mark();

  const outcomes: [Action, StepResult][] = [];
  const l = d.apps.get('crm');
  const target = l ? resolveTarget(l.manifest, opts.main) : undefined;
  const settled = await executeApp(
    {
      name: 'crm',
      steps,
      loaded: l,
      actual,
      ...(target && !(target instanceof AppvisorError) ? { target } : {}),
      reconcileId: 'r1',
      signal: world.controller.signal,
    },
    {
      store,
      fence: world.fence,
      providers,
      log,
      now: () => new Date(NOW),
      ...(rt ? { runtime: rt } : {}),
      migrate: () => world.migrate(),
      onStep: (o) => outcomes.push([o.step.action, o.result]),
    },
  ).then(
    (result): { result?: ExecuteResult; error?: unknown } => ({ result }),
    (error: unknown): { result?: ExecuteResult; error?: unknown } => ({ error }),
  );
  return { ...settled, steps, outcomes, world, marked: marked! };
}

const CRM = manifest('crm');
const WITH_MAIN = manifest('crm', { startMode: 'with-main' });
const DROP = manifest('crm', { deletionPolicy: 'drop' });

const ROWS: readonly Row[] = [
  {
    label: 'new app (apply): the database, then the secret, then the record',
    manifests: [loaded(CRM)],
    want: {
      steps: ['create-database', 'generate-secret', 'create-record'],
      outcomes: [
        ['create-database', 'created'],
        ['generate-secret', 'created'],
        ['create-record', 'created'],
      ],
      calls: ['createDatabase crm'],
      // Written twice: the journal entry before the CREATE, then the record after the run.
      record: {
        status: 'stopped',
        version: 2,
        hasSecret: true,
        inventory: [{ kind: 'database', name: 'crm', state: 'created', owner: OURS }],
        lastReconciledAt: new Date(NOW).toISOString(),
      },
      cleared: ['lastError', 'dropAt'],
      history: {
        outcome: 'created',
        steps: [
          ['create-database', 'created'],
          ['generate-secret', 'created'],
          ['create-record', 'created'],
        ],
      },
      secret: true,
    },
  },
  {
    label: 'new with-main app (serve): created, routed, then started',
    manifests: [loaded(WITH_MAIN)],
    runtime: {},
    want: {
      steps: ['create-database', 'generate-secret', 'create-record', 'start'],
      outcomes: [
        ['create-database', 'created'],
        ['generate-secret', 'created'],
        ['create-record', 'created'],
        ['start', 'updated'],
      ],
      calls: ['createDatabase crm'],
      runtime: ['route crm', 'start crm', 'route crm'],
      record: { status: 'stopped', version: 2, hasSecret: true },
      history: {
        outcome: 'created',
        steps: [
          ['create-database', 'created'],
          ['generate-secret', 'created'],
          ['create-record', 'created'],
          ['start', 'updated'],
        ],
      },
      secret: true,
    },
  },
  {
    label: 'a database with our marker (an interrupted run): not created again, recorded as created',
    manifests: [loaded(CRM)],
    databases: { crm: OURS },
    want: {
      steps: ['generate-secret', 'create-record'],
      outcomes: [
        ['generate-secret', 'created'],
        ['create-record', 'created'],
      ],
      calls: [],
      record: { status: 'stopped', version: 1, inventory: [{ state: 'created', owner: OURS }] },
      history: {
        outcome: 'created',
        steps: [
          ['generate-secret', 'created'],
          ['create-record', 'created'],
        ],
      },
      secret: true,
    },
  },
  {
    label: 'a failing create: the rest is not run, its error code is recorded and thrown',
    manifests: [loaded(WITH_MAIN)],
    runtime: {},
    during: (w) => w.provider.fail('createDatabase', denied()),
    want: {
      steps: ['create-database', 'generate-secret', 'create-record', 'start'],
      outcomes: [['create-database', 'failed']],
      calls: ['createDatabase crm'],
      runtime: [],
      thrown: 'DB_PERMISSION_DENIED',
      // The journal entry stays 'creating': the next run resumes (or judges) the create.
      record: {
        status: 'provisioning',
        version: 2,
        hasSecret: false,
        inventory: [{ state: 'creating' }],
        lastError: { code: 'DB_PERMISSION_DENIED' },
      },
      history: { outcome: 'failed', steps: [['create-database', 'failed']], error: 'DB_PERMISSION_DENIED' },
      secret: false,
    },
  },
  {
    label: 'a failing upgrade: what ran before it stays done, the start after it is not run',
    manifests: [loaded(WITH_MAIN)],
    runtime: {},
    opts: { codeVersion: 1 },
    during: (w) => {
      w.migrate = () => Promise.reject(opFailed());
    },
    want: {
      steps: ['create-database', 'generate-secret', 'create-record', 'upgrade', 'start'],
      outcomes: [
        ['create-database', 'created'],
        ['generate-secret', 'created'],
        ['create-record', 'created'],
        ['upgrade', 'failed'],
      ],
      calls: ['createDatabase crm'],
      runtime: [],
      thrown: 'DB_OPERATION_FAILED',
      record: {
        version: 2,
        hasSecret: true,
        inventory: [{ state: 'created' }],
        lastError: { code: 'DB_OPERATION_FAILED' },
      },
      cleared: ['dataVersion'],
      history: {
        outcome: 'failed',
        steps: [
          ['create-database', 'created'],
          ['generate-secret', 'created'],
          ['create-record', 'created'],
          ['upgrade', 'failed'],
        ],
        error: 'DB_OPERATION_FAILED',
      },
      secret: true,
    },
  },
  {
    label: 'an upgrade that succeeds records the data version reached',
    manifests: [loaded(CRM)],
    records: [record(CRM)],
    databases: { crm: OURS },
    secrets: ['crm'],
    opts: { codeVersion: 3 },
    want: {
      steps: ['upgrade'],
      outcomes: [['upgrade', 'updated']],
      calls: [],
      // Two writes: `upgrading` before the migration (the other replicas hold its visits), then the result.
      record: { status: 'running', version: 3, dataVersion: 3 },
      history: { outcome: 'updated', steps: [['upgrade', 'updated']] },
    },
  },
  {
    label: 'a refused adoption: nothing created, no record, recorded as refused',
    manifests: [loaded(CRM)],
    databases: { crm: undefined },
    want: {
      steps: ['refuse'],
      outcomes: [['refuse', 'failed']],
      calls: [],
      thrown: 'ADOPT_REFUSED',
      record: null,
      history: { outcome: 'refused', steps: [['refuse', 'failed']], error: 'ADOPT_REFUSED' },
      secret: false,
    },
  },
  {
    label: 'aborted (lock lost) before the first step: no call, nothing written',
    manifests: [loaded(CRM)],
    during: (w) => w.controller.abort(lockLost()),
    want: {
      steps: ['create-database', 'generate-secret', 'create-record'],
      outcomes: [],
      calls: [],
      thrown: 'LOCK_LOST',
      nothingWritten: true,
      record: null,
      history: null,
    },
  },
  {
    label: 'aborted (lock lost) during the create: the next steps do not run, nothing more is written',
    manifests: [loaded(CRM)],
    during: (w) =>
      w.provider.during('createDatabase', async () => {
        await w.mark();
        w.controller.abort(lockLost());
      }),
    want: {
      steps: ['create-database', 'generate-secret', 'create-record'],
      outcomes: [['create-database', 'failed']],
      calls: ['createDatabase crm'],
      thrown: 'LOCK_LOST',
      nothingWritten: true,
      // Only the journal entry written before the CREATE.
      record: { version: 1, status: 'provisioning', inventory: [{ state: 'creating' }] },
      history: null,
      secret: false,
    },
  },
  {
    label: 'a stale fence (the lock was taken since): the first write is refused, nothing is run or written',
    manifests: [loaded(CRM)],
    during: async (w) => {
      await w.store.connect().beginTerm();
    },
    want: {
      steps: ['create-database', 'generate-secret', 'create-record'],
      outcomes: [['create-database', 'failed']],
      // The journal write comes first, so the server is never asked.
      calls: [],
      thrown: 'LOCK_LOST',
      nothingWritten: true,
      record: null,
      history: null,
    },
  },
  {
    label: 'the lock taken during the create: the secret, record and history writes are refused',
    manifests: [loaded(CRM)],
    during: (w) =>
      w.provider.during('createDatabase', async () => {
        await w.store.connect().beginTerm();
        await w.mark();
      }),
    want: {
      steps: ['create-database', 'generate-secret', 'create-record'],
      outcomes: [
        ['create-database', 'created'],
        ['generate-secret', 'failed'],
      ],
      calls: ['createDatabase crm'],
      thrown: 'LOCK_LOST',
      nothingWritten: true,
      history: null,
      secret: false,
    },
  },
  {
    label: 'the record changed since it was read (STATE_CONFLICT): rethrown, nothing recorded',
    manifests: [loaded(DROP)],
    records: [record(CRM)],
    databases: { crm: OURS },
    secrets: ['crm'],
    during: async (w) => {
      await w.store.setIntent('crm', STOP);
    },
    want: {
      steps: ['update-record'],
      outcomes: [['update-record', 'updated']],
      thrown: 'STATE_CONFLICT',
      nothingWritten: true,
      record: { version: 2, intent: STOP, spec: CRM },
      cleared: ['lastError'],
      history: null,
    },
  },
  {
    label:
      'a removal with deletionPolicy: drop: stopped and orphaned now, the drop scheduled after the grace',
    manifests: [loaded(manifest('other'))],
    records: [record(DROP)],
    databases: { crm: OURS },
    secrets: ['crm'],
    runtime: { crm: 'running' },
    want: {
      steps: ['stop', 'orphan', 'drop-database'],
      outcomes: [
        ['stop', 'updated'],
        ['orphan', 'updated'],
        ['drop-database', 'scheduled'],
      ],
      calls: [],
      runtime: ['stop crm', 'unroute crm'],
      record: {
        status: 'orphaned',
        version: 2,
        dropAt: new Date(NOW + 24 * HOUR).toISOString().replace('.000Z', 'Z'),
        inventory: [{ state: 'created' }],
      },
      history: {
        outcome: 'deleted',
        steps: [
          ['stop', 'updated'],
          ['orphan', 'updated'],
          ['drop-database', 'scheduled'],
        ],
      },
    },
  },
  {
    label: 'a scheduled drop that is not due: left for later, nothing called or written',
    manifests: [],
    records: [record(DROP, { status: 'orphaned', dropAt: new Date(NOW + HOUR).toISOString() })],
    databases: { crm: OURS },
    want: {
      steps: ['drop-database'],
      outcomes: [['drop-database', 'scheduled']],
      calls: [],
      nothingWritten: true,
      record: { version: 1, status: 'orphaned', dropAt: new Date(NOW + HOUR).toISOString() },
      history: null,
    },
  },
  {
    label: 'a scheduled drop that is due: dropped, its inventory item and the schedule cleared',
    manifests: [],
    records: [record(DROP, { status: 'orphaned', dropAt: new Date(NOW - 1000).toISOString() })],
    databases: { crm: OURS },
    want: {
      steps: ['drop-database'],
      outcomes: [['drop-database', 'deleted']],
      calls: ['dropDatabase crm'],
      record: { version: 2, status: 'orphaned', inventory: [] },
      cleared: ['dropAt'],
      history: { outcome: 'updated', steps: [['drop-database', 'deleted']] },
    },
  },
  {
    label:
      'aborted for shutdown (not a lost lock) before a step: nothing is recorded as a failure of the app',
    manifests: [loaded(DROP)],
    records: [record(CRM)],
    databases: { crm: OURS },
    secrets: ['crm'],
    during: (w) => w.controller.abort(new DOMException('the reconcile queue is closing', 'AbortError')),
    want: {
      steps: ['update-record'],
      outcomes: [],
      calls: [],
      thrown: 'AbortError',
      nothingWritten: true,
    },
  },
  {
    label: 'an app in order: nothing planned, called or written',
    manifests: [loaded(CRM)],
    records: [record(CRM)],
    databases: { crm: OURS },
    secrets: ['crm'],
    want: {
      steps: [],
      outcomes: [],
      calls: [],
      nothingWritten: true,
      record: { version: 1 },
      history: null,
    },
  },
  {
    label: "an app in order after a failed run: the last run's error is cleared, no history",
    manifests: [loaded(CRM)],
    records: [{ ...record(CRM), lastError: { code: 'DB_UNREACHABLE', message: 'down', at: 'then' } }],
    databases: { crm: OURS },
    secrets: ['crm'],
    want: {
      steps: [],
      outcomes: [],
      calls: [],
      record: { version: 2, status: 'running' },
      cleared: ['lastError'],
      history: null,
    },
  },
];

describe('executeApp', () => {
  for (const row of ROWS) it(row.label, () => check(row));
});

async function check(row: Row): Promise<void> {
  {
    const { result, error, steps, outcomes, world, marked } = await execute(row);
    const { want } = row;
    expect(steps.map((s) => s.action)).toEqual(want.steps);
    if (want.thrown) {
      expect(error).toSatisfy(
        (e: unknown) =>
          (e instanceof AppvisorError ? e.code : (e as Error | undefined)?.name) === want.thrown,
      );
    } else {
      expect(error).toBeUndefined();
    }
    expect(outcomes).toEqual(want.outcomes);
    if (result) expect(result.outcomes.map((o) => [o.step.action, o.result])).toEqual(want.outcomes);
    if (want.calls) expect(world.provider.changes()).toEqual(want.calls);
    if (want.runtime) expect(world.runtime?.calls).toEqual(want.runtime);
    if (want.nothingWritten) expect(await snapshot(world.store, ['crm'])).toEqual(marked);

    const stored = await world.store.getRecord('crm');
    if (want.record === null) expect(stored).toBeUndefined();
    else if (want.record) expect(stored).toMatchObject(want.record);
    for (const field of want.cleared ?? []) expect(stored).not.toHaveProperty(field);

    const history = await world.store.listHistory('crm');
    if (want.history === null) {
      expect(history.filter((h) => h.reconcileId === 'r1')).toEqual([]);
    } else if (want.history) {
      expect(history).toHaveLength(1);
      const [entry] = history;
      expect(entry).toMatchObject({ app: 'crm', reconcileId: 'r1', outcome: want.history.outcome });
      expect(entry!.steps.map((s) => [s.action, s.result])).toEqual(want.history.steps);
      if (want.history.error) expect(entry!.error?.code).toBe(want.history.error);
      else expect(entry).not.toHaveProperty('error');
    }
    if (want.secret !== undefined) {
      expect((await world.store.getSecret('crm')) !== undefined).toBe(want.secret);
    }
  }
}
