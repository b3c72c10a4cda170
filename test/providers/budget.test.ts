/**
 * The connection budget: one limit on open connections across every app pool on a server.
 */
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { ProviderSet } from '../../src/providers/set.js';
import { ConnectionBudget } from '../../src/providers/sql/budget.js';
import { postgres, uniqueName } from '../helpers/servers.js';

describe('ConnectionBudget', () => {
  it('hands out slots up to its limit, queues the rest in order, and frees on release', async () => {
    const budget = new ConnectionBudget(2);
    const a = await budget.acquire(1000, () => 'x');
    const b = await budget.acquire(1000, () => 'x');
    const order: string[] = [];
    const queued = (name: string) =>
      budget
        .acquire(1000, () => 'x')
        .then((release) => {
          order.push(name);
          return release;
        });
    const c = queued('c');
    const d = queued('d');
    expect(budget.waiting).toBe(2);
    a();
    a(); // releasing twice frees one slot only
    const rc = await c;
    expect(budget.open).toBe(2);
    b();
    const rd = await d;
    expect(order).toEqual(['c', 'd']);
    rc();
    rd();
    expect(budget.open).toBe(0);
    expect(budget.peak).toBe(2);
  });

  it('fails a wait that outlasts its limit with a message saying how to raise it', async () => {
    const budget = new ConnectionBudget(1);
    const hold = await budget.acquire(1000, () => 'pg:5432');
    await expect(budget.acquire(20, () => 'pg:5432')).rejects.toThrow(
      /connection budget of 1 connections to pg:5432 stayed exhausted for 20 ms \(APPVISOR_DB_CONNECTION_BUDGET/,
    );
    expect(budget.waiting).toBe(0);
    hold();
  });

  it.each([0, -1, 1.5])('rejects a limit of %s', (limit) => {
    expect(() => new ConnectionBudget(limit)).toThrow(RangeError);
  });
});

const PG = await postgres();

describe.skipIf(!PG.available)('connection budget on PostgreSQL', () => {
  const databases: string[] = [];
  afterAll(async () => {
    const admin = new pg.Client({ connectionString: PG.url });
    await admin.connect();
    for (const db of databases) await admin.query(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`);
    await admin.end();
  });

  it('keeps the open connections of many app pools within the budget, and every query still runs', async () => {
    const providers = new ProviderSet(PG.url, { dataDir: '/nonexistent', connectionBudget: 3 });
    const owner = 'appvisor:test:budget';
    const names = Array.from({ length: 6 }, () => uniqueName('avbud'));
    databases.push(...names);
    for (const n of names) await providers.main.createDatabase(n, owner);
    const apps = await Promise.all(
      names.map((n) => providers.main.openDatabase(n, { maxConnections: 5, label: `appvisor:${n}` })),
    );
    const admin = new pg.Client({ connectionString: PG.url });
    await admin.connect();
    const openNow = async () =>
      Number(
        (
          await admin.query<{ n: string }>(
            'SELECT count(*) AS n FROM pg_stat_activity WHERE datname = ANY($1)',
            [names],
          )
        ).rows[0]?.n,
      );
    let maxSeen = 0;
    const sampler = setInterval(() => {
      openNow().then(
        (n) => (maxSeen = Math.max(maxSeen, n)),
        () => undefined,
      );
    }, 5);
    // 6 pools x 4 concurrent slow queries = 24 wanted connections; the budget allows 3.
    const results = await Promise.all(
      apps.flatMap((a) => Array.from({ length: 4 }, () => a.client.query('SELECT pg_sleep(0.02), 1 AS one'))),
    );
    clearInterval(sampler);
    expect(results).toHaveLength(24);
    // Each pool's connections say which app holds them.
    await apps[0]!.client.query('SELECT 1');
    const labels = await admin.query<{ application_name: string }>(
      'SELECT DISTINCT application_name FROM pg_stat_activity WHERE datname = $1',
      [names[0]],
    );
    expect(labels.rows.map((r) => r.application_name)).toEqual([`appvisor:${names[0]}`]);
    const budget = [...providers.budgets().values()][0]!;
    expect(budget.peak).toBe(3);
    expect(maxSeen).toBeLessThanOrEqual(3);
    expect(await openNow()).toBeLessThanOrEqual(3);
    await Promise.all(apps.map((a) => a.client.close()));
    expect(budget.open).toBe(0);
    await admin.end();
    await providers.close();
  });
});
