import { writeFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { DesiredState } from '../../src/serve/desired-state.js';
import { manifest } from './harness.js';

const dirs: string[] = [];

afterEach(async () => {
  for (const dir of dirs.splice(0)) await fs.rm(dir, { recursive: true, force: true });
});

async function setUp(files: Record<string, string>, records: string[] = [], extra: string[] = []) {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-desired-'));
  dirs.push(dir);
  for (const [file, text] of Object.entries(files)) await fs.writeFile(path.join(dir, file), text);
  const changes: string[][] = [];
  const store = { listRecords: async () => records.map((name) => ({ name })) };
  const desired = new DesiredState({
    appsDir: dir,
    // Only the names are read.
    store: store as never,
    log: pino({ level: 'silent' }),
    onChange: (names) => changes.push([...names].sort()),
    extraNames: () => extra,
  });
  await desired.load();
  return {
    desired,
    changes,
    write: (file: string, text: string) => fs.writeFile(path.join(dir, file), text),
    remove: (file: string) => fs.rm(path.join(dir, file)),
    dir,
  };
}

describe('DesiredState', () => {
  it('covers manifests, invalid files with a name, records and the extra names in a full reconcile', async () => {
    const { desired } = await setUp(
      { 'crm.yaml': manifest('crm'), 'bad.yaml': manifest('bad', 'colour: blue\n') },
      ['gone'],
      ['live'],
    );
    expect([...desired.current.apps.keys()]).toEqual(['crm']);
    expect(desired.names().sort()).toEqual(['bad', 'crm', 'gone', 'live']);
    desired.noteRecord('new');
    expect(desired.names()).toContain('new');
  });

  it.each<[string, (t: Awaited<ReturnType<typeof setUp>>) => Promise<unknown>, string[]]>([
    ['an edited manifest', (t) => t.write('crm.yaml', manifest('crm', 'displayName: CRM 2\n')), ['crm']],
    ['a new manifest', (t) => t.write('desk.yaml', manifest('desk')), ['desk']],
    ['a removed manifest', (t) => t.remove('crm.yaml'), ['crm']],
    ['a manifest turned invalid', (t) => t.write('crm.yaml', manifest('crm', 'colour: blue\n')), ['crm']],
    [
      'a moved manifest',
      async (t) => {
        await t.remove('crm.yaml');
        await t.write('crm-moved.yaml', manifest('crm'));
      },
      ['crm'],
    ],
    ['a file that is no manifest', (t) => t.write('notes.txt', 'hello'), []],
  ])('reports only the app that changed: %s', async (_what, change, expected) => {
    const t = await setUp({ 'crm.yaml': manifest('crm'), 'keep.yaml': manifest('keep') });
    await change(t);
    await t.desired.reload();
    expect(t.changes).toEqual([expected]);
  });

  it('reports every name when the folder is emptied while records exist (the planner guards it)', async () => {
    const t = await setUp({ 'crm.yaml': manifest('crm') }, ['crm', 'old']);
    await t.remove('crm.yaml');
    await t.desired.reload();
    expect(t.changes).toEqual([['crm', 'old']]);
  });

  it('coalesces reloads asked for during a read into one more read, which sees the latest folder', async () => {
    const t = await setUp({ 'crm.yaml': manifest('crm') });
    const first = t.desired.reload();
    // Written while the first read may be under way: that read may miss it, the next one cannot.
    writeFileSync(path.join(t.dir, 'desk.yaml'), manifest('desk'));
    const second = t.desired.reload();
    const third = t.desired.reload();
    expect(third).toBe(second);
    await Promise.all([first, second, third]);
    // Two reads, not three.
    expect(t.changes.length).toBe(2);
    expect(t.changes.flat()).toEqual(['desk']);
    expect([...t.desired.current.apps.keys()].sort()).toEqual(['crm', 'desk']);
  });

  it('keeps the manifests as they were when the folder cannot be read', async () => {
    const t = await setUp({ 'crm.yaml': manifest('crm') });
    await fs.rm(t.dir, { recursive: true });
    await expect(t.desired.reload()).resolves.toBeUndefined();
    expect(t.changes).toEqual([]);
    expect([...t.desired.current.apps.keys()]).toEqual(['crm']);
  });
});
