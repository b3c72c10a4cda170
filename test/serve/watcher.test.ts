import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { type ManifestWatcher, watchManifests } from '../../src/serve/watcher.js';
import { waitFor } from './harness.js';

const open: ManifestWatcher[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const w of open.splice(0)) await w.close();
  for (const dir of dirs.splice(0)) await fs.rm(dir, { recursive: true, force: true });
});

async function watching(files: Record<string, string> = {}) {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-watch-'));
  dirs.push(dir);
  await fs.mkdir(path.join(dir, 'sub'));
  for (const [file, text] of Object.entries(files)) await fs.writeFile(path.join(dir, file), text);
  let calls = 0;
  const watcher = watchManifests(dir, () => calls++, { log: pino({ level: 'silent' }), debounceMs: 200 });
  open.push(watcher);
  await watcher.ready;
  return { dir, watcher, calls: () => calls };
}

/** Nothing to wait for when nothing must happen: long enough for the debounce and the write-finish check. */
const quiet = () => new Promise((r) => setTimeout(r, 600));

describe('watchManifests', () => {
  it('calls once per burst of changes to manifests (add, change, unlink), not for the initial files', async () => {
    const w = await watching({ 'crm.yaml': 'a: 1\n' });
    await quiet();
    expect(w.calls()).toBe(0);
    await Promise.all([
      fs.writeFile(path.join(w.dir, 'crm.yaml'), 'a: 2\n'),
      fs.writeFile(path.join(w.dir, 'desk.yml'), 'a: 1\n'),
    ]);
    await waitFor(() => w.calls() >= 1, 'a call for the burst', 5_000);
    await quiet();
    expect(w.calls()).toBe(1);
    await fs.rm(path.join(w.dir, 'desk.yml'));
    await waitFor(() => w.calls() === 2, 'a call for the removal', 5_000);
  });

  it('ignores files that are not manifests and anything in subfolders', async () => {
    const w = await watching();
    for (const file of ['.hidden.yaml', 'crm.yaml~', 'crm.yaml.swp', 'crm.tmp', 'notes.txt', 'sub/x.yaml']) {
      await fs.writeFile(path.join(w.dir, file), 'a: 1\n');
    }
    await quiet();
    expect(w.calls()).toBe(0);
  });

  it('closes once however often it is asked, and calls nothing after', async () => {
    const w = await watching();
    const closing = w.watcher.close();
    expect(w.watcher.close()).toBe(closing);
    await closing;
    await fs.writeFile(path.join(w.dir, 'crm.yaml'), 'a: 1\n');
    await quiet();
    expect(w.calls()).toBe(0);
  });
});
