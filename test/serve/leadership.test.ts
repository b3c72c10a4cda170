/**
 * Leadership among replicas (src/serve/leadership.ts) on real stores: one leader at a time; a
 * clean shutdown hands the role over at once; a leader that stops renewing loses it before its
 * lease runs out and another takes it; SQLite keeps one server and names it to a second.
 */
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseDatabaseUrl } from '../../src/dialects/registry.js';
import { Leadership } from '../../src/serve/leadership.js';
import { openStateStore } from '../../src/state/store.js';
import type { StateStore } from '../../src/state/types.js';
import { dialectsUnderTest, type TestDatabase } from '../state/dialects.js';

const log = pino({ level: 'silent' });
const dialects = await dialectsUnderTest();
const TIMING = { ttlMs: 1_200, renewMs: 150 };

for (const { dialect, available, create } of dialects) {
  describe.skipIf(!available)(`leadership on ${dialect}`, () => {
    let db: TestDatabase;
    const closers: (() => Promise<unknown>)[] = [];

    beforeEach(async () => {
      db = await create();
    });
    afterEach(async () => {
      for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
      await db.drop();
    });

    const open = async (): Promise<StateStore> => {
      const store = await openStateStore(db.url);
      closers.push(() => store.close());
      return store;
    };
    const replica = async (holder: string, store?: StateStore) => {
      const changes: boolean[] = [];
      const leadership = new Leadership({
        url: parseDatabaseUrl(db.url),
        store: store ?? (await open()),
        holder,
        log,
        ...TIMING,
        lockWaitMs: 200,
        onChange: (leading) => changes.push(leading),
      });
      return { leadership, changes };
    };

    if (dialect === 'sqlite') {
      it('keeps one server: a second fails with LOCK_HELD naming the first', async () => {
        const a = await replica('host-a-100-aaaa');
        await a.leadership.start();
        closers.push(() => a.leadership.close());
        expect(a.leadership.leading).toBe(true);
        const b = await replica('host-b-200-bbbb');
        const err = await b.leadership.start().then(
          () => undefined,
          (e: unknown) => e,
        );
        closers.push(() => b.leadership.close());
        expect(err).toMatchObject({ code: 'LOCK_HELD' });
        expect(String((err as Error).message)).toContain('pid 100 on host host-a');
      });
      return;
    }

    it('has one leader among replicas starting at once, with a term for its writes', async () => {
      const all = await Promise.all(['r1-1-0001', 'r2-2-0002', 'r3-3-0003'].map((id) => replica(id)));
      await Promise.all(all.map((r) => r.leadership.start()));
      for (const r of all) closers.push(() => r.leadership.close());
      const leaders = all.filter((r) => r.leadership.leading);
      expect(leaders).toHaveLength(1);
      expect(leaders[0]!.leadership.term()?.fence.term).toBe(1);
      expect(all.filter((r) => r.leadership.term() === undefined)).toHaveLength(2);
      // Renewed, it stays the leader well past its lease's length.
      await new Promise((r) => setTimeout(r, 2 * TIMING.ttlMs));
      expect(all.filter((r) => r.leadership.leading)).toEqual(leaders);
    });

    it("hands the role over at once on the leader's clean shutdown", async () => {
      const a = await replica('a-1-000a');
      await a.leadership.start();
      const b = await replica('b-2-000b');
      await b.leadership.start();
      closers.push(() => b.leadership.close());
      expect(a.leadership.leading).toBe(true);
      expect(b.leadership.leading).toBe(false);
      const t0 = performance.now();
      await a.leadership.close();
      await expect.poll(() => b.leadership.leading, { timeout: 3_000, interval: 20 }).toBe(true);
      // Within a campaign interval or two, not after the lease would have run out.
      expect(performance.now() - t0).toBeLessThan(TIMING.ttlMs);
      expect(b.leadership.term()?.fence.term).toBe(2);
      expect(b.changes).toEqual([true]);
    });

    it('a leader that cannot renew stops at once; another leads once its lease ran out', async () => {
      const store = await open();
      let frozen = false;
      // A leader cut off from the database: its renewals never come back.
      const cutOff = new Proxy(store, {
        get(target, prop, receiver) {
          if (frozen && (prop === 'renewLease' || prop === 'takeLease'))
            return () => new Promise(() => undefined);
          const value = Reflect.get(target, prop, receiver);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
      const a = await replica('a-1-000a', cutOff);
      await a.leadership.start();
      closers.push(() => a.leadership.close());
      const b = await replica('b-2-000b');
      await b.leadership.start();
      closers.push(() => b.leadership.close());
      const term = a.leadership.term()!;
      frozen = true;
      const t0 = performance.now();
      await expect.poll(() => term.signal.aborted, { timeout: 5_000, interval: 20 }).toBe(true);
      const stoppedAt = performance.now() - t0;
      expect(term.signal.reason).toMatchObject({ code: 'LOCK_LOST' });
      expect(a.leadership.leading).toBe(false);
      await expect.poll(() => b.leadership.leading, { timeout: 5_000, interval: 20 }).toBe(true);
      const ledAt = performance.now() - t0;
      // The old leader stopped before the new one started.
      expect(stoppedAt).toBeLessThan(ledAt);
      expect(b.leadership.term()!.fence.term).toBe(term.fence.term + 1);
      expect(a.changes).toEqual([true, false]);
    });
  });
}
