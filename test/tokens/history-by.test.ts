/**
 * The history entry of the run that carries out an operator's start or stop names who asked
 * (the intent's `by`: the token and the client); the reconciler's own runs, before and after,
 * name nobody, even while the app's record still holds that intent.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { type ReconcileReport, reconcileApp } from '../../src/reconcile/reconciler.js';
import { desired, loaded, MAIN_PG, manifest, STORE } from '../reconcile/fixtures.js';
import { FakeProvider, fakeProviders } from '../support/fake-provider.js';
import { FakeRuntime } from '../support/fake-runtime.js';
import { MemoryStateStore } from '../support/memory-store.js';

const log = pino({ level: 'silent' });
const STOP = {
  action: 'stop',
  by: 'token ops via appvisor-cli alice@box',
  at: '2026-01-02T03:04:05.000Z',
} as const;
const START = { action: 'start', by: 'token deploy via admin-ui', at: '2026-01-02T03:05:00.000Z' } as const;

describe("the history's by", () => {
  it('is set on the run that carries out the intent, and on no other', async () => {
    const store = new MemoryStateStore({ storeId: STORE });
    const runtime = new FakeRuntime();
    const provider = new FakeProvider();
    const fence = await store.beginTerm();
    let manifests = [loaded(manifest('crm', { startMode: 'with-main' }))];
    let runs = 0;
    const reconcile = (): Promise<ReconcileReport> =>
      reconcileApp(
        'crm',
        {
          store,
          fence,
          providers: fakeProviders(provider),
          planOptions: { main: MAIN_PG, deletionGraceMs: 86_400_000 },
          desired: () => desired(manifests, []),
          runtime,
        },
        { reconcileId: `r${++runs}`, log },
      );
    const newest = async () => (await store.listHistory('crm'))[0]!;

    await reconcile();
    expect((await newest()).reconcileId).toBe('r1');
    expect(await newest()).not.toHaveProperty('by');

    await store.setIntent('crm', STOP);
    await reconcile();
    expect(await newest()).toMatchObject({ reconcileId: 'r2', by: STOP.by, steps: [{ action: 'stop' }] });

    // A later change while the stop holds: the reconciler's own work, nobody's by.
    manifests = [loaded(manifest('crm', { startMode: 'with-main', displayName: 'CRM' }))];
    await reconcile();
    const later = await newest();
    expect(later.reconcileId).toBe('r3');
    expect(later).not.toHaveProperty('by');

    await store.setIntent('crm', START);
    await reconcile();
    expect(await newest()).toMatchObject({ reconcileId: 'r4', by: START.by, steps: [{ action: 'start' }] });
  });
});
