/**
 * More than one application (SPEC §8.6): settings `applications` and a manifest's `application`
 * pick per app what runs on its data; plan and apply install, claim, upgrade and refuse per app,
 * on SQLite and PostgreSQL. Real modules (test/fixtures/applications), real databases.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Settings } from '../../src/config/types.js';
import { applyPlan, computePlan } from '../../src/reconcile/commands.js';
import { openStateStore } from '../../src/state/store.js';
import { onAppDatabase } from '../helpers/app-sql.js';
import { DIALECTS, log, manifest, testSettings } from './dialects.js';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'applications');
const GUESTBOOK = path.join(FIXTURES, 'guestbook.mjs');
const CRM = path.join(FIXTURES, 'crm.mjs');

/** Guestbook at version 2: one more migration, same name (an upgrade of that application alone). */
const GUESTBOOK_V2 = `import base from ${JSON.stringify(GUESTBOOK)};
export default {
  ...base,
  version: 2,
  migrations: [
    ...base.migrations,
    { version: 2, description: 'likes', up: (db) => db.exec('CREATE TABLE IF NOT EXISTS guestbook_likes (id INTEGER)') },
  ],
};
`;

async function tablesOf(dialect: string, mainUrl: string, name: string): Promise<string[]> {
  const sql =
    dialect === 'sqlite'
      ? "SELECT name AS t FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%' ORDER BY 1"
      : "SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public' ORDER BY 1";
  return (await onAppDatabase(dialect, mainUrl, name, sql)).map((r) => String(r.t));
}

async function ownerOf(dialect: string, mainUrl: string, name: string): Promise<string> {
  const rows = await onAppDatabase(
    dialect,
    mainUrl,
    name,
    'SELECT name FROM appvisor_application ORDER BY version DESC LIMIT 1',
  );
  return String(rows[0]?.name);
}

async function dataVersionOf(dialect: string, mainUrl: string, name: string): Promise<number> {
  const rows = await onAppDatabase(
    dialect,
    mainUrl,
    name,
    'SELECT MAX(version) AS v FROM appvisor_data_version',
  );
  return Number(rows[0]?.v);
}

const plannedOf = (changes: readonly { app: string; action: string }[]) =>
  changes.map((c) => `${c.app} ${c.action}`);

