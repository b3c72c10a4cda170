/**
 * The queue's reconcile function in `serve`: a run whose record moved on under it (an operator's
 * intent written meanwhile) is run again at once and is not shown as the app's error; any other
 * failure is.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { Reconciler } from '../../src/reconcile/queue.js';
import type { Runtime } from '../../src/runtime/runtime.js';
import { createAppReconciler, type ReconcileErrors } from '../../src/serve/app-reconciler.js';
import type { DesiredState } from '../../src/serve/desired-state.js';
import type { AppRecord, Fence, HistoryEntry, StateStore } from '../../src/state/types.js';
import { desired, loaded, MAIN_PG, manifest, STORE } from '../reconcile/fixtures.js';
import { FakeProvider, fakeProviders } from '../support/fake-provider.js';
import { FakeRuntime } from '../support/fake-runtime.js';
import { MemoryStateStore } from '../support/memory-store.js';

const log = pino({ level: 'silent' });

async function harness(manifests = [loaded(manifest('crm', { startMode: 'with-main' }))]) {
  const store = new MemoryStateStore({ storeId: STORE });
  const fence: Fence = await store.beginTerm();
  const provider = new FakeProvider();
  const errors: ReconcileErrors = new Map();
  const runtime = new FakeRuntime();
  /** Set to make the next record write meet an operator's intent written just before it. */
  let interleave = false;
  const raceIfAsked = async (name: string): Promise<void> => {
    if (!interleave) return;
    interleave = false;
    await store.setIntent(name, { action: 'stop', by: 'alice', at: new Date().toISOString() });
  };
  const racing: StateStore = new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'putRecord') {
        return async (record: AppRecord, f: Fence) => {
          await raceIfAsked(record.name);
          return store.putRecord(record, f);
        };
      }
      if (prop === 'finishRun') {
        return async (record: AppRecord | undefined, entry: HistoryEntry, f: Fence) => {
          await raceIfAsked(entry.app);
          return store.finishRun(record, entry, f);
        };
      }
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  const leadership = { term: () => ({ fence, signal: new AbortController().signal }) };
  let current = desired(manifests);
  const reconcile: Reconciler = createAppReconciler({
    leadership,
    store: racing,
    providers: fakeProviders(provider),
    planOptions: { main: MAIN_PG, deletionGraceMs: 0 },
    desired: {
      get current() {
        return current;
      },
      noteRecord: () => undefined,
    } as unknown as DesiredState,
    runtime: runtime as unknown as Runtime,
    migrate: undefined as never,
    claimData: undefined as never,
    stepTimeoutMs: 5_000,
    errors,
  });
  const run = (name = 'crm') =>
    reconcile(name, { signal: new AbortController().signal, log, reconcileId: 'r1' });
  return {
    store,
    provider,
    errors,
    run,
    setManifests: (next: Parameters<typeof desired>[0]) => {
      current = desired(next);
    },
    raceNextWrite: () => {
      interleave = true;
    },
  };
}

describe('the app reconciler of serve', () => {
  it('runs again at once, without an error on the app, when the record changed under the run', async () => {
    const h = await harness();
    await h.run();
    const before = await h.store.getRecord('crm');
    // A manifest change: the run rewrites the record, and meets an operator's stop written first.
    h.setManifests([loaded(manifest('crm', { startMode: 'with-main', config: { greeting: 'hi' } }))]);
    h.raceNextWrite();
    const result = await h.run();
    expect(h.errors.has('crm')).toBe(false);
    expect(result).toEqual({ requeueAfterMs: 0, inProgress: true });
    const after = await h.store.getRecord('crm');
    // Only the intent was written (version +1); the stale run wrote nothing.
    expect(after?.version).toBe((before?.version ?? 0) + 1);
    expect(after?.intent?.action).toBe('stop');
  });

  it('shows any other failure as the app error and rethrows it', async () => {
    const h = await harness();
    h.provider.fail('createDatabase', new Error('disk full'));
    await expect(h.run()).rejects.toThrow();
    expect(h.errors.get('crm')).toMatchObject({ code: 'DB_OPERATION_FAILED' });
    expect(h.provider.databases.has('crm')).toBe(false);
  });
});
