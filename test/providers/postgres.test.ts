/**
 * PostgreSQL faults on the real server: a role without CREATEDB, an outage through a TCP proxy,
 * a server that never answers.
 */
import os from 'node:os';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresProvider } from '../../src/dialects/postgres/provider.js';
import { parseDatabaseUrl } from '../../src/dialects/registry.js';
import { withDatabase } from '../../src/dialects/url.js';
import { AppvisorError, isTerminal } from '../../src/errors.js';
import { createProvider } from '../../src/providers/index.js';
import { PG_URL, postgres, uniqueName } from '../helpers/servers.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { startSilentServer } from './silent-server.js';

const probe = await postgres();
const owner = `appvisor:${uniqueName('store')}:app`;

async function failure(promise: Promise<unknown>): Promise<AppvisorError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof AppvisorError)) throw new Error(`expected an AppvisorError, got ${String(err)}`);
  return err;
}

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

describe.skipIf(!probe.available)('PostgreSQL provider faults', () => {
  describe('a role without CREATEDB', () => {
    const role = uniqueName('avrole');
    let url: string;

    beforeAll(async () => {
      await admin(`CREATE ROLE ${pg.escapeIdentifier(role)} LOGIN NOCREATEDB`);
      const u = new URL(PG_URL);
      u.username = role;
      u.password = '';
      url = u.toString();
    });

    afterAll(async () => {
      await admin(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(role)}`);
    });

    it('gets a terminal DB_PERMISSION_DENIED with the server’s message', async () => {
      const provider = createProvider(url, { dataDir: os.tmpdir() });
      try {
        const name = uniqueName();
        const err = await failure(provider.createDatabase(name, owner));
        expect(err.code).toBe('DB_PERMISSION_DENIED');
        expect(isTerminal(err)).toBe(true);
        expect(err.message).toContain('permission denied to create database');
        expect(err.message).toContain(name);
        expect(await provider.observeDatabase(name)).toEqual({ exists: false });

        const schemaErr = await failure(provider.createSchema(uniqueName('avs'), owner));
        expect(schemaErr.code).toBe('DB_PERMISSION_DENIED');
        expect(schemaErr.message).toMatch(/permission denied for database/);
      } finally {
        await provider.close();
      }
    });
  });

  describe('the main database', () => {
    it('is never dropped by a provider connected to it', async () => {
      const name = uniqueName();
      const outer = createProvider(PG_URL, { dataDir: os.tmpdir() });
      const inner = createProvider(withDatabase(parseDatabaseUrl(PG_URL), name), { dataDir: os.tmpdir() });
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
    let provider: PostgresProvider;
    let reportLost: () => void;
    /** Resolves when the provider reports an app's idle connection lost. */
    const appConnectionLost = new Promise<void>((resolve) => {
      reportLost = resolve;
    });

    beforeAll(async () => {
      const target = parseDatabaseUrl(PG_URL);
      proxy = await startTcpProxy(target.host!, target.port!);
      provider = new PostgresProvider(parseDatabaseUrl(proxy.url(PG_URL)), {
        log: { warn: (_obj, msg) => msg?.includes(`database "${name}"`) && reportLost() },
      });
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
        // The app's idle connection dies with the cut: reported, not thrown at the process.
        await appConnectionLost;
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
      const url = parseDatabaseUrl(`postgres://postgres@127.0.0.1:${silent.port}/postgres`);
      const provider = new PostgresProvider(url, { connectTimeoutMillis: 300 });
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
      const provider = createProvider('postgres://postgres@127.0.0.1:1/postgres', { dataDir: os.tmpdir() });
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
    it('settles at once and is cancelled on the server; the provider keeps working', async () => {
      const provider = new PostgresProvider(parseDatabaseUrl(PG_URL), { maxAdminConnections: 1 });
      const schema = uniqueName('avs');
      const holder = new pg.Client({ connectionString: PG_URL });
      await holder.connect();
      try {
        await provider.createSchema(schema, owner);
        const table = `${pg.escapeIdentifier(schema)}.t`;
        await holder.query(`CREATE TABLE ${table} (x INTEGER)`);
        const { rows } = await holder.query<{ oid: number }>('SELECT $1::regclass::oid AS oid', [table]);
        const waiters = async (): Promise<number> => {
          const res = await holder.query<{ n: string }>(
            'SELECT count(*) AS n FROM pg_locks WHERE relation = $1 AND NOT granted',
            [rows[0]!.oid],
          );
          return Number(res.rows[0]!.n);
        };
        // A reader holds the table: DROP SCHEMA … CASCADE waits for its lock.
        await holder.query('BEGIN');
        await holder.query(`LOCK TABLE ${table} IN ACCESS SHARE MODE`);
        const controller = new AbortController();
        const drop = provider.dropSchema(schema, { signal: controller.signal });
        await waitFor(async () => (await waiters()) === 1);
        controller.abort(new Error('stop'));
        await expect(drop).rejects.toThrow('stop');
        // The server cancelled the waiting DROP rather than running it once the lock is free.
        await waitFor(async () => (await waiters()) === 0);
        await holder.query('COMMIT');
        expect(await provider.observeSchema(schema)).toEqual({ exists: true, owner });
        expect(await provider.dropSchema(schema)).toBe('deleted');
      } finally {
        await holder.query('ROLLBACK').catch(() => undefined);
        await provider.dropSchema(schema).catch(() => undefined);
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
