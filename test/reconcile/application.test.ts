/**
 * Application identity end to end (SPEC §8.6): data that one application made is never touched
 * by another. `plan` refuses before any statement, `apply` fails for that app alone, and the
 * app's own database is the last word when the record lost track of its owner.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Settings } from '../../src/config/types.js';
import { applyPlan, computePlan } from '../../src/reconcile/commands.js';
import { openStateStore } from '../../src/state/store.js';
import { DIALECTS, log, MY, manifest, testSettings } from './dialects.js';

/** A custom application: its own name and two migrations of its own. */
const CRM_MODULE = `export default {
  name: 'crm-app',
  version: 2,
  migrations: [
    { version: 1, description: 'deals', up: (db) => db.exec('CREATE TABLE IF NOT EXISTS deals (id INTEGER)') },
    { version: 2, description: 'deal notes', up: (db) => db.exec('CREATE TABLE IF NOT EXISTS deal_notes (id INTEGER)') },
  ],
  create: () => ({ handler: (req, res) => res.end('crm') }),
};
`;

/** The tables of app database `name` on the test's main server. */
async function tablesOf(dialect: string, mainUrl: string, name: string): Promise<string[]> {
  switch (dialect) {
    case 'sqlite': {
      const file = path.join(path.dirname(mainUrl.slice('sqlite:'.length)), 'apps', `${name}.sqlite`);
      const db = new Database(file, { readonly: true });
      try {
        const rows = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as {
          name: string;
        }[];
        return rows.map((r) => r.name).sort();
      } finally {
        db.close();
      }
    }
    case 'postgres': {
      const u = new URL(mainUrl);
      u.pathname = `/${name}`;
      const c = new pg.Client({ connectionString: u.toString() });
      await c.connect();
      try {
        const { rows } = await c.query<{ t: string }>(
          "SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
        );
        return rows.map((r) => r.t);
      } finally {
        await c.end();
      }
    }
    default: {
      const c = await mysql.createConnection({ uri: MY.url });
      try {
        const [rows] = await c.query<mysql.RowDataPacket[]>(
          'SELECT TABLE_NAME AS t FROM information_schema.tables WHERE table_schema = ? ORDER BY 1',
          [name],
        );
        return rows.map((r) => String(r.t));
      } finally {
        await c.end();
      }
    }
  }
}

describe.each(DIALECTS)('application identity on $name', (dialect) => {
  let dir: string;
  let prefix: string;
  let mainUrl: string;
  let sample: Settings;
  let crm: Settings;

  beforeEach(async (ctx) => {
    if (!dialect.available) ctx.skip();
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-identity-'));
    const appsDir = path.join(dir, 'apps.d');
    await fs.mkdir(appsDir);
    prefix = `t${Math.random().toString(36).slice(2, 8)}`;
    mainUrl = await dialect.mainUrl(dir);
    const module = path.join(dir, 'crm-app.mjs');
    await fs.writeFile(module, CRM_MODULE);
    sample = testSettings(dir, mainUrl);
    crm = { ...sample, app: module };
  });

  afterEach(async () => {
    if (!dialect.available) return;
    await dialect.cleanup(prefix, mainUrl);
    await fs.rm(dir, { recursive: true, force: true });
  });

  it("refuses the wrong application before any statement, and the app's database has the last word", async () => {
    const name = `${prefix}crm`;
    await fs.writeFile(path.join(sample.appsDir, 'crm.yaml'), manifest(name));
    expect((await applyPlan(crm, { log })).failures).toEqual([]);
    const made = await tablesOf(dialect.name, mainUrl, name);
    expect(made).toEqual(expect.arrayContaining(['deals', 'deal_notes', 'appvisor_application']));
    const store = await openStateStore(mainUrl);
    expect((await store.getRecord(name))?.application).toBe('crm-app');

    // The built-in sample app (no APPVISOR_APP) on crm's data: refused, naming both.
    const refused = await computePlan(sample);
    expect(refused.changes.map((c) => [c.app, c.action, c.code])).toEqual([
      [name, 'refuse', 'APP_WRONG_APPLICATION'],
    ]);
    expect(refused.changes[0]?.detail).toBe(
      `app ${name}'s data belongs to application crm-app, but this appvisor runs application appvisor-sample on it; nothing was run. Pick the application that owns the data (the manifest's application: <name> from settings applications, or settings app / APPVISOR_APP for an app that names none), give the app another database, or empty its data (drop its tables) to move it to appvisor-sample`,
    );
    const failed = await applyPlan(sample, { log });
    expect(failed.failures).toMatchObject([{ app: name, code: 'APP_WRONG_APPLICATION' }]);
    expect(await tablesOf(dialect.name, mainUrl, name)).toEqual(made);

    // A record that lost track of its owner: the plan claims, the app's database refuses.
    const record = (await store.getRecord(name))!;
    const { application: _owner, ...unowned } = record;
    await store.putRecord(unowned, await store.beginTerm());
    const claim = await computePlan(sample);
    expect(claim.changes.map((c) => [c.action, c.detail])).toEqual([
      [
        'update-record',
        "claim the app's data for application appvisor-sample (no owning application was recorded)",
      ],
    ]);
    const again = await applyPlan(sample, { log });
    expect(again.failures).toMatchObject([{ app: name, code: 'APP_WRONG_APPLICATION' }]);
    expect(await tablesOf(dialect.name, mainUrl, name)).toEqual(made);
    expect((await store.getRecord(name))?.application).toBeUndefined();

    // The right application claims it back and has nothing else to do.
    expect((await applyPlan(crm, { log })).failures).toEqual([]);
    expect((await store.getRecord(name))?.application).toBe('crm-app');
    expect((await computePlan(crm)).changes).toEqual([]);
    await store.close();
  });

  it('data with no owner recorded anywhere is claimed by the first application that runs on it', async () => {
    const name = `${prefix}old`;
    await fs.writeFile(path.join(sample.appsDir, 'old.yaml'), manifest(name));
    expect((await applyPlan(sample, { log })).failures).toEqual([]);
    // What an appvisor from before owners were recorded left behind.
    const store = await openStateStore(mainUrl);
    const { application: _owner, ...unowned } = (await store.getRecord(name))!;
    await store.putRecord(unowned, await store.beginTerm());
    await dropMarker(dialect.name, mainUrl, name);
    expect((await computePlan(sample)).changes.map((c) => c.action)).toEqual(['update-record']);
    expect((await applyPlan(sample, { log })).failures).toEqual([]);
    expect((await store.getRecord(name))?.application).toBe('appvisor-sample');
    expect(await tablesOf(dialect.name, mainUrl, name)).toContain('appvisor_application');
    // From now on crm-app is refused on it.
    expect((await computePlan(crm)).changes.map((c) => c.code)).toEqual(['APP_WRONG_APPLICATION']);
    await store.close();
  });
});

async function dropMarker(dialect: string, mainUrl: string, name: string): Promise<void> {
  const sql = 'DROP TABLE appvisor_application';
  if (dialect === 'sqlite') {
    const db = new Database(
      path.join(path.dirname(mainUrl.slice('sqlite:'.length)), 'apps', `${name}.sqlite`),
    );
    db.exec(sql);
    db.close();
  } else if (dialect === 'postgres') {
    const u = new URL(mainUrl);
    u.pathname = `/${name}`;
    const c = new pg.Client({ connectionString: u.toString() });
    await c.connect();
    await c.query(sql);
    await c.end();
  } else {
    const c = await mysql.createConnection({ uri: MY.url, database: name });
    await c.query(sql);
    await c.end();
  }
}
