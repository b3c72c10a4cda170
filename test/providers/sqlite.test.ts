/** SQLite specifics: files appear complete or not at all, and stale side files never leak in. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteProvider } from '../../src/dialects/sqlite/provider.js';
import { AppvisorError } from '../../src/errors.js';

const owner = 'appvisor:store:app';

describe('SQLite provider', () => {
  let dataDir: string;
  let provider: SqliteProvider;
  const appsDir = (): string => path.join(dataDir, 'apps');
  const filesIn = (dir: string): string[] => (fs.existsSync(dir) ? fs.readdirSync(dir).sort() : []);

  beforeEach(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'appvisor-sqlite-'));
    provider = new SqliteProvider({ dataDir });
  });

  afterEach(async () => {
    await provider.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('keeps database x in <dataDir>/apps/x.sqlite and names the data folder as its server', async () => {
    expect(await provider.createDatabase('crm', owner)).toBe('created');
    expect(filesIn(appsDir())).toEqual(['crm.sqlite']);
    expect(provider.fileOf('crm')).toBe(path.join(dataDir, 'apps', 'crm.sqlite'));
    expect(provider.server).toBe(`sqlite:${dataDir}`);
  });

  it('never creates anything when observing or opening an absent database', async () => {
    expect(await provider.observeDatabase('crm')).toEqual({ exists: false });
    const err = await provider.openDatabase('crm').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppvisorError);
    expect((err as AppvisorError).code).toBe('DB_OPERATION_FAILED');
    expect(filesIn(dataDir)).toEqual([]);
  });

  it('does not take a half-made file left by a crash for the database', async () => {
    fs.mkdirSync(appsDir(), { recursive: true });
    fs.writeFileSync(path.join(appsDir(), '.crm.0123456789ab.tmp'), 'half written');
    expect(await provider.observeDatabase('crm')).toEqual({ exists: false });
    expect(await provider.createDatabase('crm', owner)).toBe('created');
    expect(await provider.observeDatabase('crm')).toEqual({ exists: true, owner });
  });

  it('sees the marker while an app holds the database open with unwritten WAL frames', async () => {
    await provider.createDatabase('crm', owner);
    const app = await provider.openDatabase('crm');
    try {
      await app.client.exec('CREATE TABLE t (x INTEGER)');
      await app.client.query('INSERT INTO t (x) VALUES (?)', [1]);
      expect(fs.existsSync(`${provider.fileOf('crm')}-wal`)).toBe(true);
      expect(await provider.observeDatabase('crm')).toEqual({ exists: true, owner });
    } finally {
      await app.client.close();
    }
  });

  it('never lets a stale -wal of a dropped database into a new one of the same name', async () => {
    const file = provider.fileOf('crm');
    await provider.createDatabase('crm', owner);
    const app = await provider.openDatabase('crm');
    await app.client.exec('CREATE TABLE old_data (x INTEGER)');
    await app.client.query('INSERT INTO old_data (x) VALUES (?)', [1]);
    const staleWal = fs.readFileSync(`${file}-wal`);
    expect(await provider.dropDatabase('crm')).toBe('deleted');
    expect(filesIn(appsDir())).toEqual([]);

    // A crash left the old -wal behind.
    fs.writeFileSync(`${file}-wal`, staleWal);
    expect(await provider.createDatabase('crm', owner)).toBe('created');
    const fresh = await provider.openDatabase('crm');
    try {
      const tables = await fresh.client.query<{ name: string }>(
        "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
      );
      expect(tables.map((t) => t.name)).toEqual(['_appvisor_owner']);
      expect(await fresh.client.query('PRAGMA integrity_check')).toEqual([{ integrity_check: 'ok' }]);
    } finally {
      await fresh.client.close();
    }
  });

  it('closes app handles when it drops their database and leaves no side files', async () => {
    await provider.createDatabase('crm', owner);
    const app = await provider.openDatabase('crm');
    await app.client.exec('CREATE TABLE t (x INTEGER)');
    expect(await provider.dropDatabase('crm')).toBe('deleted');
    expect(filesIn(appsDir())).toEqual([]);
    await expect(app.client.query('SELECT 1')).rejects.toThrow(/not open/);
  });

  it('reports a foreign SQLite database (no marker table) as existing without owner', async () => {
    fs.mkdirSync(appsDir(), { recursive: true });
    const db = new Database(path.join(appsDir(), 'crm.sqlite'));
    db.exec('CREATE TABLE theirs (x INTEGER)');
    db.close();
    expect(await provider.observeDatabase('crm')).toEqual({ exists: true });
    expect(await provider.createDatabase('crm', owner)).toBe('unchanged');
  });

  it('fails with DB_OPERATION_FAILED when the data folder cannot hold databases', async () => {
    const notADir = path.join(dataDir, 'file');
    fs.writeFileSync(notADir, '');
    const broken = new SqliteProvider({ dataDir: notADir });
    const err = await broken.createDatabase('crm', owner).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppvisorError);
    expect((err as AppvisorError).code).toBe('DB_OPERATION_FAILED');
    expect((err as AppvisorError).message).toContain('ENOTDIR');
  });

  /** What a create killed before its link into place leaves: a hidden, marked temporary file. */
  function leaveHalfMade(name: string): string {
    const file = `.${name}.${'ab'.repeat(6)}.tmp`;
    const db = new Database(path.join(appsDir(), file));
    db.exec('CREATE TABLE _appvisor_owner (owner TEXT NOT NULL, created_at TEXT NOT NULL)');
    db.prepare('INSERT INTO _appvisor_owner VALUES (?, ?)').run(owner, new Date().toISOString());
    db.close();
    return file;
  }

  it('finds a half-made file whenever it appears, also between listings that found none', async () => {
    expect(await provider.createDatabase('crm', owner)).toBe('created');
    expect(await provider.listLeftovers()).toEqual([]);
    expect(await provider.listLeftovers()).toEqual([]);
    const file = leaveHalfMade('notes');
    expect(await provider.listLeftovers()).toEqual([{ name: file, owner }]);
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(await provider.listLeftovers()).toEqual([{ name: file, owner }]);
    expect(await provider.sweepLeftover(file, owner)).toBe('deleted');
    expect(await provider.listLeftovers()).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(await provider.listLeftovers()).toEqual([]);
    const again = leaveHalfMade('wiki');
    expect(await provider.listLeftovers()).toEqual([{ name: again, owner }]);
  });
});
