/**
 * SQLite's data transfer (src/ops/transfer.ts). A dump is SQLite's online backup API copying the
 * whole file in one step (one read transaction: one point in time, while the app goes on
 * writing) into a temporary file, streamed out from there. A load copies the dump beside the
 * app's file under a hidden temporary name the provider's `listLeftovers` recognises
 * (`.<name>.<hex>.tmp`), with appvisor's marker; the swap is one atomic rename.
 */
import crypto from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import Database from 'better-sqlite3';
import { AppvisorError, messageOf } from '../../errors.js';
import type { DataPlace, DataTransfer, TransferOptions } from '../../ops/transfer.js';
import type { OpOptions } from '../../providers/provider.js';
import { validateIdentifier } from './identifiers.js';
import { OWNER_TABLE } from './provider.js';

const SIDE_FILES = ['-wal', '-shm', '-journal'] as const;
/** The most pages one step of the backup API may copy: all of them, so the copy is one snapshot. */
const ALL_PAGES = 0x7fffffff;

export function createSqliteTransfer(opts: TransferOptions): DataTransfer {
  return new SqliteTransfer(path.join(path.resolve(opts.dataDir), 'apps'));
}

class SqliteTransfer implements DataTransfer {
  readonly dialect = 'sqlite' as const;
  readonly member = 'data.sqlite';
  readonly #appsDir: string;

  constructor(appsDir: string) {
    this.#appsDir = appsDir;
  }

  async checkTools(): Promise<void> {}

  async dump(place: DataPlace, out: Writable, opts: OpOptions = {}): Promise<void> {
    const file = this.#fileOf(place);
    opts.signal?.throwIfAborted();
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-dump-'));
    const copy = path.join(dir, this.member);
    try {
      const db = openOrFail(file, { readonly: true, fileMustExist: true });
      try {
        db.pragma('busy_timeout = 5000');
        await db.backup(copy, { progress: () => ALL_PAGES });
      } catch (err) {
        throw failed(`back up ${file}`, err);
      } finally {
        db.close();
      }
      opts.signal?.throwIfAborted();
      await pipeline(createReadStream(copy), out, { end: false });
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  }

  async load(place: DataPlace, dumpFile: string, owner: string, opts: OpOptions = {}): Promise<DataPlace> {
    const name = placeName(place);
    opts.signal?.throwIfAborted();
    await fs.mkdir(this.#appsDir, { recursive: true });
    // The dump file is the caller's own copy (extracted from the archive): checked and marked
    // there, so the file that appears in the apps folder is complete and marked from the start.
    const db = openOrFail(dumpFile, { fileMustExist: true });
    try {
      const check = db.pragma('quick_check', { simple: true });
      if (check !== 'ok') throw failed(`check ${dumpFile}`, `SQLite's quick_check says ${String(check)}`);
      db.transaction(() => {
        db.exec(`CREATE TABLE IF NOT EXISTS ${OWNER_TABLE} (owner TEXT NOT NULL, created_at TEXT NOT NULL)`);
        db.exec(`DELETE FROM ${OWNER_TABLE}`);
        db.prepare(`INSERT INTO ${OWNER_TABLE} (owner, created_at) VALUES (?, ?)`).run(
          owner,
          new Date().toISOString(),
        );
      })();
      // One file, no -wal beside it, whatever mode the app's database was in.
      db.pragma('wal_checkpoint(TRUNCATE)');
    } catch (err) {
      throw err instanceof AppvisorError ? err : failed(`load ${dumpFile}`, err);
    } finally {
      db.close();
    }
    // Copied under a name no one takes for a database, then renamed complete to the leftover name
    // the provider sweeps: a copy killed half-way is a `.part`, removed by the app's next load.
    await removeStaleParts(this.#appsDir, name);
    const hex = crypto.randomBytes(6).toString('hex');
    const temp = `.${name}.${hex}.tmp`;
    const part = path.join(this.#appsDir, `.${name}.${hex}.part`);
    const file = path.join(this.#appsDir, temp);
    try {
      await fs.copyFile(dumpFile, part, fs.constants.COPYFILE_EXCL);
      opts.signal?.throwIfAborted();
      await fs.rename(part, file);
      return { kind: 'database', database: temp };
    } catch (err) {
      await removeFile(part);
      await removeFile(file);
      throw err instanceof AppvisorError || opts.signal?.aborted
        ? err
        : failed(`load ${dumpFile} into ${file}`, err);
    }
  }

  async swap(place: DataPlace, loaded: DataPlace, _owner: string, opts: OpOptions = {}): Promise<void> {
    const file = this.#fileOf(place);
    const temp = this.#loadedFile(loaded);
    opts.signal?.throwIfAborted();
    try {
      // The old data's log is folded into its file first: until the rename below the old file
      // stands complete on its own, so a process killed at any point leaves it whole.
      if (await exists(file)) {
        const db = openOrFail(file, { fileMustExist: true });
        try {
          db.pragma('busy_timeout = 5000');
          if (db.pragma('journal_mode', { simple: true }) === 'wal') db.pragma('wal_checkpoint(TRUNCATE)');
        } finally {
          db.close();
        }
        // A stale -wal beside the new file would be applied to it.
        for (const suffix of SIDE_FILES) await fs.rm(`${file}${suffix}`, { force: true });
      }
      await fs.rename(temp, file);
    } catch (err) {
      throw err instanceof AppvisorError ? err : failed(`swap ${temp} into ${file}`, err);
    }
  }

  async discard(loaded: DataPlace): Promise<void> {
    await removeFile(this.#loadedFile(loaded));
  }

  #fileOf(place: DataPlace): string {
    return path.join(this.#appsDir, `${placeName(place)}.sqlite`);
  }

  /** A place `load` made: a hidden temporary file in the apps folder, nothing else. */
  #loadedFile(loaded: DataPlace): string {
    if (
      loaded.kind !== 'database' ||
      !/^\.[A-Za-z_][A-Za-z0-9_-]*\.[0-9a-f]{12}\.tmp$/.test(loaded.database)
    ) {
      throw new Error(`${JSON.stringify(loaded)} is not a place a SQLite load made`);
    }
    return path.join(this.#appsDir, loaded.database);
  }
}

function placeName(place: DataPlace): string {
  if (place.kind === 'schema') {
    throw new AppvisorError('UNSUPPORTED_MODE', { detail: 'new-schema needs a PostgreSQL main database' });
  }
  validateIdentifier('database', place.database);
  return place.database;
}

function openOrFail(file: string, options: Database.Options): Database.Database {
  try {
    return new Database(file, options);
  } catch (err) {
    throw failed(`open ${file}`, err);
  }
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}

/** Half-made copies of earlier loads of `name` that were killed (loads of one app never overlap). */
async function removeStaleParts(appsDir: string, name: string): Promise<void> {
  const stale = new RegExp(`^\\.${name}\\.[0-9a-f]{12}\\.part$`);
  for (const entry of await fs.readdir(appsDir)) {
    if (stale.test(entry)) await fs.rm(path.join(appsDir, entry), { force: true });
  }
}

async function removeFile(file: string): Promise<void> {
  for (const f of [file, ...SIDE_FILES.map((s) => `${file}${s}`)]) await fs.rm(f, { force: true });
}

function failed(operation: string, err: unknown): AppvisorError {
  return new AppvisorError(
    'DB_OPERATION_FAILED',
    { operation, dialect: 'sqlite', server: 'local files', detail: messageOf(err) },
    { cause: err },
  );
}