describe.each(DIALECTS.filter((d) => d.name !== 'mysql'))('two applications on $name', (dialect) => {
  let dir: string;
  let prefix: string;
  let mainUrl: string;
  let settings: Settings;
  const write = (file: string, text: string): Promise<void> =>
    fs.writeFile(path.join(settings.appsDir, file), text);

  beforeEach(async (ctx) => {
    if (!dialect.available) ctx.skip();
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-apps-'));
    await fs.mkdir(path.join(dir, 'apps.d'));
    prefix = `t${Math.random().toString(36).slice(2, 8)}`;
    mainUrl = await dialect.mainUrl(dir);
    settings = { ...testSettings(dir, mainUrl), applications: { guestbook: GUESTBOOK, crm: CRM } };
  });

  afterEach(async () => {
    if (!dialect.available) return;
    await dialect.cleanup(prefix, mainUrl);
    await fs.rm(dir, { recursive: true, force: true });
  });

  it("installs each app's own application: its tables, its marker, its record", async () => {
    const [book, desk, notes] = [`${prefix}book`, `${prefix}desk`, `${prefix}notes`];
    await write('book.yaml', manifest(book, 'application: guestbook\n'));
    await write('desk.yaml', manifest(desk, 'application: crm\n'));
    await write('notes.yaml', manifest(notes));
    expect((await applyPlan(settings, { log })).failures).toEqual([]);

    expect(await tablesOf(dialect.name, mainUrl, book)).toContain('guestbook_entries');
    expect(await tablesOf(dialect.name, mainUrl, book)).not.toContain('crm_contacts');
    expect(await tablesOf(dialect.name, mainUrl, desk)).toContain('crm_contacts');
    expect(await tablesOf(dialect.name, mainUrl, desk)).not.toContain('guestbook_entries');
    // The default application (the built-in sample app) for the app that names none.
    expect(await tablesOf(dialect.name, mainUrl, notes)).not.toContain('guestbook_entries');
    expect(await ownerOf(dialect.name, mainUrl, book)).toBe('guestbook-app');
    expect(await ownerOf(dialect.name, mainUrl, desk)).toBe('crm-app');
    expect(await ownerOf(dialect.name, mainUrl, notes)).toBe('appvisor-sample');
    const store = await openStateStore(mainUrl);
    try {
      expect((await store.getRecord(book))?.application).toBe('guestbook-app');
      expect((await store.getRecord(desk))?.application).toBe('crm-app');
      expect((await store.getRecord(notes))?.application).toBe('appvisor-sample');
    } finally {
      await store.close();
    }
    // Converged: each app is at its own application's version, nothing is left to do.
    expect((await computePlan(settings)).changes).toEqual([]);
  });

  it('a manifest naming an unknown application is an invalid file, at the value, with a suggestion', async () => {
    await write('desk.yaml', manifest(`${prefix}desk`, 'application: crmm\n'));
    await write('book.yaml', manifest(`${prefix}book`, 'application: guestbook\n'));
    const planned = await computePlan(settings);
    expect(planned.errors).toEqual([
      {
        file: expect.stringMatching(/desk\.yaml$/),
        line: 4,
        column: 14,
        message:
          "application 'crmm' is not listed under applications in appvisor.yaml (known: crm, guestbook); did you mean 'crm'?; or remove application to run the default one",
      },
    ]);
    // The other app is planned as usual; the invalid one is not created (and never removed).
    expect(planned.changes.some((c) => c.app === `${prefix}desk`)).toBe(false);
    expect(planned.changes.some((c) => c.app === `${prefix}book` && c.action === 'create-record')).toBe(true);
  });

  it('refuses to change the application of an app with data, and touches nothing of it', async () => {
    const book = `${prefix}book`;
    await write('book.yaml', manifest(book, 'application: guestbook\n'));
    expect((await applyPlan(settings, { log })).failures).toEqual([]);
    const tables = await tablesOf(dialect.name, mainUrl, book);

    await write('book.yaml', manifest(book, 'application: crm\n'));
    const refused = await computePlan(settings);
    expect(refused.changes.map((c) => [c.app, c.action, c.code])).toEqual([
      [book, 'refuse', 'APP_WRONG_APPLICATION'],
    ]);
    expect(refused.changes[0]?.detail).toContain(
      `app ${book}'s data belongs to application guestbook-app, but this appvisor runs application crm-app on it`,
    );
    expect(refused.changes[0]?.detail).toContain('give the app another database, or empty its data');
    const failed = await applyPlan(settings, { log });
    expect(failed.failures).toMatchObject([{ app: book, code: 'APP_WRONG_APPLICATION' }]);
    expect(await tablesOf(dialect.name, mainUrl, book)).toEqual(tables);
    expect(await ownerOf(dialect.name, mainUrl, book)).toBe('guestbook-app');
  });

  it('moves an app whose data is empty to another application: plan shows it, apply installs the new one', async () => {
    const book = `${prefix}book`;
    await write('book.yaml', manifest(book, 'application: guestbook\nstartMode: with-main\n'));
    expect((await applyPlan(settings, { log })).failures).toEqual([]);
    // Emptied by hand, as the refusal says: the application's tables and its data version go.
    await onAppDatabase(
      dialect.name,
      mainUrl,
      book,
      'DROP TABLE guestbook_entries; DELETE FROM appvisor_data_version',
    );

    await write('book.yaml', manifest(book, 'application: crm\nstartMode: with-main\n'));
    const planned = await computePlan(settings);
    expect(planned.changes.map((c) => [c.action, c.detail])).toEqual([
      ['update-record', "the app's data is empty: it moves from application guestbook-app to crm-app"],
      ['upgrade', 'migrate to version 1'],
      ['restart', 'application guestbook → crm'],
    ]);
    expect(planned.changes.find((c) => c.action === 'restart')?.application).toEqual({
      from: 'guestbook',
      to: 'crm',
    });
    expect((await applyPlan(settings, { log })).failures).toEqual([]);
    expect(await tablesOf(dialect.name, mainUrl, book)).toContain('crm_contacts');
    expect(await ownerOf(dialect.name, mainUrl, book)).toBe('crm-app');
    const store = await openStateStore(mainUrl);
    try {
      expect((await store.getRecord(book))?.application).toBe('crm-app');
    } finally {
      await store.close();
    }
    expect((await computePlan(settings)).changes).toEqual([]);
  });

  it("an upgrade of one application migrates only that application's apps", async () => {
    const [book, desk] = [`${prefix}book`, `${prefix}desk`];
    await write('book.yaml', manifest(book, 'application: guestbook\n'));
    await write('desk.yaml', manifest(desk, 'application: crm\n'));
    expect((await applyPlan(settings, { log })).failures).toEqual([]);

    const v2 = path.join(dir, 'guestbook-v2.mjs');
    await fs.writeFile(v2, GUESTBOOK_V2);
    const upgraded: Settings = { ...settings, applications: { guestbook: v2, crm: CRM } };
    const planned = await computePlan(upgraded);
    expect(plannedOf(planned.changes)).toEqual([`${book} upgrade`]);
    expect(planned.changes[0]?.detail).toBe('migrate to version 2 (data at version 1)');
    expect((await applyPlan(upgraded, { log })).failures).toEqual([]);
    expect(await dataVersionOf(dialect.name, mainUrl, book)).toBe(2);
    expect(await tablesOf(dialect.name, mainUrl, book)).toContain('guestbook_likes');
    expect(await dataVersionOf(dialect.name, mainUrl, desk)).toBe(1);
    expect(await tablesOf(dialect.name, mainUrl, desk)).not.toContain('guestbook_likes');
  });
});
