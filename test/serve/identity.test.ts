/**
 * `serve` with another application than the one that made an app's data (SPEC §8.6): the app
 * is `error` with APP_WRONG_APPLICATION, visits get 503 naming both applications, nothing runs
 * on its data, and the other apps serve on.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { manifest, type Serve, startServe } from './harness.js';

const serves: Serve[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const s of serves.splice(0)) await s.close();
  for (const d of dirs.splice(0)) await fs.rm(d, { recursive: true, force: true });
});

const GUESTBOOK = `export default {
  name: 'guestbook',
  version: 1,
  migrations: [{ version: 1, description: 'entries', up: (db) => db.exec('CREATE TABLE IF NOT EXISTS entries (id INTEGER)') }],
  create: (ctx) => ({ handler: (req, res) => res.end('guestbook ' + ctx.name) }),
};
`;

describe('serve: application identity', () => {
  it('marks an app whose data another application owns as error, and answers its visits 503', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-identity-'));
    dirs.push(dir);
    const module = path.join(dir, 'guestbook.mjs');
    await fs.writeFile(module, GUESTBOOK);
    const first = await startServe({ dir, app: module, manifests: { 'book.yaml': manifest('book') } });
    expect((await first.request('/apps/book/')).text).toBe('guestbook book');
    await first.close();

    // The same data dir under the built-in sample app (APPVISOR_APP forgotten).
    const s = await startServe({
      dir,
      manifests: { 'book.yaml': manifest('book'), 'desk.yaml': manifest('desk') },
    });
    serves.push(s);
    const view = await s.view('book');
    expect(view.status).toBe('error');
    expect(view.error?.code).toBe('APP_WRONG_APPLICATION');
    const visit = await s.request('/apps/book/api/info');
    expect(visit.status).toBe(503);
    expect(visit.body.error.code).toBe('APP_WRONG_APPLICATION');
    expect(visit.body.error.message).toContain(
      'belongs to application guestbook, but this appvisor runs application appvisor-sample',
    );
    expect((await s.request('/apps/desk/api/info')).status).toBe(200);
    const plan = await s.admin('/plan');
    expect(plan.body.changes).toEqual([expect.objectContaining({ app: 'book', action: 'refuse' })]);
  });
});
