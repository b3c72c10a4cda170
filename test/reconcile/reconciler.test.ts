/**
 * reconcileApp end to end over the in-memory store, a fake provider and a fake runtime: what an
 * operator of `serve` would see over several runs (converge, stay put, remove, stop, lose the lock).
 */
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { LoadedManifest } from '../../src/manifests/types.js';
import type { PlanOptions } from '../../src/reconcile/model.js';
import { ownerMarker } from '../../src/reconcile/owner.js';
import { type ReconcileReport, reconcileApp } from '../../src/reconcile/reconciler.js';
import type { Fence } from '../../src/state/types.js';
import { FakeProvider, fakeProviders } from '../support/fake-provider.js';
import { FakeRuntime } from '../support/fake-runtime.js';
import { MemoryStateStore, snapshot } from '../support/memory-store.js';
import { desired, invalidFile, loaded, MAIN_PG, manifest, STORE } from './fixtures.js';

const log = pino({ level: 'silent' });
const HOUR = 3_600_000;
const OURS = ownerMarker(STORE, 'crm');
const STOP = { action: 'stop', by: 'admin token via test', at: '2026-01-02T03:04:05.000Z' } as const;
const START = { action: 'start', by: 'alice', at: '2026-01-02T03:05:00.000Z' } as const;

const CRM = loaded(manifest('crm', { startMode: 'with-main', deletionPolicy: 'drop' }));
const OTHER = loaded(manifest('other'));

/** One `serve` on the memory store: its manifests can change between runs. */
async function serve(initial: readonly LoadedManifest[], opts: Partial<PlanOptions> = {}) {
  const store = new MemoryStateStore({ storeId: STORE });
  const provider = new FakeProvider();
  const w = {
    store,
    provider,
    /** Replace it to restart appvisor (a runtime that runs nothing yet). */
    runtime: new FakeRuntime(),
    manifests: [...initial],
    invalid: [] as ReturnType<typeof invalidFile>[],
    fence: (await store.beginTerm()) as Fence,
    runs: 0,
    reconcile(name = 'crm'): Promise<ReconcileReport> {
      w.runs += 1;
      return reconcileApp(
        name,
        {
          store,
          fence: w.fence,
          providers: fakeProviders(provider),
          planOptions: { main: MAIN_PG, deletionGraceMs: 24 * HOUR, ...opts },
          desired: () => desired(w.manifests, w.invalid),
          runtime: w.runtime,
        },
        { reconcileId: `r${w.runs}`, log },
      );
    },
    snapshot: () => snapshot(store, ['crm']),
  };
  return w;
}

const actions = (report: ReconcileReport): string[] => report.steps.map((s) => s.action);

