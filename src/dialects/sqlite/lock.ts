/** SQLite's lock primitive: an exclusive transaction on a side file (an OS file lock). */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { LockSession } from '../types.js';
import type { DatabaseUrl } from '../url.js';

/**
 * An exclusive transaction on `<file>.lock`. Its file lock belongs to the process, so the OS
 * drops it when the process dies, however it dies. busy_timeout 0 and polling keep the
 * synchronous driver from blocking the event loop while waiting.
 */
async function fileSession(url: DatabaseUrl): Promise<LockSession> {
  const file = `${url.filename!}.lock`;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file);
  db.pragma('busy_timeout = 0');
  const inode = fs.statSync(file).ino;
  let configured = false;
  return {
    async tryLock() {
      try {
        // No journal file next to the lock file; needs a moment without an exclusive holder.
        if (!configured) {
          db.pragma('journal_mode = MEMORY');
          configured = true;
        }
        db.exec('BEGIN EXCLUSIVE');
        return true;
      } catch (err) {
        if ((err as { code?: string }).code === 'SQLITE_BUSY') return false;
        throw err;
      }
    },
    async check() {
      // Deleting the file would let another process lock a new file of the same name.
      const now = fs.statSync(file, { throwIfNoEntry: false });
      if (now?.ino !== inode) throw new Error(`${file} was removed or replaced while the lock was held`);
    },
    async release() {
      if (db.inTransaction) db.exec('ROLLBACK');
      db.close();
    },
    destroy() {
      if (db.open) db.close();
    },
    onDeath() {},
  };
}

/** `sqlite::memory:` stores live and die with one process: an in-process flag is enough. */
const memoryHolders = new Set<string>();

function memorySession(url: DatabaseUrl): LockSession {
  let mine = false;
  return {
    async tryLock() {
      if (memoryHolders.has(url.redacted)) return false;
      memoryHolders.add(url.redacted);
      mine = true;
      return true;
    },
    async check() {},
    async release() {
      if (mine) memoryHolders.delete(url.redacted);
      mine = false;
    },
    destroy() {
      if (mine) memoryHolders.delete(url.redacted);
      mine = false;
    },
    onDeath() {},
  };
}

/** The lock of the store in `url`'s file (one lock per file: `namespace` needs no further room). */
export function lockSession(url: DatabaseUrl, _namespace: string): Promise<LockSession> {
  return url.filename === ':memory:' ? Promise.resolve(memorySession(url)) : fileSession(url);
}
