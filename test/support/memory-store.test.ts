/**
 * The in-memory store is only worth its tests if it behaves like the real one: the same
 * behaviours run against it and against a real SQLite store in a temp folder.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AppvisorError } from '../../src/errors.js';
import { openStateStore } from '../../src/state/store.js';
import type { Fence, StateStore } from '../../src/state/types.js';
import { TEST_MASTER_KEY } from '../helpers/master-key.js';
import { fullRecord, historyEntry, minimalRecord, stored } from '../state/fixtures.js';
import { MemoryStateStore, snapshot } from './memory-store.js';

interface Backend {
  readonly name: string;
  /** A new, empty store; `open` gives a handle on it (a second call: as another process). */
  fresh(opts?: { historyLimit?: number }): Promise<{ open(): Promise<StateStore>; drop(): Promise<void> }>;
}

const BACKENDS: readonly Backend[] = [
  {
    name: 'memory',
    fresh: async (opts = {}) => {
      const store = new MemoryStateStore(opts);
      return { open: async () => store.connect(), drop: async () => undefined };
    },
  },
  {
    name: 'sqlite',
    fresh: async (opts = {}) => {
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-memstore-'));
      const url = `sqlite:${path.join(dir, 'main.sqlite')}`;
      return {
        open: () => openStateStore(url, { masterKey: TEST_MASTER_KEY, ...opts }),
        drop: () => fs.rm(dir, { recursive: true, force: true }),
      };
    },
  },
];

const STOP = { action: 'stop', by: 'admin token via test', at: '2026-01-01T00:00:00.000Z' } as const;