describe('reconcileApp', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('converges a new with-main app in one run; a second run plans nothing and writes nothing', async () => {
    const w = await serve([CRM, OTHER]);
    const first = await w.reconcile();
    expect(actions(first)).toEqual(['create-database', 'generate-secret', 'create-record', 'start']);
    expect(first.outcome).toBe('created');
    expect(w.provider.databases.get('crm')).toEqual({ owner: OURS });
    expect(await w.store.getSecret('crm')).toBeDefined();
    expect(await w.store.getRecord('crm')).toMatchObject({
      specHash: CRM.hash,
      hasSecret: true,
      inventory: [{ name: 'crm', state: 'created', owner: OURS }],
    });
    expect(w.runtime.state('crm')).toEqual({ status: 'running', specHash: CRM.hash });

    const before = await w.snapshot();
    const calls = w.provider.changes().length;
    const second = await w.reconcile();
    expect(actions(second)).toEqual([]);
    expect(second.outcome).toBe('unchanged');
    expect(await w.snapshot()).toEqual(before);
    expect(w.provider.changes()).toHaveLength(calls);
    expect(w.runtime.calls.filter((c) => c.startsWith('start'))).toEqual(['start crm']);
    expect((await w.store.listHistory('crm')).map((h) => h.reconcileId)).toEqual(['r1']);
  });

  it('on removal stops and orphans the app at once and schedules its drop, which stays visible until due', async () => {
    const w = await serve([CRM, OTHER]);
    await w.reconcile();
    w.manifests = [OTHER];

    const removed = await w.reconcile();
    const at = Date.now();
    expect(actions(removed)).toEqual(['stop', 'orphan', 'drop-database']);
    expect(removed.outcomes.map((o) => o.result)).toEqual(['updated', 'updated', 'scheduled']);
    const record = await w.store.getRecord('crm');
    expect(record?.status).toBe('orphaned');
    const dueMs = Date.parse(record!.dropAt!);
    expect(dueMs).toBeGreaterThan(at + 24 * HOUR - 5_000);
    expect(dueMs).toBeLessThanOrEqual(at + 24 * HOUR + 1_000);
    // The next run is asked for when the drop is due; the data is still there.
    expect(removed.nextDueMs).toBe(dueMs);
    expect(w.provider.databases.has('crm')).toBe(true);
    expect(w.provider.changes()).not.toContain('dropDatabase crm');
    expect(w.runtime.state('crm')).toBeUndefined();
    expect(await w.store.getSecret('crm')).toBeDefined();

    // Later runs keep showing the scheduled drop, and do nothing about it.
    const before = await w.snapshot();
    const later = await w.reconcile();
    expect(actions(later)).toEqual(['drop-database']);
    expect(later.steps[0]?.detail).toContain(`due ${record!.dropAt}`);
    expect(later.outcomes.map((o) => o.result)).toEqual(['scheduled']);
    expect(await w.snapshot()).toEqual(before);

    // Putting the file back restores the app and cancels the drop.
    w.manifests = [CRM, OTHER];
    const restored = await w.reconcile();
    expect(actions(restored)).toEqual(['create-record', 'start']);
    expect(restored.steps[0]?.detail).toContain('is cancelled');
    const back = await w.store.getRecord('crm');
    expect(back?.status).not.toBe('orphaned');
    expect(back).not.toHaveProperty('dropAt');
    expect(w.provider.databases.has('crm')).toBe(true);
    expect(w.runtime.state('crm')?.status).toBe('running');
  });

  it('drops the database of a removed app with dropAfter: 0s in the removing run', async () => {
    const now = loaded(manifest('crm', { deletionPolicy: 'drop', dropAfter: '0s' }));
    const w = await serve([now, OTHER]);
    await w.reconcile();
    w.manifests = [OTHER];
    const removed = await w.reconcile();
    expect(actions(removed)).toEqual(['orphan', 'drop-database']);
    expect(w.provider.changes()).toEqual(['createDatabase crm', 'dropDatabase crm']);
    expect(await w.store.getRecord('crm')).toMatchObject({ status: 'orphaned', inventory: [] });
    expect(actions(await w.reconcile())).toEqual([]);
  });

  // The run that carries out a due drop keeps the record orphaned (it once became `stopped`,
  // and the next run planned the removal again).
  it('leaves the app orphaned after its drop comes due in a later run, with nothing left to do', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.parse('2026-01-01T00:00:00Z'));
    const w = await serve([loaded(manifest('crm', { deletionPolicy: 'drop', dropAfter: '1h' })), OTHER]);
    await w.reconcile();
    w.manifests = [OTHER];
    await w.reconcile();
    vi.setSystemTime(Date.parse('2026-01-01T01:00:01Z'));
    const due = await w.reconcile();
    expect(due.outcomes.map((o) => [o.step.action, o.result])).toEqual([['drop-database', 'deleted']]);
    expect(w.provider.databases.has('crm')).toBe(false);
    expect(await w.store.getRecord('crm')).toMatchObject({ status: 'orphaned', inventory: [] });
    expect(actions(await w.reconcile())).toEqual([]);
  });

  it("stops the app on an operator's stop written to the store, keeps it stopped, and starts it on a start", async () => {
    const w = await serve([CRM, OTHER]);
    await w.reconcile();
    expect(w.runtime.state('crm')?.status).toBe('running');

    await w.store.setIntent('crm', STOP);
    const stopped = await w.reconcile();
    expect(actions(stopped)).toEqual(['stop']);
    expect(stopped.steps[0]?.detail).toBe(`stopped by ${STOP.by} at ${STOP.at}`);
    expect(w.runtime.state('crm')?.status).toBe('stopped');
    // Routed with the intent, so a visit is answered APP_STOPPED instead of starting it.
    expect(w.runtime.apps.get('crm')?.intent).toEqual(STOP);
    expect(await w.store.getRecord('crm')).toMatchObject({ intent: STOP });

    // A with-main app stays stopped on the next runs.
    expect(actions(await w.reconcile())).toEqual([]);
    expect(w.runtime.state('crm')?.status).toBe('stopped');

    await w.store.setIntent('crm', START);
    const before = w.runtime.calls.length;
    const started = await w.reconcile();
    expect(started.steps).toMatchObject([{ action: 'start', requestedAt: START.at }]);
    expect(w.runtime.calls.slice(before).filter((c) => c.startsWith('start crm'))).toHaveLength(1);
    expect(w.runtime.state('crm')?.status).toBe('running');
  });

  it('writes nothing once its lock is lost mid-run, and the next holder finishes from the journal', async () => {
    const w = await serve([CRM, OTHER]);
    const other = w.store.connect();
    let next: Fence | undefined;
    let atLoss: Awaited<ReturnType<typeof w.snapshot>> | undefined;
    w.provider.during('createDatabase', async () => {
      if (next) return;
      next = await other.beginTerm();
      atLoss = await w.snapshot();
    });
    await expect(w.reconcile()).rejects.toMatchObject({ code: 'LOCK_LOST' });
    // Only the journal entry written before the CREATE; no secret, no record after it, no history.
    expect(await w.snapshot()).toEqual(atLoss);
    expect(atLoss?.records.map((r) => r.inventory.map((i) => i.state))).toEqual([['creating']]);
    expect(atLoss?.secrets).toEqual([undefined]);
    expect(atLoss?.history).toEqual([[]]);

    w.fence = next!;
    const finished = await w.reconcile();
    // The journal entry is a record already: no create-record, but the create is resumed.
    expect(actions(finished)).toEqual(['create-database', 'generate-secret', 'start']);
    expect(finished.steps[0]?.detail).toContain('resume an interrupted creation');
    expect(await w.store.getRecord('crm')).toMatchObject({
      inventory: [{ state: 'created' }],
      hasSecret: true,
    });
    expect((await w.store.listHistory('crm')).map((h) => h.reconcileId)).toEqual(['r2']);
  });

  it('keeps an app whose manifest turned invalid on its last applied spec, also across a restart', async () => {
    const w = await serve([CRM, OTHER]);
    await w.reconcile();
    const before = await w.snapshot();
    w.manifests = [OTHER];
    w.invalid = [invalidFile('crm.yaml', 'crm')];
    expect(actions(await w.reconcile())).toEqual([]);
    expect(await w.snapshot()).toEqual(before);
    expect(w.runtime.state('crm')).toEqual({ status: 'running', specHash: CRM.hash });
    expect(w.runtime.calls).not.toContain('unroute crm');

    // appvisor restarts with the file still broken: the with-main app is routed and started again.
    w.runtime = new FakeRuntime();
    const restarted = await w.reconcile();
    expect(actions(restarted)).toEqual(['start']);
    expect(w.runtime.state('crm')).toEqual({ status: 'running', specHash: CRM.hash });
    // The record keeps the last applied spec and file, not the broken one.
    expect(await w.store.getRecord('crm')).toMatchObject({ specHash: CRM.hash, file: 'crm.yaml' });
  });
});

