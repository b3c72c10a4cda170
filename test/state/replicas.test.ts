import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TABLES } from '../../src/state/dialect.js';
import { LEADER } from '../../src/state/lease.js';
import { openStateStore } from '../../src/state/store.js';
import type { ReplicaHeartbeat, StateStore } from '../../src/state/types.js';
import { dialectsUnderTest, type TestDatabase } from './dialects.js';

const dialects = await dialectsUnderTest();

function beat(id: string, apps: ReplicaHeartbeat['info']['apps'] = {}): ReplicaHeartbeat {
  return {
    id,
    host: 'host-a',
    pid: 4242,
    version: '1.2.3',
    startedAt: '2026-01-01T00:00:00.000Z',
    info: {
      appvisorVersion: '0.1.0',
      application: { name: 'sample', version: '1.2.3' },
      connectionBudget: 64,
      drift: ['blog'],
      apps,
    },
  };
}

for (const { dialect, available, create } of dialects) {
  describe.skipIf(!available)(`replica heartbeats on ${dialect}`, () => {
    let db: TestDatabase;
    let store: StateStore;

    beforeEach(async () => {
      db = await create();
      store = await openStateStore(db.url);
    });
    afterEach(async () => {
      await store.close();
      await db.drop();
    });

    it('writes a heartbeat and reads it back with the server clock, and a second write replaces it', async () => {
      const running = { crm: { status: 'running' as const, startedAt: '2026-01-01T00:00:01.000Z' } };
      await store.writeReplica(beat('r-1', running));
      const first = await store.listReplicas();
      expect(first.replicas).toEqual([
        { ...beat('r-1', running), lastSeenAt: expect.any(Number), leader: false },
      ]);
      const seen = first.replicas[0]!.lastSeenAt;
      // The server's clock, not a guess: within a minute of ours on this one test host.
      expect(Math.abs(seen - Date.now())).toBeLessThan(60_000);
      expect(first.nowMs).toBeGreaterThanOrEqual(seen);

      await new Promise((r) => setTimeout(r, 20));
      await store.writeReplica(beat('r-1'));
      const [again] = (await store.listReplicas()).replicas;
      expect(again!.info.apps).toEqual({});
      expect(again!.lastSeenAt).toBeGreaterThan(seen);
    });

    it('keeps what other replicas act on: leaving, waiting, and the admin URL (an http one only)', async () => {
      const b = beat('r-1');
      await store.writeReplica({
        ...b,
        info: { ...b.info, leaving: true, waiting: true, adminUrl: 'http://10.0.0.7:13001' },
      });
      expect((await store.listReplicas()).replicas[0]!.info).toMatchObject({
        leaving: true,
        waiting: true,
        adminUrl: 'http://10.0.0.7:13001',
      });
      await store.writeReplica({ ...b, info: { ...b.info, adminUrl: 'javascript:alert(1)' } });
      const info = (await store.listReplicas()).replicas[0]!.info;
      expect(info.adminUrl).toBeUndefined();
      expect(info.leaving).toBeUndefined();
    });

    it('keeps the applications a replica runs (SPEC §8.6), leniently; an older heartbeat has none', async () => {
      const b = beat('r-1');
      await store.writeReplica(b);
      expect((await store.listReplicas()).replicas[0]!.info.applications).toBeUndefined();
      const applications = [
        { name: 'sample', version: '1.2.3' },
        { name: 'crm-app', version: '2' },
        // A damaged entry is left out, never the whole row.
        { name: 7 } as unknown as { name: string; version: string },
      ];
      await store.writeReplica({ ...b, info: { ...b.info, applications } });
      expect((await store.listReplicas()).replicas[0]!.info.applications).toEqual(applications.slice(0, 2));
    });

    it('touches a row to seen-now without changing it, and says when there is no row to touch', async () => {
      await store.writeReplica(beat('r-1', { crm: { status: 'running' } }));
      await db.sql(`UPDATE ${db.store(TABLES.replicas)} SET last_seen_at = last_seen_at - 10000`);
      const [old] = (await store.listReplicas()).replicas;
      expect(await store.touchReplica('r-1')).toBe(true);
      // Twice within the same millisecond is still a row found (MySQL would count it unchanged).
      expect(await store.touchReplica('r-1')).toBe(true);
      const [now] = (await store.listReplicas()).replicas;
      expect(now!.lastSeenAt).toBeGreaterThanOrEqual(old!.lastSeenAt + 10_000);
      expect(now!.info).toEqual(old!.info);
      expect(await store.touchReplica('r-none')).toBe(false);
    });

    it('lists replicas by id, deletes one, and prunes only the ones not seen for long', async () => {
      await store.writeReplica(beat('r-b'));
      await store.writeReplica(beat('r-a'));
      await store.writeReplica(beat('r-c'));
      expect((await store.listReplicas()).replicas.map((r) => r.id)).toEqual(['r-a', 'r-b', 'r-c']);

      await store.deleteReplica('r-b');
      // r-c last seen two hours ago by the server's clock.
      await db.sql(
        `UPDATE ${db.store(TABLES.replicas)} SET last_seen_at = last_seen_at - 7200000 WHERE id = ?`,
        ['r-c'],
      );
      expect(await store.pruneReplicas(3_600_000)).toBe(1);
      expect((await store.listReplicas()).replicas.map((r) => r.id)).toEqual(['r-a']);
    });

    it('marks as leader the holder of an unexpired lease row only', async () => {
      await store.writeReplica(beat('r-1'));
      await store.writeReplica(beat('r-2'));
      const lease = db.store(TABLES.lease);
      const leaders = async () =>
        (await store.listReplicas()).replicas.filter((r) => r.leader).map((r) => r.id);
      expect(await leaders()).toEqual([]);

      const { nowMs } = await store.listReplicas();
      await db.sql(`UPDATE ${lease} SET holder = ?, term = ?, expires_at = ? WHERE name = ?`, [
        'r-2',
        1,
        nowMs + 60_000,
        LEADER,
      ]);
      expect(await leaders()).toEqual(['r-2']);

      await db.sql(`UPDATE ${lease} SET expires_at = ? WHERE name = ?`, [nowMs - 1000, LEADER]);
      expect(await leaders()).toEqual([]);
    });

    it("returns the server's max_connections (none on SQLite)", async () => {
      const max = await store.serverMaxConnections();
      if (dialect === 'sqlite') expect(max).toBeUndefined();
      else expect(max).toBeGreaterThan(0);
    });

    it('reads a row with a damaged info column as an empty heartbeat, not a failed list', async () => {
      await store.writeReplica(beat('r-1'));
      await db.sql(`UPDATE ${db.store(TABLES.replicas)} SET info = ? WHERE id = ?`, ['{not json', 'r-1']);
      const [row] = (await store.listReplicas()).replicas;
      expect(row).toMatchObject({ id: 'r-1', info: { apps: {}, drift: [], connectionBudget: 0 } });
    });
  });
}
