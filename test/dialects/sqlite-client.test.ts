import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteClient } from '../../src/dialects/sqlite/client.js';

const dirs: string[] = [];
const clients: SqliteClient[] = [];

function open(): SqliteClient {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'appvisor-sqlite-client-'));
  dirs.push(dir);
  const client = new SqliteClient(path.join(dir, 'db.sqlite'));
  clients.push(client);
  return client;
}

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

describe('SqliteClient: one handle, several callers at once', () => {
  it('keeps a statement run during an open transaction out of it: a rollback does not take it along', async () => {
    const client = open();
    await client.exec('CREATE TABLE t (v TEXT)');
    let inside!: () => void;
    const entered = new Promise<void>((resolve) => {
      inside = resolve;
    });
    let finish!: () => void;
    const held = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const rolledBack = client.transaction(async (tx) => {
      await tx.execute('INSERT INTO t (v) VALUES (?)', ['in the transaction']);
      inside();
      await held;
      throw new Error('roll back');
    });
    await entered;
    // Another caller (another reconcile) writes while the transaction waits.
    const outside = client.execute('INSERT INTO t (v) VALUES (?)', ['outside']);
    finish();
    await expect(rolledBack).rejects.toThrow('roll back');
    expect(await outside).toBe(1);
    expect(await client.query('SELECT v FROM t')).toEqual([{ v: 'outside' }]);
  });

  it('runs a batch all or nothing, and says which statement changed other rows than expected', async () => {
    const client = open();
    await client.exec('CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER)');
    await client.execute("INSERT INTO t (k, n) VALUES ('a', 1)");
    const refused = await client.executeBatch([
      { sql: 'UPDATE t SET n = n + 1 WHERE k = ?', params: ['a'], expect: 1 },
      { sql: 'UPDATE t SET n = n + 1 WHERE k = ?', params: ['missing'], expect: 1 },
    ]);
    expect(refused).toBe(1);
    expect(await client.query('SELECT n FROM t')).toEqual([{ n: 1 }]);
    expect(
      await client.executeBatch([
        { sql: 'UPDATE t SET n = n + 1 WHERE k = ?', params: ['a'], expect: 1 },
        { sql: "INSERT INTO t (k, n) VALUES ('b', 0)", params: [] },
      ]),
    ).toBeUndefined();
    expect(await client.query('SELECT k, n FROM t ORDER BY k')).toEqual([
      { k: 'a', n: 2 },
      { k: 'b', n: 0 },
    ]);
  });
});
