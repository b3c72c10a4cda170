/**
 * The temporary folders of backups, restores and clones, and the partial archives of backups.
 *
 * Each holds a whole copy of an app's data (a dump, an extracted archive). An operation removes
 * its own when it ends, whatever happened, but a process killed mid-way (SIGKILL, the OOM
 * killer, a power cut) cannot: the copy would stay in the temporary folder, or hidden beside
 * the backups, for good. So each name carries its machine and process id, and an operation
 * first removes the folders and partial files of this machine's processes that are gone. The
 * machine (a tag of its host name) matters where a backups folder is shared: another host's
 * process ids mean nothing here, and its partial archive is never touched. A process id the
 * system gave again to another process keeps its folder until that one is gone too: a delay,
 * never a loss.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** What a temporary folder is for: it starts its name (`appvisor-restore-<host>-<pid>-XXXXXX`). */
export type WorkKind = 'backup' | 'restore' | 'clone' | 'api';

/** This machine in names: 8 hex of its host name's sha256 (a host name may hold any character). */
export const HOST_TAG = createHash('sha256').update(os.hostname()).digest('hex').slice(0, 8);
const WORK_DIR = /^appvisor-(?:backup|restore|clone|api)-([0-9a-f]{8})-(\d+)-[A-Za-z0-9]{6}$/;
/** A partial archive: `.<archive name>.<host>-<pid>-<12 hex>.part`, beside the archive it becomes. */
const PARTIAL = /^\..+\.([0-9a-f]{8})-(\d+)-[0-9a-f]{12}\.part$/;

/** Whether process `pid` exists (another user's counts: it is not ours to judge). */
export function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Runs `work` with a fresh folder of its own under the system's temporary folder, removed
 * afterwards whatever happened; the folders killed processes left are removed first.
 */
export async function withWorkDir<T>(kind: WorkKind, work: (dir: string) => Promise<T>): Promise<T> {
  const dir = await makeWorkDir(kind);
  try {
    return await work(dir);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/**
 * A fresh folder of its own under the system's temporary folder, which the caller removes when
 * done; the folders killed processes left are removed first.
 */
export async function makeWorkDir(kind: WorkKind): Promise<string> {
  await sweepStaleWorkDirs();
  return fs.mkdtemp(path.join(os.tmpdir(), `appvisor-${kind}-${HOST_TAG}-${process.pid}-`));
}

/**
 * Removes the temporary folders of this user's processes on this machine that are gone.
 * @returns the folders removed
 */
export async function sweepStaleWorkDirs(tmp: string = os.tmpdir()): Promise<string[]> {
  return sweep(tmp, WORK_DIR, true);
}

/** Where a backup writes its archive until it is complete: hidden beside `file`. */
export function partialArchiveOf(file: string): string {
  return path.join(
    path.dirname(file),
    `.${path.basename(file)}.${HOST_TAG}-${process.pid}-${randomBytes(6).toString('hex')}.part`,
  );
}

/**
 * Removes the partial archives in `dir` (a backups folder) of this user's processes on this
 * machine that are gone.
 * @returns the files removed
 */
export async function sweepStalePartials(dir: string): Promise<string[]> {
  return sweep(dir, PARTIAL, false);
}

/**
 * What killed operations left: their temporary folders, and the partial archives in the default
 * backups folder (a server sweeps at start; each operation sweeps where it writes).
 * @returns the folders and files removed
 */
export async function sweepKilledOperations(backupsDir: string): Promise<string[]> {
  return [...(await sweepStaleWorkDirs()), ...(await sweepStalePartials(backupsDir))];
}

/** Removes the entries of `dir` named by `pattern` (groups: host tag, pid) of this machine's dead processes. */
async function sweep(dir: string, pattern: RegExp, folders: boolean): Promise<string[]> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  const uid = process.getuid?.();
  const removed: string[] = [];
  for (const entry of entries) {
    const match = pattern.exec(entry.name);
    if (!match || entry.isDirectory() !== folders) continue;
    if (match[1] !== HOST_TAG || processAlive(Number(match[2]))) continue;
    const file = path.join(dir, entry.name);
    try {
      // Only this user's: a shared temporary folder holds other users' too.
      if (uid !== undefined && (await fs.lstat(file)).uid !== uid) continue;
      await fs.rm(file, { recursive: true, force: true });
      removed.push(file);
    } catch {
      // Gone meanwhile, or not ours to remove: nothing to do.
    }
  }
  return removed;
}
