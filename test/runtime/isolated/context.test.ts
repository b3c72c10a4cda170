/**
 * The context an isolated app gets is the one a shared app gets (SPEC §7, §8.3): its database
 * (SQLite, and PostgreSQL in its own database and its own schema), config, name, and JWT helpers
 * on its own secret — rotated without a restart.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { postgres, uniqueName, urlWithDatabase, withPgClient } from '../../helpers/servers.js';
import { ADMIN_TOKEN, type Serve, startServe } from '../../serve/harness.js';
import { FIXTURE, isolated, json, raw } from './helpers.js';

const PG = await postgres();

let serve: Serve | undefined;
const drops: (() => Promise<void>)[] = [];

afterEach(async () => {
  await serve?.close();
  serve = undefined;
  for (const drop of drops.splice(0)) await drop();
});

const CONFIG = '\nconfig:\n  greeting: hello\n  n: 3\n';

function kid(token: string): string | undefined {
  return (JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as { kid?: string }).kid;
}

async function checkContext(s: Serve, app: string, dialect: string): Promise<void> {
  const base = s.sup.url;
  // Database: the migrations the reconcile ran, a write and a read on the app's own client.
  const first = await raw(base, `/apps/${app}/db?text=a`);
  expect(first.status, first.body.toString()).toBe(200);
  expect(json(first)).toMatchObject({ dialect, count: 1 });
  expect(json(await raw(base, `/apps/${app}/db?text=b`))).toMatchObject({ count: 2 });
  // Config and identity.
  expect(json(await raw(base, `/apps/${app}/config`))).toEqual({
    config: { greeting: 'hello', n: 3 },
    name: app,
    isMain: false,
  });
  // JWT: signs with its own audience, verifies its own tokens, refuses another app's.
  const token = json(await raw(base, `/apps/${app}/jwt/sign?sub=alice`)).token as string;
  const verified = await raw(base, `/apps/${app}/jwt/verify`, {
    headers: { authorization: `Bearer ${token}` },
  });
  expect(verified.status).toBe(200);
  expect(json(verified).claims).toMatchObject({ sub: 'alice', aud: app });
  const other = json(await raw(base, '/apps/shared-one/jwt/sign')).token as string;
  expect(
    (await raw(base, `/apps/${app}/jwt/verify`, { headers: { authorization: `Bearer ${other}` } })).status,
  ).toBe(401);
  // A rotation reaches the running app without a restart: it signs with the new secret and
  // still accepts the old token during the grace.
  const startedAt = (await s.view(app)).startedAt;
  const rotated = await s.request(`/_supervisor/api/apps/${app}/rotate-secret`, {
    method: 'POST',
    token: ADMIN_TOKEN,
    body: { grace: '60s' },
  });
  expect(rotated.status, rotated.text).toBe(200);
  const fresh = json(await raw(base, `/apps/${app}/jwt/sign?sub=bob`)).token as string;
  expect(kid(fresh)).toBe(rotated.body.kid);
  expect(kid(fresh)).not.toBe(kid(token));
  expect(
    (await raw(base, `/apps/${app}/jwt/verify`, { headers: { authorization: `Bearer ${token}` } })).status,
  ).toBe(200);
  expect((await s.view(app)).startedAt).toBe(startedAt);
}

describe('the context of an isolated app', () => {
  it('on SQLite: database, config, JWT and a rotation, in a worker and in a process', async () => {
    serve = await startServe({
      app: FIXTURE,
      manifests: {
        'shared-one.yaml': isolated('shared-one', 'shared'),
        'w.yaml': isolated('w', 'worker', CONFIG),
        'p.yaml': isolated('p', 'process', CONFIG),
      },
    });
    await checkContext(serve, 'w', 'sqlite');
    await checkContext(serve, 'p', 'sqlite');
  }, 60_000);

  it("does not hand an isolated app the supervisor's own settings (the master key, the state store's URL)", async () => {
    const saved = { key: process.env.APPVISOR_MASTER_KEY, probe: process.env.ISOLATION_TEST_PROBE };
    // Any valid key: the harness opens its store with its own; this one only has to be in the env.
    process.env.APPVISOR_MASTER_KEY = Buffer.alloc(32, 7).toString('base64');
    process.env.ISOLATION_TEST_PROBE = 'visible';
    try {
      serve = await startServe({
        app: FIXTURE,
        manifests: { 'w.yaml': isolated('w', 'worker'), 'p.yaml': isolated('p', 'process') },
      });
      for (const app of ['w', 'p']) {
        const seen = json(await raw(serve.sup.url, `/apps/${app}/env`));
        expect(seen.probe, app).toBe('visible');
        expect(
          (seen.appvisor as string[]).filter((k) => k !== 'APPVISOR_LOG_LEVEL'),
          app,
        ).toEqual([]);
      }
    } finally {
      for (const [name, value] of [
        ['APPVISOR_MASTER_KEY', saved.key],
        ['ISOLATION_TEST_PROBE', saved.probe],
      ] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  }, 60_000);

  it('on PostgreSQL: its own database and its own schema, in a worker and in a process', async (ctx) => {
    if (!PG.available) ctx.skip();
    const prefix = uniqueName('avi');
    const main = `${prefix}_main`;
    await withPgClient(PG.url, (c) => c.query(`CREATE DATABASE "${main}"`));
    drops.push(() =>
      withPgClient(PG.url, async (c) => {
        const { rows } = await c.query<{ datname: string }>(
          'SELECT datname FROM pg_database WHERE datname LIKE $1',
          [`${prefix}%`],
        );
        for (const r of rows) await c.query(`DROP DATABASE IF EXISTS "${r.datname}" WITH (FORCE)`);
      }),
    );
    const schemaMode = '\ndatabase: {mode: new-schema}\n';
    serve = await startServe({
      app: FIXTURE,
      databaseUrl: urlWithDatabase(PG.url, main),
      manifests: {
        'shared-one.yaml': isolated('shared-one', 'shared'),
        'wd.yaml': isolated(`${prefix}_wd`, 'worker', CONFIG),
        'ps.yaml': isolated(`${prefix}_ps`, 'process', CONFIG + schemaMode),
        'ws.yaml': isolated(`${prefix}_ws`, 'worker', CONFIG + schemaMode),
      },
    });
    for (const app of [`${prefix}_wd`, `${prefix}_ps`, `${prefix}_ws`])
      await checkContext(serve, app, 'postgres');
    // The schema apps' rows are in their own schemas.
    const counts = await withPgClient(urlWithDatabase(PG.url, main), async (c) => {
      const { rows } = await c.query<{ n: string }>(`SELECT COUNT(*) AS n FROM "${prefix}_ps".iso_notes`);
      return rows[0]!.n;
    });
    expect(counts).toBe('2');
  }, 60_000);
});
