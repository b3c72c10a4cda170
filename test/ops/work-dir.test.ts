/**
 * The temporary folders and partial archives of backups, restores and clones: a process killed
 * mid-way leaves its own behind (a whole copy of an app's data), and the next operation removes
 * those of processes that are gone, never those of a live one nor anything else.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  HOST_TAG,
  partialArchiveOf,
  processAlive,
  sweepStalePartials,
  sweepStaleWorkDirs,
  withWorkDir,
} from '../../src/ops/work-dir.js';

/** The id of a process that has exited (a real one, not a made-up number). */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', ''], { stdio: 'ignore' });
  expect(child.status).toBe(0);
  return child.pid!;
}

describe('work folders of killed operations', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'work-dir-test-'));
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  it('knows a live process from one that is gone', () => {
    expect(processAlive(process.pid)).toBe(true);
    expect(processAlive(process.ppid)).toBe(true);
    expect(processAlive(deadPid())).toBe(false);
  });

  it("removes the folders of processes that are gone, and keeps a live one's and anything else", async () => {
    const dead = deadPid();
    const tmp = await fs.mkdtemp(path.join(dir, 'tmp-'));
    const here = HOST_TAG;
    const names = {
      deadRestore: `appvisor-restore-${here}-${dead}-AbC123`,
      deadBackup: `appvisor-backup-${here}-${dead}-zz9Zz9`,
      live: `appvisor-clone-${here}-${process.ppid}-Qw3rty`,
      mine: `appvisor-api-${here}-${process.pid}-000000`,
      // Another machine's (a shared folder): its process ids mean nothing here.
      elsewhere: `appvisor-restore-${here === '00000000' ? '11111111' : '00000000'}-${dead}-AbC123`,
      // Not appvisor's pattern: another program's folder, and an old-style name without a pid.
      other: `appvisor-restoreX-${here}-${dead}-AbC123`,
      oldStyle: 'appvisor-restore-AbC123',
    };
    for (const name of Object.values(names)) {
      await fs.mkdir(path.join(tmp, name));
      await fs.writeFile(path.join(tmp, name, 'data.sqlite'), 'a copy of the data');
    }
    // A file with a folder's name is not a folder appvisor made.
    await fs.writeFile(path.join(tmp, `appvisor-restore-${here}-${dead}-file00`), '');

    const removed = await sweepStaleWorkDirs(tmp);
    expect(removed.map((f) => path.basename(f)).sort()).toEqual([names.deadBackup, names.deadRestore]);
    expect((await fs.readdir(tmp)).sort()).toEqual(
      [
        names.live,
        names.mine,
        names.elsewhere,
        names.other,
        names.oldStyle,
        `appvisor-restore-${here}-${dead}-file00`,
      ].sort(),
    );
  });

  it("removes the partial archives of processes that are gone, beside the backups, and no one else's", async () => {
    const dead = deadPid();
    const backups = await fs.mkdtemp(path.join(dir, 'backups-'));
    const stale = `.crm-20260102T030405Z.tar.gz.${HOST_TAG}-${dead}-0123456789ab.part`;
    const live = path.basename(partialArchiveOf(path.join(backups, 'crm.tar.gz')));
    expect(live).toMatch(new RegExp(`^\\.crm\\.tar\\.gz\\.${HOST_TAG}-${process.pid}-[0-9a-f]{12}\\.part$`));
    const elsewhere = `.crm.tar.gz.${HOST_TAG === '00000000' ? '11111111' : '00000000'}-${dead}-0123456789ab.part`;
    const kept = [
      'crm-20260102T030405Z.tar.gz',
      `.crm.tar.gz.${HOST_TAG}-${dead}-short.part`,
      elsewhere,
      live,
    ];
    for (const name of [stale, ...kept]) await fs.writeFile(path.join(backups, name), 'archive bytes');

    expect((await sweepStalePartials(backups)).map((f) => path.basename(f))).toEqual([stale]);
    expect((await fs.readdir(backups)).sort()).toEqual(kept.sort());
    // A backups folder that does not exist yet has nothing to sweep.
    expect(await sweepStalePartials(path.join(backups, 'missing'))).toEqual([]);
  });

  it('gives an operation a folder of its own, named for its process, removed when it ends or fails', async () => {
    let inside = '';
    await withWorkDir('restore', async (d) => {
      inside = d;
      expect(path.basename(d)).toMatch(
        new RegExp(`^appvisor-restore-${HOST_TAG}-${process.pid}-[A-Za-z0-9]{6}$`),
      );
      await fs.writeFile(path.join(d, 'x'), 'x');
    });
    await expect(fs.stat(inside)).rejects.toThrow();
    await expect(
      withWorkDir('backup', async (d) => {
        inside = d;
        throw new Error('the dump failed');
      }),
    ).rejects.toThrow('the dump failed');
    await expect(fs.stat(inside)).rejects.toThrow();
  });
});
