/**
 * The sample app's database goes away mid-request (a TCP proxy in front of the real server is
 * cut): 503 DB_UNREACHABLE with Retry-After and the gateway's JSON error shape, not a 500; and
 * the same app answers again once the server is back.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { openSqlClient } from '../../src/dialects/registry.js';
import type { SqlClient } from '../../src/providers/provider.js';
import { type AppDbFixture, createAppDatabase, modeAvailable } from '../helpers/app-databases.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { waitFor } from '../serve/harness.js';
import { type ServedApp, serveSampleApp } from './serve.js';

const MODES = ['postgres-database', 'mysql'] as const;
const available = Object.fromEntries(
  await Promise.all(MODES.map(async (mode) => [mode, await modeAvailable(mode)] as const)),
);

describe.each(MODES)('the sample app on %s when its database is unreachable', (mode) => {
  let fx: AppDbFixture | undefined;
  let proxy: TcpProxy | undefined;
  let app: ServedApp | undefined;
  let client: SqlClient | undefined;

  afterEach(async () => {
    proxy?.restore();
    await app?.close();
    // mysql2's pool.end() rejects for a connection the outage closed; the runtime ignores that too.
    await client?.close().catch(() => undefined);
    await proxy?.close();
    await fx?.dispose();
    fx = proxy = app = client = undefined;
  });

  it('answers 503 DB_UNREACHABLE with Retry-After, then serves again once it is back', async (ctx) => {
    if (!available[mode]) ctx.skip();
    fx = await createAppDatabase(mode);
    const direct = new URL(fx.database.connection.url!);
    proxy = await startTcpProxy(direct.hostname, Number(direct.port || (mode === 'mysql' ? 3306 : 5432)));
    client = openSqlClient(proxy.url(direct.href));
    const database = { ...fx.database, client };
    app = await serveSampleApp(database, { name: 'notes' });
    const base = app.url;
    const json = (body: unknown) => ({
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(
      (await fetch(`${base}/api/users`, json({ username: 'ann', password: 'ann-password' }))).status,
    ).toBe(201);
    const headers = { authorization: `Bearer ${app.jwt.sign({ sub: 'ann' })}` };
    expect((await fetch(`${base}/api/me`, { headers })).status).toBe(200);

    proxy.cut();
    for (const [path, init] of [
      ['/api/me', { headers }],
      ['/api/notes', { ...json({ text: 'x' }), headers: { ...headers, 'content-type': 'application/json' } }],
      ['/api/auth/signin', json({ username: 'ann', password: 'ann-password' })],
    ] as const) {
      const res = await fetch(`${base}${path}`, init);
      expect(res.status, path).toBe(503);
      expect(res.headers.get('retry-after'), path).toBe('5');
      expect(res.headers.get('content-type'), path).toMatch(/^application\/json/);
      expect(await res.json(), path).toEqual({
        error: {
          code: 'DB_UNREACHABLE',
          message: expect.stringMatching(/database of app notes cannot be reached/),
          app: 'notes',
        },
      });
    }
    // What needs no database still answers.
    expect((await fetch(`${base}/api/info`)).status).toBe(200);

    proxy.restore();
    await waitFor(
      async () => (await fetch(`${base}/api/me`, { headers })).status === 200,
      'notes to recover',
    );
    await client.close();
  });
});
