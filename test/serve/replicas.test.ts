/**
 * Replicas through real supervisors: each one heartbeats, `/api/replicas` lists them (leader from
 * the lease row, dead ones marked), each app carries its status per live replica, and
 * `/api/cluster` weighs the budgets against the server's max_connections.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { AppReplicaStatus, ReplicaView } from '../../src/runtime/view.js';
import { TABLES } from '../../src/state/dialect.js';
import { dialectsUnderTest, type TestDatabase } from '../state/dialects.js';
import { manifest, type Serve, startServe, waitFor } from './harness.js';

const dialects = await dialectsUnderTest();
const PG = dialects.find((d) => d.dialect === 'postgres')!;

const serves: Serve[] = [];
const databases: TestDatabase[] = [];
afterEach(async () => {
  await Promise.all(serves.splice(0).map((s) => s.close()));
  await Promise.all(databases.splice(0).map((d) => d.drop()));
});

async function serveOn(url: string, manifests: Record<string, string>, connectionBudget: number) {
  const serve = await startServe({
    manifests,
    databaseUrl: url,
    settings: { database: { url, connectionBudget } },
  });
  serves.push(serve);
  return serve;
}

describe('replicas on SQLite (one replica)', () => {
  it('lists itself, gives each app its status on this replica, and has no max_connections', async () => {
    const serve = await startServe({ manifests: { 'crm.yaml': manifest('crm', 'startMode: with-main\n') } });
    serves.push(serve);
    const { status, body } = await serve.admin('/replicas');
    expect(status).toBe(200);
    expect(body).toEqual([
      expect.objectContaining({
        id: serve.sup.replica.id,
        host: expect.any(String),
        pid: process.pid,
        leader: true,
        version: expect.any(String),
        lastSeenAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        live: true,
        self: true,
        connectionBudget: 64,
        drift: [],
      }),
    ]);
    const crm = await serve.view('crm');
    expect(crm.replicas).toEqual([{ id: serve.sup.replica.id, status: 'running', startedAt: crm.startedAt }]);
    const apps = (await serve.admin('/apps')).body as { replicas: AppReplicaStatus[] }[];
    expect(apps.every((a) => a.replicas.length === 1)).toBe(true);
    expect((await serve.admin('/cluster')).body).toEqual({
      maxConnections: null,
      replicas: 1,
      connectionBudget: 64,
      budgetTotal: 64,
    });
    // A stopped app is absent from the row: still `stopped` on this replica in the view.
    await serve.admin('/apps/crm/stop', 'POST');
    await waitFor(async () => (await serve.view('crm')).replicas?.[0]?.status === 'stopped', 'crm stopped');
  });

  it('answers 401 on the replica routes without the token', async () => {
    const serve = await startServe();
    serves.push(serve);
    expect((await serve.request('/_supervisor/api/replicas')).status).toBe(401);
    expect((await serve.request('/_supervisor/api/cluster')).status).toBe(401);
  });
});

describe.skipIf(!PG.available)('two replicas on one PostgreSQL store', () => {
  it('see each other, each app on both, the leader from the lease, a dead replica as such', async () => {
    const db = await PG.create();
    databases.push(db);
    const manifests = { 'crm.yaml': manifest('crm', 'database: {mode: new-schema}\n') };
    const a = await serveOn(db.url, manifests, 30);
    const b = await serveOn(db.url, manifests, 40);
    const ids = [a.sup.replica.id, b.sup.replica.id].sort();

    const listed = async (serve: Serve) =>
      ((await serve.admin('/replicas')).body as ReplicaView[]).map((r) => r.id).sort();
    expect(await listed(a)).toEqual(ids);
    expect(await listed(b)).toEqual(ids);

    // A visit starts crm on A only: B's view says so within a heartbeat's coalescing, not 2 s.
    expect((await a.request('/apps/crm/api/info')).status).toBe(200);
    const started = Date.now();
    const onB = await waitFor(
      async () => {
        const view = await b.view('crm');
        const there = view.replicas?.find((r) => r.id === a.sup.replica.id);
        return there?.status === 'running' ? view : undefined;
      },
      'crm running on A, seen from B',
      5_000,
    );
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(onB.replicas).toHaveLength(2);
    expect(onB.replicas?.find((r) => r.id === b.sup.replica.id)?.status).toBe('stopped');

    // The budgets add up to 70, over a max_connections the test cannot lower: only the shape here.
    const cluster = (await b.admin('/cluster')).body;
    expect(cluster).toMatchObject({ replicas: 2, connectionBudget: 40, budgetTotal: 70 });
    expect(cluster.maxConnections).toBeGreaterThan(0);
    expect(cluster.warning === undefined).toBe(70 <= cluster.maxConnections);

    const [clock] = await db.sql('SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::bigint AS now_ms');
    const nowMs = Number(clock!.now_ms);
    // A replica that died an hour ago minus a minute: listed as dead, counted nowhere.
    await db.sql(
      `INSERT INTO ${db.store(TABLES.replicas)} (id, host, pid, version, started_at, last_seen_at, info) VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ['dead-1-0000', 'gone', 1, '1', '2026-01-01T00:00:00.000Z', nowMs - 3_540_000, '{}'],
    );
    const seen = await waitFor(async () => {
      const list = (await b.admin('/replicas')).body as ReplicaView[];
      return list.length === 3 && list.some((r) => r.leader) ? list : undefined;
    }, 'the leader and the dead replica listed');
    const byId = (x: unknown[], y: unknown[]) => (String(x[0]) < String(y[0]) ? -1 : 1);
    expect(seen.map((r) => [r.id, r.leader, r.live]).sort(byId)).toEqual(
      [
        [a.sup.replica.id, true, true],
        [b.sup.replica.id, false, true],
        ['dead-1-0000', false, false],
      ].sort(byId),
    );
    expect((await b.view('crm')).replicas?.map((r) => r.id)).toEqual(ids);
    expect((await b.admin('/cluster')).body.replicas).toBe(2);

    // A clean shutdown deletes A's row.
    await a.close();
    serves.splice(serves.indexOf(a), 1);
    await waitFor(
      async () => !(await listed(b)).includes(a.sup.replica.id),
      'A gone from B’s list after its shutdown',
    );
  });
});
