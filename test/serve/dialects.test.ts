/**
 * `serve` on a PostgreSQL or MariaDB main database: apps in their own database (and, on
 * PostgreSQL, in their own schema) boot, serve, and keep their users apart.
 */
import type mysql from 'mysql2/promise';
import { afterEach, describe, expect, it } from 'vitest';
import {
  mysqlServer,
  postgres,
  uniqueName,
  urlWithDatabase,
  withMysqlConnection,
  withPgClient,
} from '../helpers/servers.js';
import { manifest, type Serve, signUpAndIn, startServe } from './harness.js';

const PG = await postgres();
const MY = await mysqlServer();

let serve: Serve | undefined;
const drops: (() => Promise<void>)[] = [];

afterEach(async () => {
  await serve?.close();
  serve = undefined;
  for (const fn of drops.splice(0)) await fn();
});

describe('serve on server databases', () => {
  it('runs a new-schema app and a new-database app on a PostgreSQL main database', async (ctx) => {
    if (!PG.available) ctx.skip();
    const prefix = uniqueName('avd');
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
    const inSchema = `${prefix}_s`;
    const inDatabase = `${prefix}_d`;
    serve = await startServe({
      databaseUrl: urlWithDatabase(PG.url, main),
      manifests: {
        's.yaml': manifest(inSchema, 'startMode: with-main\ndatabase: {mode: new-schema}\n'),
        'd.yaml': manifest(inDatabase),
      },
    });
    const s = serve;
    expect((await s.view(inSchema)).status).toBe('running');
    expect((await s.view(inSchema)).database).toMatchObject({
      mode: 'new-schema',
      dialect: 'postgres',
      schema: inSchema,
    });
    for (const name of [inSchema, inDatabase]) {
      expect((await s.request(`/apps/${name}/api/info`)).body.name).toBe(name);
    }
    const token = await signUpAndIn(s, `/apps/${inSchema}`, 'alice', 'alice-password-1');
    expect((await s.request(`/apps/${inSchema}/api/me`, { token })).body).toEqual({ username: 'alice' });
    expect(
      (
        await s.request(`/apps/${inDatabase}/api/auth/signin`, {
          method: 'POST',
          body: { username: 'alice', password: 'alice-password-1' },
        })
      ).status,
    ).toBe(401);
    await signUpAndIn(s, `/apps/${inDatabase}`, 'dora', 'dora-password-1');
    await signUpAndIn(s, '', 'root-user', 'main-password-1');

    // Where the data went: a schema in the main database, and a database of its own.
    const schemas = await withPgClient(urlWithDatabase(PG.url, main), (c) =>
      c.query('SELECT schema_name FROM information_schema.schemata WHERE schema_name = $1', [inSchema]),
    );
    expect(schemas.rowCount).toBe(1);
    const users = await withPgClient(urlWithDatabase(PG.url, inDatabase), (c) =>
      c.query('SELECT username FROM users'),
    );
    expect(users.rows.map((r) => r.username)).toEqual(['dora']);
  });

  it('runs a new-database app on a MariaDB main database', async (ctx) => {
    if (!MY.available) ctx.skip();
    const prefix = uniqueName('avd');
    const main = `${prefix}_main`;
    await withMysqlConnection((c) => c.query(`CREATE DATABASE \`${main}\``));
    drops.push(() =>
      withMysqlConnection(async (c) => {
        const [rows] = await c.query<mysql.RowDataPacket[]>(
          'SELECT SCHEMA_NAME AS n FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ?',
          [`${prefix}%`],
        );
        for (const r of rows) await c.query(`DROP DATABASE IF EXISTS \`${r.n}\``);
      }),
    );
    const app = `${prefix}_d`;
    const lazy = `${prefix}_l`;
    serve = await startServe({
      databaseUrl: urlWithDatabase(MY.url, main),
      manifests: {
        'd.yaml': manifest(app, 'startMode: with-main\n'),
        'l.yaml': manifest(lazy, 'jwt: {secret: shared}\n'),
      },
    });
    const s = serve;
    expect((await s.view(app)).status).toBe('running');
    expect((await s.view(app)).database).toMatchObject({ mode: 'new-database', dialect: 'mysql', name: app });
    const token = await signUpAndIn(s, `/apps/${app}`, 'alice', 'alice-password-1');
    expect((await s.request(`/apps/${app}/api/me`, { token })).body).toEqual({ username: 'alice' });
    expect((await s.request(`/apps/${lazy}/api/me`, { token })).status).toBe(401);
    const mainToken = await signUpAndIn(s, '', 'bob', 'main-password-1');
    await signUpAndIn(s, `/apps/${lazy}`, 'bob', 'lazy-password-1');
    expect((await s.request(`/apps/${lazy}/api/me`, { token: mainToken })).body).toEqual({ username: 'bob' });
    const [rows] = await withMysqlConnection((c) =>
      c.query<mysql.RowDataPacket[]>(`SELECT username FROM \`${app}\`.users`),
    );
    expect(rows.map((r) => r.username)).toEqual(['alice']);
  });
});
