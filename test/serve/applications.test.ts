/**
 * `serve` with more than one application (SPEC §8.6): apps of two applications and of the
 * default one answer side by side through the gateway; the admin API names each app's
 * application; an unknown application is an invalid manifest (the app serves on); a change of
 * application on data is refused (status error, APP_WRONG_APPLICATION) and runs nothing on it:
 * an instance already running (the last applied application, the data's owner) serves on.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import sample from '../../src/sample-app/index.js';
import { onAppDatabase } from '../helpers/app-sql.js';
import { DIALECTS } from '../reconcile/dialects.js';
import { manifest, type Serve, startServe, waitFor } from './harness.js';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'applications');
const applications = {
  guestbook: path.join(FIXTURES, 'guestbook.mjs'),
  crm: path.join(FIXTURES, 'crm.mjs'),
};

describe.each(DIALECTS.filter((d) => d.name !== 'mysql'))('serve: two applications on $name', (dialect) => {
  let serve: Serve | undefined;
  let dir: string | undefined;
  let mainUrl: string | undefined;
  const prefix = `t${Math.random().toString(36).slice(2, 8)}`;

  afterEach(async () => {
    await serve?.close();
    serve = undefined;
    if (mainUrl) await dialect.cleanup(prefix, mainUrl);
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('serves each app with its own application, and shows which', async (ctx) => {
    if (!dialect.available) ctx.skip();
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-serve-apps-'));
    mainUrl = await dialect.mainUrl(dir);
    const [book, desk, notes] = [`${prefix}book`, `${prefix}desk`, `${prefix}notes`];
    serve = await startServe({
      dir,
      databaseUrl: mainUrl,
      settings: { applications },
      manifests: {
        'book.yaml': manifest(book, 'application: guestbook\n'),
        'desk.yaml': manifest(desk, 'application: crm\n'),
        'notes.yaml': manifest(notes),
      },
    });
    const s = serve;
    expect((await s.request(`/apps/${book}/`)).body).toEqual({
      application: 'guestbook-app',
      app: book,
      entries: 0,
    });
    expect((await s.request(`/apps/${desk}/`)).body).toEqual({
      application: 'crm-app',
      app: desk,
      contacts: 0,
    });
    const version = String(sample.version);
    expect((await s.request(`/apps/${notes}/api/info`)).body).toEqual({ name: notes, version });
    // The main app keeps the default application.
    expect((await s.request('/api/info')).body).toEqual({ name: 'main', version });

    expect((await s.view(book)).application).toEqual({ key: 'guestbook', name: 'guestbook-app', version: 1 });
    expect((await s.view(desk)).application).toEqual({ key: 'crm', name: 'crm-app', version: 1 });
    expect((await s.view(notes)).application).toEqual({
      key: null,
      name: 'appvisor-sample',
      version: sample.version,
    });
    const list = await s.admin('/apps');
    expect(
      list.body.map((a: { name: string; application: { key: string | null } }) => a.application.key),
    ).toEqual(['guestbook', 'crm', null]);

    // An unknown application: an invalid manifest, the app serves on its last applied spec.
    await s.write('desk.yaml', manifest(desk, 'application: crmm\n'));
    const invalid = await waitFor(async () => {
      const v = await s.view(desk);
      return v.error?.code === 'MANIFEST_INVALID' ? v : undefined;
    }, 'the unknown application reported');
    expect(invalid.error?.message).toContain("desk.yaml:4:14: application 'crmm' is not listed");
    expect(invalid.error?.message).toContain("did you mean 'crm'?");
    expect((await s.request(`/apps/${desk}/`)).body).toEqual({
      application: 'crm-app',
      app: desk,
      contacts: 0,
    });

    // Another application on the book's data: refused, nothing run on it, the others serve on.
    await s.write('book.yaml', manifest(book, 'application: crm\n'));
    const refused = await waitFor(async () => {
      const v = await s.view(book);
      return v.error?.code === 'APP_WRONG_APPLICATION' ? v : undefined;
    }, 'the change of application refused');
    expect(refused.status).toBe('error');
    expect(refused.error?.message).toContain('belongs to application guestbook-app');
    // The running instance is the last applied one (guestbook, the data's owner): it answers on,
    // as an app whose manifest is invalid does; crm-app never ran on the data.
    expect((await s.request(`/apps/${book}/`)).body).toEqual({
      application: 'guestbook-app',
      app: book,
      entries: 0,
    });
    const plan = await s.admin('/plan');
    expect(plan.body.changes).toEqual([
      expect.objectContaining({
        app: book,
        action: 'refuse',
        detail: expect.stringContaining('guestbook-app'),
      }),
    ]);
    expect((await s.request(`/apps/${notes}/api/info`)).status).toBe(200);
  });

  it('moves a running app whose data is empty to another application: restarted on the new one', async (ctx) => {
    if (!dialect.available) ctx.skip();
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-serve-move-'));
    mainUrl = await dialect.mainUrl(dir);
    const book = `${prefix}move`;
    serve = await startServe({
      dir,
      databaseUrl: mainUrl,
      settings: { applications },
      manifests: { 'book.yaml': manifest(book, 'application: guestbook\nstartMode: with-main\n') },
    });
    const s = serve;
    expect((await s.request(`/apps/${book}/`)).body).toMatchObject({ application: 'guestbook-app' });
    // Emptied by hand: the guestbook's table and the data version go.
    await onAppDatabase(
      dialect.name,
      mainUrl,
      book,
      'DROP TABLE guestbook_entries; DELETE FROM appvisor_data_version',
    );
    await s.write('book.yaml', manifest(book, 'application: crm\nstartMode: with-main\n'));
    await waitFor(async () => (await s.view(book)).application?.key === 'crm', 'the app on crm');
    const moved = await waitFor(async () => {
      const answer = await s.request(`/apps/${book}/`);
      return answer.body?.application === 'crm-app' ? answer : undefined;
    }, 'the app restarted on crm-app');
    expect(moved.body).toEqual({ application: 'crm-app', app: book, contacts: 0 });
    expect((await s.view(book)).status).toBe('running');
    const owner = await onAppDatabase(
      dialect.name,
      mainUrl,
      book,
      'SELECT name FROM appvisor_application ORDER BY version DESC LIMIT 1',
    );
    expect(owner).toEqual([{ name: 'crm-app' }]);
  });
});
