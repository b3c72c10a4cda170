/**
 * A reconcile whose lock was taken away writes nothing: every write of a run is fenced by the
 * term of the lock it started under, so once another process has taken the lock (and opened a
 * new term), the old run's record, secret and history writes are all refused — and losing the
 * lock aborts the run at once. Real servers, a real second lock holder.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { describeMainDatabase } from '../../src/config/main-database.js';
import { parseDatabaseUrl } from '../../src/dialects/registry.js';
import { loadManifests } from '../../src/manifests/load.js';
import type { Provider } from '../../src/providers/provider.js';
import { ProviderSet } from '../../src/providers/set.js';
import { toDesired } from '../../src/reconcile/desired.js';
import { tryTakeLease } from '../../src/reconcile/lease.js';
import type { PlanOptions } from '../../src/reconcile/model.js';
import { reconcileApp } from '../../src/reconcile/reconciler.js';
import { openStateStore } from '../../src/state/store.js';
import type { Fence, StateStore } from '../../src/state/types.js';
import { TEST_MASTER_KEY } from '../helpers/master-key.js';
import { DIALECTS, log, manifest } from './dialects.js';

/** Holds every provider's createDatabase until `open()`; `reached` resolves when one is waiting. */
function gatedProviders(providers: ProviderSet): { reached: Promise<void>; open: () => void } {
  let reach!: () => void;
  let open!: () => void;
  const reached = new Promise<void>((resolve) => {
    reach = resolve;
  });
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  const forTarget = providers.forTarget.bind(providers);
  providers.forTarget = (target) => {
    const real = forTarget(target);
    return new Proxy(real, {
      get(provider, key) {
        const value = Reflect.get(provider, key) as unknown;
        if (key === 'createDatabase') {
          return async (...args: Parameters<Provider['createDatabase']>) => {
            reach();
            await gate;
            args[2]?.signal?.throwIfAborted();
            return real.createDatabase(...args);
          };
        }
        return typeof value === 'function' ? value.bind(provider) : value;
      },
    });
  };
  return { reached, open };
}

/** Everything a reconcile may write in the store. */
async function snapshot(store: StateStore, app: string) {
  return {
    records: await store.listRecords(),
    secret: await store.getSecret(app),
    history: await store.listHistory(app),
  };
}

