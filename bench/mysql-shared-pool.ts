/**
 * Would new-database apps on one MariaDB server gain from one pool per server, switching the
 * database per checkout, as PostgreSQL schema apps do? N databases with a table each; every
 * query reads its own database's table. Measured in one run, on the shared server (at most
 * N × perApp + poolSize connections of this bench at once):
 * - a first query on a new connection (what a per-app pool pays per new connection) vs on a
 *   warm shared connection after `USE db` vs after `changeUser({database})`;
 * - bursts of N apps × perApp concurrent queries, a first one then `rounds` warm ones: a pool per app (the provider's own
 *   MysqlClient, as apps get it today) vs one shared pool of poolSize with `USE` when the
 *   connection's database differs (tracked per connection) — req/s and connections opened
 *   (the server's `Connections` counter).
 *
 *   node --import tsx bench/mysql-shared-pool.ts [apps=30] [perApp=2] [rounds=20] [poolSize=10]
 */

import { performance } from 'node:perf_hooks';
import mysql from 'mysql2/promise';
import { MysqlClient } from '../src/dialects/mysql/client.js';
import {
  createWorkspace,
  MYSQL_URL,
  numberArg,
  progress,
  report,
  round,
  serverAvailable,
  summarize,
  urlWithDatabase,
  withMysql,
} from './lib.js';

const APPS = Math.max(2, numberArg(0, 30));
const PER_APP = Math.max(1, numberArg(1, 2));
const ROUNDS = Math.max(1, numberArg(2, 20));
const POOL_SIZE = Math.max(1, numberArg(3, 10));

/** The server's count of connections ever opened. */
async function connectionsOpened(admin: mysql.Connection): Promise<number> {
  const [rows] = await admin.query<mysql.RowDataPacket[]>("SHOW GLOBAL STATUS LIKE 'Connections'");
  return Number(rows[0]?.Value);
}

/**
 * One burst of every app × perApp concurrent `query(app)` (the first, which opens the
 * connections), then `rounds` more on warm pools: req/s of each and connections opened in all.
 */
async function burst(
  admin: mysql.Connection,
  names: readonly string[],
  query: (name: string) => Promise<unknown>,
) {
  const before = await connectionsOpened(admin);
  const once = () => Promise.all(names.flatMap((name) => Array.from({ length: PER_APP }, () => query(name))));
  const t0 = performance.now();
  await once();
  const t1 = performance.now();
  for (let r = 0; r < ROUNDS; r++) await once();
  const t2 = performance.now();
  const perRound = names.length * PER_APP;
  return {
    firstRequestsPerSecond: Math.round(perRound / ((t1 - t0) / 1000)),
    warmRequestsPerSecond: Math.round((perRound * ROUNDS) / ((t2 - t1) / 1000)),
    connectionsOpened: (await connectionsOpened(admin)) - before,
  };
}

async function main(): Promise<void> {
  const ws = await createWorkspace('mysql');
  const admin = await mysql.createConnection({ uri: MYSQL_URL });
  try {
    const names = Array.from({ length: APPS }, (_, i) => ws.appName(i));
    progress(`creating ${APPS} databases`);
    for (const name of names) {
      await withMysql(MYSQL_URL, async (c) => {
        await c.query(`CREATE DATABASE \`${name}\``);
        await c.query(`CREATE TABLE \`${name}\`.who (name varchar(64))`);
        await c.query(`INSERT INTO \`${name}\`.who VALUES (?)`, [name]);
      });
    }
    const expectOwn = (name: string, rows: unknown): void => {
      if ((rows as { name: string }[])[0]?.name !== name) throw new Error(`${name} read another database`);
    };

    progress('a first query on a new connection, and on a warm one after USE / changeUser');
    const fresh: number[] = [];
    for (const name of names) {
      const t = performance.now();
      const conn = await mysql.createConnection({ uri: urlWithDatabase(MYSQL_URL, name) });
      const [rows] = await conn.query('SELECT name FROM who');
      fresh.push(performance.now() - t);
      expectOwn(name, rows);
      await conn.end();
    }
    const warm = await mysql.createConnection({ uri: MYSQL_URL });
    const switched = async (how: (name: string) => Promise<unknown>): Promise<number[]> => {
      const ms: number[] = [];
      for (const name of names) {
        const t = performance.now();
        await how(name);
        const [rows] = await warm.query('SELECT name FROM who');
        ms.push(performance.now() - t);
        expectOwn(name, rows);
      }
      return ms;
    };
    const use = await switched((name) => warm.query(`USE \`${name}\``));
    const changeUser = await switched((name) => warm.changeUser({ database: name }));
    await warm.end();

    progress(`burst: a pool per app, ${APPS} apps × ${PER_APP} × ${ROUNDS}`);
    const perAppClients = names.map(
      (name) => new MysqlClient({ uri: urlWithDatabase(MYSQL_URL, name), connectionLimit: PER_APP }),
    );
    const perApp = await burst(admin, names, async (name) => {
      expectOwn(name, await perAppClients[names.indexOf(name)]!.query('SELECT name FROM who'));
    });
    await Promise.all(perAppClients.map((c) => c.close()));

    progress(`burst: one shared pool of ${POOL_SIZE}, USE per checkout`);
    const shared = mysql.createPool({ uri: MYSQL_URL, connectionLimit: POOL_SIZE, maxIdle: POOL_SIZE });
    const current = new WeakMap<mysql.PoolConnection, string>();
    const sharedBurst = await burst(admin, names, async (name) => {
      const conn = await shared.getConnection();
      try {
        if (current.get(conn) !== name) {
          await conn.query(`USE \`${name}\``);
          current.set(conn, name);
        }
        const [rows] = await conn.query('SELECT name FROM who');
        expectOwn(name, rows);
      } finally {
        conn.release();
      }
    });
    await shared.end();

    const f = summarize(fresh);
    const u = summarize(use);
    const cu = summarize(changeUser);
    report(
      `mysql-shared-pool: ${APPS} MariaDB databases, a pool per app vs one shared pool of ${POOL_SIZE} with USE per checkout — node ${process.version}`,
      [
        { figure: 'first query on a new connection, p50 ms', value: f.p50 },
        { figure: 'first query on a warm connection after USE, p50 ms', value: u.p50 },
        { figure: 'first query on a warm connection after changeUser, p50 ms', value: cu.p50 },
        {
          figure: `burst ${APPS} apps × ${PER_APP}, a pool per app: first round req/s, then ${ROUNDS} warm rounds req/s (connections opened)`,
          value: `${perApp.firstRequestsPerSecond}, ${perApp.warmRequestsPerSecond} (${perApp.connectionsOpened})`,
        },
        {
          figure: `the same, one shared pool of ${POOL_SIZE} + USE per checkout`,
          value: `${sharedBurst.firstRequestsPerSecond}, ${sharedBurst.warmRequestsPerSecond} (${sharedBurst.connectionsOpened})`,
        },
      ],
      {
        bench: 'mysql-shared-pool',
        node: process.version,
        apps: APPS,
        perApp: PER_APP,
        rounds: ROUNDS,
        poolSize: POOL_SIZE,
        newConnectionMs: f,
        useMs: u,
        changeUserMs: cu,
        perAppBurst: perApp,
        sharedBurst,
        warmThroughputRatio: round(sharedBurst.warmRequestsPerSecond / perApp.warmRequestsPerSecond, 2),
      },
    );
  } finally {
    await admin.end();
    await ws.dispose();
  }
}

if (await serverAvailable('mysql', MYSQL_URL)) await main();
else console.log(JSON.stringify({ bench: 'mysql-shared-pool', skipped: true }));
