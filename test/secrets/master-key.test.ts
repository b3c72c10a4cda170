/**
 * The master key file (SPEC §8.5): generated once, on first start, by whichever of several
 * processes starting at once gets there first; the others read that key, never a file still
 * being written.
 */
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadMasterKey } from '../../src/secrets/master-key.js';

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

describe('loadMasterKey', () => {
  it('gives every one of many concurrent first starts the same key, and leaves one file of mode 0600', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'appvisor-master-key-'));
    dirs.push(dataDir);
    // Interleaved at every await, as processes starting at once would be.
    const keys = await Promise.all(
      Array.from({ length: 20 }, () => loadMasterKey({ dataDir, env: {}, create: true })),
    );
    const ids = new Set(keys.map((k) => k?.id));
    expect(ids.size).toBe(1);
    expect([...ids][0]).toBeTypeOf('string');
    expect(await readdir(dataDir)).toEqual(['master-key']);
    expect((await stat(path.join(dataDir, 'master-key'))).mode & 0o777).toBe(0o600);
  });

  it('reads nothing and writes nothing for a reader when there is no key yet', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'appvisor-master-key-'));
    dirs.push(dataDir);
    expect(await loadMasterKey({ dataDir, env: {}, create: false })).toBeUndefined();
    expect(await readdir(dataDir)).toEqual([]);
  });
});
