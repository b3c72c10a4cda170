/**
 * MySQL/MariaDB faults on the real server: a user without CREATE, a wrong password, an outage
 * through a TCP proxy, a server that never answers.
 */
import os from 'node:os';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MysqlProvider } from '../../src/dialects/mysql/provider.js';
import { parseDatabaseUrl } from '../../src/dialects/registry.js';
import { withDatabase } from '../../src/dialects/url.js';
import { AppvisorError, isTerminal } from '../../src/errors.js';
import { createProvider } from '../../src/providers/index.js';
import { MYSQL_URL, mysqlServer, uniqueName } from '../helpers/servers.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { startSilentServer } from './silent-server.js';

const probe = await mysqlServer();
const owner = `appvisor:${uniqueName('store')}:app`;

async function failure(promise: Promise<unknown>): Promise<AppvisorError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof AppvisorError)) throw new Error(`expected an AppvisorError, got ${String(err)}`);
  return err;
}

async function admin(sql: string, params: unknown[] = []): Promise<void> {
  const conn = await mysql.createConnection({ uri: MYSQL_URL });
  try {
    await conn.query(sql, params);
  } finally {
    await conn.end();
  }
}

describe.skipIf(!probe.available)('MySQL/MariaDB provider faults', () => {
  describe('a user without CREATE privilege', () => {
    const user = uniqueName('avuser');
    const password = `pw-${uniqueName()}`;
    const urlFor = (pw: string): string => {
      const u = new URL(MYSQL_URL);
      u.username = user;
      u.password = pw;
      return u.toString();
    };

    beforeAll(async () => {
      await admin('CREATE USER ?@? IDENTIFIED BY ?', [user, '%', password]);
    });

    afterAll(async () => {
      await admin('DROP USER IF EXISTS ?@?', [user, '%']);
    });

    it('gets a terminal DB_PERMISSION_DENIED with the server’s message', async () => {
      const provider = createProvider(urlFor(password), { dataDir: os.tmpdir() });
      try {
        const name = uniqueName();
        const err = await failure(provider.createDatabase(name, owner));
        expect(err.code).toBe('DB_PERMISSION_DENIED');
        expect(isTerminal(err)).toBe(true);
        expect(err.message).toContain('Access denied');
        expect(err.message).toContain(name);
        // The message names the server but never the password.
        expect(err.message).not.toContain(password);
      } finally {
        await provider.close();
      }
    });

    it('gets DB_PERMISSION_DENIED for a wrong password', async () => {
      const provider = createProvider(urlFor('wrong'), { dataDir: os.tmpdir() });
      try {
        const err = await failure(provider.observeDatabase(uniqueName()));
        expect(err.code).toBe('DB_PERMISSION_DENIED');
        expect(err.message).toContain('Access denied');
      } finally {
        await provider.close();
      }
    });
  });

  describe('the main database', () => {
    it('is never dropped by a provider connected to it', async () => {
      const name = uniqueName();
      const outer = createProvider(MYSQL_URL, { dataDir: os.tmpdir() });
      const inner = createProvider(withDatabase(parseDatabaseUrl(MYSQL_URL), name), { dataDir: os.tmpdir() });
      try {
        expect(await outer.createDatabase(name, owner)).toBe('created');
        const err = await failure(inner.dropDatabase(name));
        expect(err.code).toBe('INVALID_IDENTIFIER');
        expect(err.message).toContain('main database');
        expect(await inner.createDatabase(name, owner)).toBe('unchanged');
        expect(await outer.observeDatabase(name)).toEqual({ exists: true, owner });
      } finally {
        await inner.close();
        await outer.dropDatabase(name).catch(() => undefined);
        await outer.close();
      }
    });
  });

  describe('an outage', () => {
    let proxy: TcpProxy;
    const name = uniqueName();
    let provider: MysqlProvider;

    beforeAll(async () => {
      const target = parseDatabaseUrl(MYSQL_URL);
      proxy = await startTcpProxy(target.host!, target.port!);
      provider = new MysqlProvider(parseDatabaseUrl(proxy.url(MYSQL_URL)));
    });

    afterAll(async () => {
      proxy.restore();
      await provider.dropDatabase(name).catch(() => undefined);
      await provider.close();
      await proxy.close();
    });

    it('fails with a retryable DB_UNREACHABLE while cut and works again once restored', async () => {
      expect(await provider.createDatabase(name, owner)).toBe('created');
      const app = await provider.openDatabase(name);
      try {
        expect(await app.client.query('SELECT 1 AS x')).toEqual([{ x: 1 }]);

        proxy.cut();
        const err = await failure(provider.observeDatabase(name));
        expect(err.code).toBe('DB_UNREACHABLE');
        expect(err.retryable).toBe(true);
        expect(err.message).toContain(provider.server);
        await expect(app.client.query('SELECT 1 AS x')).rejects.toThrow();

        proxy.restore();
        expect(await provider.observeDatabase(name)).toEqual({ exists: true, owner });
        expect(await app.client.query('SELECT 1 AS x')).toEqual([{ x: 1 }]);
      } finally {
        await app.client.close();
      }
    });
  });

  describe('a server that never answers', () => {
    it('settles at once when the signal aborts, and times out without one', async () => {
      const silent = await startSilentServer();
      const url = parseDatabaseUrl(`mysql://root@127.0.0.1:${silent.port}/`);
      const provider = new MysqlProvider(url, { connectTimeoutMillis: 300 });
      try {
        const signal = AbortSignal.timeout(50);
        await expect(provider.observeDatabase('x', { signal })).rejects.toMatchObject({
          name: 'TimeoutError',
        });
        const err = await failure(provider.observeDatabase('x'));
        expect(err.code).toBe('DB_UNREACHABLE');
      } finally {
        await provider.close();
        await silent.close();
      }
    });

    it('reports nothing listening as DB_UNREACHABLE', async () => {
      const provider = createProvider('mysql://root@127.0.0.1:1/', { dataDir: os.tmpdir() });
      try {
        const err = await failure(provider.createDatabase(uniqueName(), owner));
        expect(err.code).toBe('DB_UNREACHABLE');
        expect(err.message).toContain('ECONNREFUSED');
      } finally {
        await provider.close();
      }
    });
  });

  describe('a statement cancelled by its signal', () => {
    it('settles at once and is killed on the server; the provider keeps working', async () => {
      const provider = new MysqlProvider(parseDatabaseUrl(MYSQL_URL));
      const name = uniqueName();
      const holder = await mysql.createConnection({ uri: MYSQL_URL });
      try {
        await provider.createDatabase(name, owner);
        const table = `${mysql.escapeId(name)}.t`;
        await holder.query(`CREATE TABLE ${table} (x INTEGER)`);
        // A lock held on a table makes DROP DATABASE wait for the metadata lock.
        await holder.query(`LOCK TABLES ${table} READ`);
        const waiting = async (): Promise<number> => {
          const [rows] = await holder.query<mysql.RowDataPacket[]>(
            `SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST
              WHERE INFO LIKE 'DROP DATABASE%' AND INFO LIKE ? AND STATE LIKE '%metadata lock%'`,
            [`%${name}%`],
          );
          return Number(rows[0]?.n ?? 0);
        };
        const controller = new AbortController();
        const drop = provider.dropDatabase(name, { signal: controller.signal });
        await waitFor(async () => (await waiting()) === 1);
        controller.abort(new Error('stop'));
        await expect(drop).rejects.toThrow('stop');
        await waitFor(async () => (await waiting()) === 0);
        await holder.query('UNLOCK TABLES');
        expect(await provider.observeDatabase(name)).toEqual({ exists: true, owner });
        expect(await provider.dropDatabase(name)).toBe('deleted');
      } finally {
        await holder.query('UNLOCK TABLES').catch(() => undefined);
        await provider.dropDatabase(name).catch(() => undefined);
        await holder.end();
        await provider.close();
      }
    });
  });
});

async function waitFor(check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
