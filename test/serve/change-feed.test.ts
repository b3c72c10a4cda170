/**
 * How a replica hears of other replicas' record changes (src/serve/change-feed.ts): PostgreSQL
 * NOTIFY within a fraction of a second, the poll of record versions within its period whatever
 * happens to the listener (cut, or absent on MariaDB), and never its own writes as news.
 */
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseDatabaseUrl } from '../../src/dialects/registry.js';
import { ChangeFeed } from '../../src/serve/change-feed.js';
import { openStateStore } from '../../src/state/store.js';
import type { StateStore } from '../../src/state/types.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { dialectsUnderTest, type TestDatabase } from '../state/dialects.js';
import { minimalRecord } from '../state/fixtures.js';

const log = pino({ level: 'silent' });
const dialects = (await dialectsUnderTest()).filter((d) => d.dialect !== 'sqlite');

for (const { dialect, available, create } of dialects) {
  describe.skipIf(!available)(`change feed on ${dialect}`, () => {
    let db: TestDatabase;
    const closers: (() => Promise<unknown>)[] = [];
    beforeEach(async () => {
      db = await create();
    });
    afterEach(async () => {
      for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
      await db.drop();
    });

    const open = async (origin: string, url = db.url): Promise<StateStore> => {
      const store = await openStateStore(url, { origin });
      closers.push(() => store.close());
      return store;
    };
    /** `listenUrl`: where the listener connects (the store polls on the database's own URL). */
    const feed = async (opts: { origin: string; pollMs: number; listenUrl?: string; listen?: boolean }) => {
      const store = await open(opts.origin);
      const seen: { names: readonly string[]; at: number }[] = [];
      const changes = new ChangeFeed({
        url: parseDatabaseUrl(opts.listenUrl ?? db.url),
        store,
        origin: opts.origin,
        log,
        pollMs: opts.pollMs,
        ...(opts.listen !== undefined ? { listen: opts.listen } : {}),
        onChange: (names) => seen.push({ names, at: performance.now() }),
      });
      await changes.start();
      closers.push(() => changes.close());
      return { seen, changes };
    };
    const names = (seen: { names: readonly string[] }[]) => [...new Set(seen.flatMap((s) => s.names))].sort();

    it.skipIf(dialect !== 'postgres')(
      'hears an operator stop on another replica within a second by NOTIFY',
      async () => {
        const writer = await open('replica-a');
        const fence = (await writer.takeLease('replica-a', 60_000))!;
        await writer.putRecord(minimalRecord('crm'), fence);
        // The poll is an hour away: only the listener can tell it.
        const b = await feed({ origin: 'replica-b', pollMs: 3_600_000 });
        await new Promise((r) => setTimeout(r, 200));
        const t0 = performance.now();
        await writer.setIntent('crm', { action: 'stop', by: 'alice', at: new Date().toISOString() });
        await expect.poll(() => names(b.seen), { timeout: 2_000, interval: 10 }).toEqual(['crm']);
        expect(b.seen[0]!.at - t0).toBeLessThan(1_000);
      },
    );

    it('does not report its own writes (origin), by NOTIFY or by the poll once noted', async () => {
      const self = await feed({ origin: 'replica-a', pollMs: 100 });
      const writer = await open('replica-a');
      const fence = (await writer.takeLease('replica-a', 60_000))!;
      const written = await writer.putRecord(minimalRecord('crm'), fence);
      self.changes.note('crm', written.version);
      await new Promise((r) => setTimeout(r, 500));
      expect(self.seen).toEqual([]);
    });

    it('finds every change by the poll alone, the listener off (transaction-mode poolers)', async () => {
      const b = await feed({ origin: 'replica-b', pollMs: 300, listen: false });
      const writer = await open('replica-a');
      const fence = (await writer.takeLease('replica-a', 60_000))!;
      const crm = await writer.putRecord(minimalRecord('crm'), fence);
      await writer.putRecord(minimalRecord('wiki'), fence);
      await expect.poll(() => names(b.seen), { timeout: 3_000, interval: 20 }).toEqual(['crm', 'wiki']);
      await writer.deleteRecord('crm', crm.version!, fence);
      await expect.poll(() => b.seen.at(-1)?.names, { timeout: 3_000, interval: 20 }).toEqual(['crm']);
    });

    it.skipIf(dialect !== 'postgres')(
      'gets every change by the poll while its listener is cut off, and by NOTIFY again once it is back',
      async () => {
        const server = new URL(db.url);
        const proxy: TcpProxy = await startTcpProxy(server.hostname, Number(server.port));
        closers.push(() => proxy.close());
        // The listener goes through the proxy; the store (and its poll) straight to the server.
        const b = await feed({ origin: 'replica-b', pollMs: 1_000, listenUrl: proxy.url(db.url) });
        const writer = await open('replica-a');
        const fence = (await writer.takeLease('replica-a', 60_000))!;
        await writer.putRecord(minimalRecord('crm'), fence);
        await expect.poll(() => names(b.seen), { timeout: 3_000, interval: 10 }).toEqual(['crm']);
        proxy.cut();
        const t0 = performance.now();
        await writer.setIntent('crm', { action: 'stop', by: 'alice', at: new Date().toISOString() });
        await expect.poll(() => b.seen.length, { timeout: 5_000, interval: 10 }).toBe(2);
        // Within the poll's period, with no listener at all.
        expect(b.seen[1]!.at - t0).toBeLessThan(1_500);
        proxy.restore();
        // The listener reconnects by itself (a growing pause from 0.5 s) and hears the next one.
        await new Promise((r) => setTimeout(r, 2_500));
        const before = b.seen.length;
        const t1 = performance.now();
        await writer.setIntent('crm', { action: 'start', by: 'alice', at: new Date().toISOString() });
        await expect.poll(() => b.seen.length, { timeout: 3_000, interval: 5 }).toBeGreaterThan(before);
        expect(b.seen[before]!.at - t1).toBeLessThan(500);
      },
    );
  });
}