for (const backend of BACKENDS) {
  describe(`state store behaviours on ${backend.name}`, () => {
    const cleanups: (() => Promise<unknown>)[] = [];
    afterEach(async () => {
      for (const c of cleanups.splice(0).reverse()) await c();
    });

    async function open(opts?: { historyLimit?: number }): Promise<{ store: StateStore; other: StateStore }> {
      const db = await backend.fresh(opts);
      cleanups.push(db.drop);
      const store = await db.open();
      const other = await db.open();
      cleanups.push(
        () => store.close(),
        () => other.close(),
      );
      return { store, other };
    }

    it('starts at term 0 and raises the term by one per beginTerm, seen by every handle', async () => {
      const { store, other } = await open();
      expect(await store.currentTerm()).toBe(0);
      expect(await store.beginTerm()).toEqual({ term: 1 });
      expect(await other.beginTerm()).toEqual({ term: 2 });
      expect(await store.currentTerm()).toBe(2);
    });

    it('inserts at version 1, round-trips every field and leaves absent ones absent', async () => {
      const { store, other } = await open();
      const fence = await store.beginTerm();
      expect(await store.putRecord(fullRecord('crm'), fence)).toEqual(stored(fullRecord('crm')));
      await store.putRecord(minimalRecord('alpha'), fence);
      expect(await other.getRecord('crm')).toEqual(stored(fullRecord('crm')));
      const minimal = await other.getRecord('alpha');
      expect(minimal).toEqual(stored(minimalRecord('alpha')));
      expect(Object.keys(minimal!)).not.toContain('lastError');
      expect((await other.listRecords()).map((r) => r.name)).toEqual(['alpha', 'crm']);
      expect(await other.getRecord('nope')).toBeUndefined();
    });

    it('raises the version on every write at the version read, and deletes at it', async () => {
      const { store } = await open();
      const fence = await store.beginTerm();
      const v1 = await store.putRecord(minimalRecord('crm'), fence);
      const v2 = await store.putRecord({ ...v1, status: 'running' }, fence);
      expect(v2.version).toBe(2);
      expect(await store.getRecord('crm')).toMatchObject({ status: 'running', version: 2 });
      await expect(store.deleteRecord('crm', 1, fence)).rejects.toMatchObject({
        code: 'STATE_CONFLICT',
        params: { expected: 1, actual: 2 },
      });
      await store.deleteRecord('crm', 2, fence);
      expect(await store.getRecord('crm')).toBeUndefined();
      await expect(store.deleteRecord('crm', 2, fence)).rejects.toMatchObject({
        code: 'STATE_CONFLICT',
        params: { actual: 'deleted' },
      });
    });

    it('refuses a write from a stale read or a second create (STATE_CONFLICT) and changes nothing', async () => {
      const { store } = await open();
      const fence = await store.beginTerm();
      const first = await store.putRecord(minimalRecord('crm'), fence);
      await store.putRecord({ ...first, status: 'running' }, fence);
      const before = await snapshot(store, ['crm']);
      const err = await store.putRecord({ ...first, status: 'error' }, fence).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AppvisorError);
      expect(err).toMatchObject({
        code: 'STATE_CONFLICT',
        retryable: true,
        params: { expected: 1, actual: 2 },
      });
      await expect(store.putRecord(minimalRecord('crm'), fence)).rejects.toMatchObject({
        code: 'STATE_CONFLICT',
        params: { expected: 0, actual: 2 },
      });
      await expect(store.putRecord({ ...minimalRecord('gone'), version: 3 }, fence)).rejects.toMatchObject({
        code: 'STATE_CONFLICT',
        params: { actual: 'deleted' },
      });
      expect(await snapshot(store, ['crm'])).toEqual(before);
    });

    it('refuses every fenced write under a term that is over (LOCK_LOST) and changes nothing', async () => {
      const { store, other } = await open();
      const old: Fence = await store.beginTerm();
      const record = await store.putRecord(minimalRecord('crm'), old);
      await store.finishRun(undefined, historyEntry('crm', 1), old);
      const current = await other.beginTerm();
      const before = await snapshot(store, ['crm']);
      const refused = [
        () => store.putRecord({ ...record, status: 'running' }, old),
        // A stale version too: the lost term is what is reported.
        () => store.putRecord({ ...record, version: 7 }, old),
        () => store.putRecord(minimalRecord('new-app'), old),
        () => store.deleteRecord('crm', record.version!, old),
        () => store.ensureSecret('crm', 'secret-x', old),
        () => store.finishRun(undefined, historyEntry('crm', 2), old),
      ];
      for (const write of refused) {
        const err = await write().catch((e: unknown) => e);
        expect(err).toBeInstanceOf(AppvisorError);
        expect(err).toMatchObject({ code: 'LOCK_LOST', retryable: true });
        expect((err as Error).message).toContain(`term ${old.term} is over`);
      }
      expect(await snapshot(store, ['crm'])).toEqual(before);
      await other.putRecord({ ...record, status: 'running' }, current);
      expect(await store.getRecord('crm')).toMatchObject({ status: 'running', version: 2 });
    });

    it("keeps an operator's intent as a new version that record writes neither undo nor replace", async () => {
      const { store, other } = await open();
      const fence = await store.beginTerm();
      const read = await store.putRecord(minimalRecord('crm'), fence);
      expect(await other.setIntent('crm', STOP)).toEqual({ ...read, intent: STOP, version: 2 });
      await expect(store.putRecord({ ...read, status: 'running' }, fence)).rejects.toMatchObject({
        code: 'STATE_CONFLICT',
      });
      // A write at the new version without the intent keeps the stored intent.
      const fresh = (await store.getRecord('crm'))!;
      const { intent: _dropped, ...withoutIntent } = fresh;
      await store.putRecord({ ...withoutIntent, status: 'running' }, fence);
      expect(await store.getRecord('crm')).toMatchObject({ status: 'running', intent: STOP, version: 3 });
      // `accept` sees the record as it stands and may refuse; the intent is then not written.
      const seen: number[] = [];
      await expect(
        store.setIntent('crm', { ...STOP, by: 'bob' }, (r) => {
          seen.push(r.version!);
          throw new AppvisorError('APP_DISABLED', { app: 'crm' });
        }),
      ).rejects.toMatchObject({ code: 'APP_DISABLED' });
      expect(seen).toEqual([3]);
      expect(await store.getRecord('crm')).toMatchObject({ intent: STOP, version: 3 });
      expect(await store.setIntent('nope', STOP)).toBeUndefined();
    });

    it('stores a secret once: the first one wins, also when asked again under a stale term', async () => {
      const { store, other } = await open();
      const fence = await store.beginTerm();
      expect(await store.ensureSecret('crm', 'first', fence)).toBe('first');
      expect(await store.ensureSecret('crm', 'second', fence)).toBe('first');
      expect(await store.ensureMainSecret('m1')).toBe('m1');
      expect(await store.ensureMainSecret('m2')).toBe('m1');
      await other.beginTerm();
      expect(await store.ensureSecret('crm', 'third', fence)).toBe('first');
      expect(await other.getSecret('crm')).toBe('first');
      expect(await other.getSecret('support')).toBeUndefined();
    });

    it('keeps the newest N history entries per app, newest first', async () => {
      const { store } = await open({ historyLimit: 3 });
      const fence = await store.beginTerm();
      for (let n = 1; n <= 5; n += 1)
        await store.finishRun(undefined, historyEntry('crm', n, n === 5), fence);
      await store.finishRun(undefined, historyEntry('support', 1), fence);
      const crm = await store.listHistory('crm');
      expect(crm.map((e) => e.reconcileId)).toEqual(['r5', 'r4', 'r3']);
      expect(crm[0]).toEqual(historyEntry('crm', 5, true));
      expect(Object.keys(crm[1]!)).not.toContain('error');
      expect((await store.listHistory('crm', 1)).map((e) => e.reconcileId)).toEqual(['r5']);
      expect((await store.listHistory('support')).map((e) => e.reconcileId)).toEqual(['r1']);
      expect(await store.listHistory('nobody')).toEqual([]);
    });

    it('never shares an object with its caller', async () => {
      const { store } = await open();
      const fence = await store.beginTerm();
      const record = { ...minimalRecord('crm'), inventory: [] as never[] };
      await store.putRecord(record, fence);
      (record.inventory as unknown[]).push('changed after the write');
      const read = (await store.getRecord('crm'))!;
      expect(read.inventory).toEqual([]);
      (read.inventory as unknown[]).push('changed after the read');
      expect((await store.getRecord('crm'))!.inventory).toEqual([]);
    });

    it('rejects calls after close with STATE_STORE_FAILED', async () => {
      const db = await backend.fresh();
      cleanups.push(db.drop);
      const store = await db.open();
      await store.close();
      await store.close();
      await expect(store.listRecords()).rejects.toMatchObject({ code: 'STATE_STORE_FAILED' });
    });
  });
}
