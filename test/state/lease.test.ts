/**
 * The leader lease on every dialect (src/state/lease.ts): one holder at a time on the server's
 * clock, the term raised by every take and fencing the writes of the terms before it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStateStore } from '../../src/state/store.js';
import type { StateStore } from '../../src/state/types.js';
import { TEST_MASTER_KEY } from '../helpers/master-key.js';
import { dialectsUnderTest, type TestDatabase } from './dialects.js';
import { minimalRecord } from './fixtures.js';

const dialects = await dialectsUnderTest();

for (const { dialect, available, create } of dialects) {
  describe.skipIf(!available)(`leader lease on ${dialect}`, () => {
    let db: TestDatabase;
    const opened: StateStore[] = [];
    const open = async (): Promise<StateStore> => {
      const store = await openStateStore(db.url, { masterKey: TEST_MASTER_KEY });
      opened.push(store);
      return store;
    };

    beforeEach(async () => {
      db = await create();
    });
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((s) => s.close()));
      await db.drop();
    });

    it('is free on a new store, and taking it raises the term', async () => {
      const store = await open();
      expect(await store.readLease()).toEqual({ term: 0 });
      const fence = await store.takeLease('a', 5_000);
      expect(fence).toEqual({ term: 1 });
      const view = await store.readLease();
      expect(view).toMatchObject({ holder: 'a', term: 1 });
      expect(view?.expiresInMs).toBeGreaterThan(4_000);
      expect(view?.expiresInMs).toBeLessThanOrEqual(5_000);
    });

    it('has one holder while it runs: a second taker gets nothing until it runs out', async () => {
      const a = await open();
      const b = await open();
      const fence = (await a.takeLease('a', 400))!;
      expect(await b.takeLease('b', 5_000)).toBeUndefined();
      expect(await a.renewLease('a', fence, 400)).toBe(true);
      expect(await b.renewLease('b', fence, 400)).toBe(false);
      await sleep(600);
      // Run out: a renewal comes too late, and another replica takes it under a new term.
      expect(await a.renewLease('a', fence, 400)).toBe(false);
      expect(await b.takeLease('b', 5_000)).toEqual({ term: fence.term + 1 });
      expect((await a.readLease())?.holder).toBe('b');
    });

    it('goes to exactly one of many replicas taking it at once', async () => {
      const stores = await Promise.all(Array.from({ length: 5 }, () => open()));
      const taken = await Promise.all(stores.map((s, i) => s.takeLease(`r${i}`, 5_000)));
      expect(taken.filter((f) => f !== undefined)).toEqual([{ term: 1 }]);
    });

    it('is free at once after its holder releases it', async () => {
      const a = await open();
      const fence = (await a.takeLease('a', 60_000))!;
      // Only the holder at its term releases it.
      await a.releaseLease('b', fence);
      expect((await a.readLease())?.holder).toBe('a');
      await a.releaseLease('a', fence);
      expect(await a.readLease()).toEqual({ term: fence.term });
      expect(await a.takeLease('b', 1_000)).toEqual({ term: fence.term + 1 });
    });

    it("fences the old term's writes once another replica took the lease", async () => {
      const a = await open();
      const b = await open();
      const old = (await a.takeLease('a', 200))!;
      const crm = await a.putRecord(minimalRecord('crm'), old);
      await sleep(300);
      const current = (await b.takeLease('b', 5_000))!;
      await expect(a.putRecord({ ...crm, file: 'late.yaml' }, old)).rejects.toMatchObject({
        code: 'LOCK_LOST',
      });
      await expect(a.ensureSecret('late', 'a-late-secret-0123456789', old)).rejects.toMatchObject({
        code: 'LOCK_LOST',
      });
      expect((await b.getRecord('crm'))?.file).toBe(crm.file);
      await b.putRecord({ ...crm, file: 'new.yaml' }, current);
      expect((await a.getRecord('crm'))?.file).toBe('new.yaml');
    });

    it('can be forced by the holder of the file lock, raising the term', async () => {
      const a = await open();
      await a.takeLease('a', 60_000);
      expect(await a.takeLease('b', 60_000, { force: true })).toEqual({ term: 2 });
      expect((await a.readLease())?.holder).toBe('b');
    });

    it('lists every record version for the poll', async () => {
      const store = await open();
      const fence = (await store.takeLease('a', 60_000))!;
      const crm = await store.putRecord(minimalRecord('crm'), fence);
      await store.putRecord({ ...crm, file: 'crm2.yaml' }, fence);
      await store.putRecord(minimalRecord('wiki'), fence);
      expect(await store.recordVersions()).toEqual(
        new Map([
          ['crm', 2],
          ['wiki', 1],
        ]),
      );
    });
  });
}
