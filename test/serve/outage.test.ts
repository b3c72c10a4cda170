/**
 * The main database server goes away while `serve` runs (a TCP proxy is cut, the shared server
 * is never stopped): apps that need it answer errors, the process stays up, a reconcile fails
 * retryably, and everything converges once the server is back, without a restart.
 */
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { mysqlServer, postgres, uniqueName } from '../helpers/servers.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { manifest, type Serve, signUpAndIn, startServe, waitFor } from './harness.js';

const PG = await postgres();
const MY = await mysqlServer();

interface Server {
  readonly name: string;
  readonly available: boolean;
  readonly url: string;
  createDatabase(name: string): Promise<void>;
  /** Drops `main` and every database whose name starts with `prefix`. */
  dropDatabases(prefix: string, main: string): Promise<void>;
}

const SERVERS: Server[] = [
  {
    name: 'PostgreSQL',
    available: PG.available,
    url: PG.url,
    async createDatabase(name) {
      const c = new pg.Client({ connectionString: PG.url });
      await c.connect();
      await c.query(`CREATE DATABASE "${name}"`);
      await c.end();
    },
    async dropDatabases(prefix, main) {
      const c = new pg.Client({ connectionString: PG.url });
      await c.connect();
      const { rows } = await c.query<{ datname: string }>(
        'SELECT datname FROM pg_database WHERE datname LIKE $1 OR datname = $2',
        [`${prefix}%`, main],
      );
      for (const r of rows) await c.query(`DROP DATABASE IF EXISTS "${r.datname}" WITH (FORCE)`);
      await c.end();
    },
  },
  {
    name: 'MariaDB',
    available: MY.available,
    url: MY.url,
    async createDatabase(name) {
      const c = await mysql.createConnection({ uri: MY.url });
      await c.query(`CREATE DATABASE \`${name}\``);
      await c.end();
    },
    async dropDatabases(prefix, main) {
      const c = await mysql.createConnection({ uri: MY.url });
      const [rows] = await c.query<mysql.RowDataPacket[]>(
        'SELECT SCHEMA_NAME AS n FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ? OR SCHEMA_NAME = ?',
        [`${prefix}%`, main],
      );
      for (const r of rows) await c.query(`DROP DATABASE IF EXISTS \`${r.n}\``);
      await c.end();
    },
  },
];

describe.each(SERVERS)('serve: the $name main database goes away', (server) => {
  let serve: Serve | undefined;
  let proxy: TcpProxy | undefined;
  let prefix = '';
  let main = '';

  afterEach(async () => {
    proxy?.restore();
    await serve?.close();
    await proxy?.close();
    if (main) await server.dropDatabases(prefix, main);
    serve = undefined;
    proxy = undefined;
    main = '';
  });

  it('answers errors while it is down, stays up, and recovers without a restart', async (ctx) => {
    if (!server.available) ctx.skip();
    prefix = uniqueName('avo');
    main = `${prefix}_main`;
    await server.createDatabase(main);
    const direct = new URL(server.url);
    direct.pathname = `/${main}`;
    proxy = await startTcpProxy(direct.hostname, Number(direct.port));
    const a = `${prefix}_a`;
    const b = `${prefix}_b`;
    const c = `${prefix}_c`;
    serve = await startServe({
      databaseUrl: proxy.url(direct.href),
      manifests: {
        'a.yaml': manifest(a, 'startMode: with-main\n'),
        'b.yaml': manifest(b),
        'c.yaml': manifest(c),
      },
      supervisor: { lockWaitMs: 2_000, stepTimeoutMs: 5_000 },
    });
    const s = serve;
    const p = proxy;
    const token = await signUpAndIn(s, `/apps/${a}`, 'alice', 'alice-password-1');
    const tokenB = await signUpAndIn(s, `/apps/${b}`, 'bea', 'bea-password-12');
    const retries: string[] = [];
    s.sup.events.on('reconcile', (e) => {
      if (e.outcome === 'retry') retries.push(e.app);
    });

    p.cut();
    // An app that needs its database answers 503 DB_UNREACHABLE with Retry-After; one that
    // does not still answers.
    const me = await s.request(`/apps/${a}/api/me`, { token });
    expect(me.status).toBe(503);
    expect(me.headers.get('retry-after')).toBe('5');
    expect(me.body.error).toMatchObject({ code: 'DB_UNREACHABLE', app: a });
    const notes = await s.request(`/apps/${b}/api/notes`, {
      method: 'POST',
      token: tokenB,
      body: { text: 'x' },
    });
    expect(notes.status).toBe(503);
    expect(notes.body.error).toMatchObject({ code: 'DB_UNREACHABLE', app: b });
    // An app that was never started cannot start now: 503 APP_ERROR, not a hang.
    const cold = await s.request(`/apps/${c}/api/info`);
    expect(cold.status).toBe(503);
    expect(cold.body.error.code).toBe('APP_ERROR');
    expect((await s.request(`/apps/${a}/api/info`)).status).toBe(200);
    expect((await s.request('/_supervisor/healthz')).status).toBe(200);

    // A reconcile during the outage fails and is retried.
    await s.write('b.yaml', manifest(b, 'displayName: B renamed\n'));
    await waitFor(() => retries.includes(b), 'a retryable reconcile failure of b', 15_000);
    // The admin API still answers, and shows why.
    const down = await s.view(b);
    expect(down.error).toMatchObject({ code: 'DB_UNREACHABLE' });
    expect((await s.admin('/apps')).status).toBe(200);
    expect((await s.request('/_supervisor/healthz')).status).toBe(200);

    p.restore();
    // Same process, same apps: the user signs in again and the renamed app converges.
    await waitFor(
      async () => (await s.request(`/apps/${a}/api/me`, { token })).status === 200,
      'a to recover',
      15_000,
    );
    const signin = await s.request(`/apps/${a}/api/auth/signin`, {
      method: 'POST',
      body: { username: 'alice', password: 'alice-password-1' },
    });
    expect(signin.status).toBe(200);
    await waitFor(
      async () => {
        const v = await s.view(b);
        return v.displayName === 'B renamed' && v.error === null && v.lastReconciledAt !== null;
      },
      'b to converge',
      15_000,
    );
    expect((await s.request(`/apps/${b}/api/notes`, { token: tokenB })).status).toBe(200);
    await waitFor(async () => (await s.request(`/apps/${c}/api/info`)).status === 200, 'c to start', 15_000);
    const history = await s.admin(`/apps/${b}/history`);
    expect(history.body.map((h: { outcome: string }) => h.outcome)).toContain('updated');
    expect((await s.request('/_supervisor/readyz')).status).toBe(200);
  });
});