describe('reconcileApp: idle stop', () => {
  it('requeues a running app for when it could be idle long enough, then stops it and leaves it stopped', async () => {
    const w = await serve([CRM, OTHER], { idleStopMs: HOUR });
    const t0 = Date.now();
    const first = await w.reconcile();
    expect(actions(first)).toContain('start');
    // Just started: due in a full idleStop at the earliest.
    expect(first.nextDueMs).toBeGreaterThanOrEqual(t0 + HOUR);
    expect(first.nextDueMs).toBeLessThanOrEqual(Date.now() + HOUR);

    const app = w.runtime.apps.get('crm')!;
    const idleSince = Date.now() - HOUR / 2;
    app.activity = { busy: false, idleSince };
    const early = await w.reconcile();
    expect(actions(early)).toEqual([]);
    expect(early.nextDueMs).toBe(idleSince + HOUR);

    app.activity = { busy: false, idleSince: Date.now() - 2 * HOUR };
    const due = await w.reconcile();
    expect(due.steps.map((s) => [s.action, s.detail])).toEqual([['stop', 'idle for 2h (idleStop 1h)']]);
    expect(due.outcomes.map((o) => o.result)).toEqual(['updated']);
    expect(w.runtime.calls).toContain('stopIdle crm');
    expect(due.nextDueMs).toBeUndefined();
    const history = await w.store.listHistory('crm');
    expect(history.find((h) => h.reconcileId === `r${w.runs}`)?.steps).toEqual([
      { action: 'stop', detail: 'idle for 2h (idleStop 1h)', result: 'updated' },
    ]);

    // with-main, but stopped for idleness: the reconcile does not start it again.
    const after = await w.reconcile();
    expect(actions(after)).toEqual([]);
    expect(w.runtime.state('crm')?.status).toBe('stopped');
  });

  it('never plans the stop while a request is open, and looks again a full idleStop later', async () => {
    const w = await serve([CRM, OTHER], { idleStopMs: HOUR });
    await w.reconcile();
    w.runtime.apps.get('crm')!.activity = { busy: true, idleSince: Date.now() - 5 * HOUR };
    const t0 = Date.now();
    const busy = await w.reconcile();
    expect(actions(busy)).toEqual([]);
    expect(busy.nextDueMs).toBeGreaterThanOrEqual(t0 + HOUR);
    expect(w.runtime.calls).not.toContain('stopIdle crm');
  });
});
