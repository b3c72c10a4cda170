/**
 * backup / restore / clone with more than one application (SPEC §8.4, §8.6): an archive records
 * the app's own application, a clone keeps it, and a restore into an app of another application
 * is refused with nothing changed. SQLite: the application logic is the same on every dialect.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { Settings } from '../../src/config/types.js';
import { AppvisorError } from '../../src/errors.js';
import { backup } from '../../src/ops/backup.js';
import { openOpsContext } from '../../src/ops/context.js';
import { restore } from '../../src/ops/restore.js';
import { applyPlan, computePlan } from '../../src/reconcile/commands.js';
import { openStateStore } from '../../src/state/store.js';
import { onAppDatabase } from '../helpers/app-sql.js';
import { masterKeyIn } from '../helpers/master-key.js';
import { manifest, testSettings } from '../reconcile/dialects.js';

const log = pino({ level: 'silent' });
const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'applications');
const applications = {
  guestbook: path.join(FIXTURES, 'guestbook.mjs'),
  crm: path.join(FIXTURES, 'crm.mjs'),
};

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await fs.rm(d, { recursive: true, force: true });
});

/** A fresh folder with apps.d and settings naming both applications, on SQLite. */
async function setUp(): Promise<Settings> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-ops-apps-'));
  dirs.push(dir);
  await fs.mkdir(path.join(dir, 'apps.d'));
  const settings = testSettings(dir, `sqlite:${path.join(dir, 'data', 'main.sqlite')}`);
  return { ...settings, applications, backupsDir: path.join(dir, 'backups') };
}

describe('backup and restore of an app of a named application', () => {
  it("records the app's application, and a clone keeps it", async () => {
    const settings = await setUp();
    await fs.writeFile(path.join(settings.appsDir, 'desk.yaml'), manifest('desk', 'application: crm\n'));
    expect((await applyPlan(settings, { log })).failures).toEqual([]);
    await onAppDatabase(
      'sqlite',
      settings.database.url,
      'desk',
      "INSERT INTO crm_contacts VALUES (1, 'a@b.c')",
    );

    const ops = await openOpsContext(settings, { log, env: {}, by: 'test' });
    try {
      const archive = await backup(ops, 'desk');
      expect(archive.meta.application).toEqual({ name: 'crm-app', version: 1 });
      await restore(ops, archive.file, { as: 'desk2' });
    } finally {
      await ops.close();
    }
    expect(await fs.readFile(path.join(settings.appsDir, 'desk2.yaml'), 'utf8')).toContain(
      'application: crm',
    );
    expect(
      await onAppDatabase('sqlite', settings.database.url, 'desk2', 'SELECT email FROM crm_contacts'),
    ).toEqual([{ email: 'a@b.c' }]);
    const store = await openStateStore(settings.database.url, {
      masterKey: await masterKeyIn(settings.dataDir),
    });
    try {
      expect((await store.getRecord('desk2'))?.application).toBe('crm-app');
    } finally {
      await store.close();
    }
    expect((await computePlan(settings)).changes).toEqual([]);
  });

  it("refuses a CRM archive restored into the guestbook's app of that name, and changes nothing", async () => {
    const crmSide = await setUp();
    await fs.writeFile(path.join(crmSide.appsDir, 'desk.yaml'), manifest('desk', 'application: crm\n'));
    expect((await applyPlan(crmSide, { log })).failures).toEqual([]);
    const ops = await openOpsContext(crmSide, { log, env: {}, by: 'test' });
    const archive = await backup(ops, 'desk').finally(() => ops.close());

    // Another installation (the same master key) where app desk runs the guestbook.
    const bookSide = await setUp();
    await fs.mkdir(bookSide.dataDir, { recursive: true });
    await fs.copyFile(path.join(crmSide.dataDir, 'master-key'), path.join(bookSide.dataDir, 'master-key'));
    await fs.writeFile(
      path.join(bookSide.appsDir, 'desk.yaml'),
      manifest('desk', 'application: guestbook\n'),
    );
    expect((await applyPlan(bookSide, { log })).failures).toEqual([]);
    const other = await openOpsContext(bookSide, { log, env: {}, by: 'test' });
    const refused = await restore(other, archive.file).then(
      () => undefined,
      (err: unknown) => err,
    );
    await other.close();
    expect(refused).toBeInstanceOf(AppvisorError);
    expect(refused).toMatchObject({ code: 'APP_WRONG_APPLICATION' });
    expect((refused as AppvisorError).message).toContain(
      "app desk's data belongs to application crm-app, but this appvisor runs application guestbook-app",
    );
    const tables = await onAppDatabase(
      'sqlite',
      bookSide.database.url,
      'desk',
      "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1",
    );
    expect(tables.map((t) => t.name)).toContain('guestbook_entries');
    expect(tables.map((t) => t.name)).not.toContain('crm_contacts');
  });
});