for (const dialect of DIALECTS) {
  describe(`fenced reconciles on ${dialect.name}`, () => {
    let dir: string;
    let prefix: string;
    let mainUrl: string;
    const closers: (() => Promise<unknown>)[] = [];

    beforeEach(async (ctx) => {
      if (!dialect.available) ctx.skip();
      dir = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-fence-'));
      await fs.mkdir(path.join(dir, 'apps.d'));
      prefix = `f${Math.random().toString(36).slice(2, 8)}`;
      mainUrl = await dialect.mainUrl(dir);
      await fs.writeFile(
        path.join(dir, 'apps.d', `${prefix}.yaml`),
        manifest(prefix, `database:\n  name: ${prefix}\n`),
      );
    });

    afterEach(async () => {
      if (!dialect.available) return;
      for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
      await dialect.cleanup(prefix, mainUrl);
      await fs.rm(dir, { recursive: true, force: true });
    });

    const planOptions = (): PlanOptions => ({
      main: describeMainDatabase(parseDatabaseUrl(mainUrl), path.join(dir, 'data')),
      codeVersion: 1,
      application: 'appvisor-sample',
      deletionGraceMs: 86_400_000,
    });

    /** A reconcile of the test's app, held inside its CREATE DATABASE. */
    async function startHeldReconcile(fence: Fence, signal?: AbortSignal) {
      const store = await openStateStore(mainUrl, { masterKey: TEST_MASTER_KEY });
      closers.push(() => store.close());
      const dataDir = path.join(dir, 'data');
      const providers = new ProviderSet(mainUrl, { dataDir });
      closers.push(() => providers.close());
      const gate = gatedProviders(providers);
      const desired = toDesired(await loadManifests(path.join(dir, 'apps.d')));
      const run = reconcileApp(
        prefix,
        { store, fence, providers, planOptions: planOptions(), desired: () => desired },
        { reconcileId: 'old', log, ...(signal ? { signal } : {}) },
      );
      run.catch(() => undefined);
      await gate.reached;
      return { store, run, open: gate.open };
    }

    /** Another replica takes the lease (the old holder's ran out) and opens its term. */
    async function takeOver(): Promise<{ store: StateStore; fence: Fence }> {
      const store = await openStateStore(mainUrl, { masterKey: TEST_MASTER_KEY });
      closers.push(() => store.close());
      return { store, fence: (await store.takeLease('replica-b', 60_000, { force: true }))! };
    }

    it('a run that goes on after its lease was taken writes nothing more', async () => {
      const setup = await openStateStore(mainUrl, { masterKey: TEST_MASTER_KEY });
      const old = (await setup.takeLease('replica-a', 60_000))!;
      await setup.close();
      const held = await startHeldReconcile(old);
      // The journal entry written before the CREATE, under the old term, is in the store.
      expect((await held.store.getRecord(prefix))?.inventory.map((i) => i.state)).toEqual(['creating']);

      const next = await takeOver();
      expect(next.fence.term).toBe(old.term + 1);
      const before = await snapshot(next.store, prefix);

      held.open();
      await expect(held.run).rejects.toMatchObject({ code: 'LOCK_LOST' });
      // Not the record after the CREATE, not its secret, not the failure, not a history entry.
      expect(await snapshot(next.store, prefix)).toEqual(before);

      // The new holder's reconcile finishes the create from the journal.
      const dataDir = path.join(dir, 'data');
      const providers = new ProviderSet(mainUrl, { dataDir });
      closers.push(() => providers.close());
      const desired = toDesired(await loadManifests(path.join(dir, 'apps.d')));
      await reconcileApp(
        prefix,
        {
          store: next.store,
          fence: next.fence,
          providers,
          planOptions: planOptions(),
          desired: () => desired,
        },
        { reconcileId: 'new', log },
      );
      const record = await next.store.getRecord(prefix);
      expect(record?.inventory.map((i) => i.state)).toEqual(['created']);
      expect(record?.hasSecret).toBe(true);
      expect((await next.store.listHistory(prefix)).map((h) => h.reconcileId)).toEqual(['new']);
    });

    it('a run under a lease another replica took is aborted and writes nothing', async () => {
      const store = await openStateStore(mainUrl, { masterKey: TEST_MASTER_KEY });
      closers.push(() => store.close());
      const lease = (await tryTakeLease(store, 'replica-a', { ttlMs: 2_000, renewMs: 100, log }))!;
      closers.push(() => lease.release());
      const held = await startHeldReconcile(lease.fence, lease.signal);

      // Another holder of the store's file lock takes it by force: the next renewal finds it gone.
      const other = await openStateStore(mainUrl, { masterKey: TEST_MASTER_KEY });
      closers.push(() => other.close());
      const current = (await other.takeLease('replica-b', 60_000, { force: true }))!;
      await expect.poll(() => lease.signal.aborted, { timeout: 5_000 }).toBe(true);
      expect(lease.signal.reason).toMatchObject({ code: 'LOCK_LOST' });
      const before = await snapshot(other, prefix);

      held.open();
      await expect(held.run).rejects.toMatchObject({ code: 'LOCK_LOST' });
      expect(await snapshot(other, prefix)).toEqual(before);
      // The aborted run never reached the server: no database was created.
      expect(await dialect.exists(prefix, mainUrl)).toBe(false);
      expect(current.term).toBe(lease.fence.term + 1);
    });

    it('a leader that cannot renew in time stops at once, before its lease runs out', async () => {
      const store = await openStateStore(mainUrl, { masterKey: TEST_MASTER_KEY });
      closers.push(() => store.close());
      // Renewals that never come back, as with a database cut off mid-query.
      const stuck = new Proxy(store, {
        get(target, prop, receiver) {
          if (prop === 'renewLease') return () => new Promise(() => undefined);
          const value = Reflect.get(target, prop, receiver);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
      const t0 = performance.now();
      const lease = (await tryTakeLease(stuck, 'replica-a', { ttlMs: 1_000, renewMs: 100, log }))!;
      await expect.poll(() => lease.signal.aborted, { timeout: 5_000 }).toBe(true);
      const stoppedAfter = performance.now() - t0;
      // A margin before the server lets anyone else take it.
      expect(stoppedAfter).toBeLessThan(1_000);
      const view = await store.readLease();
      expect(view?.holder).toBe('replica-a');
    });
  });
}
