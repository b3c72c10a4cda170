/**
 * Moving one app's data in and out of its database (SPEC §8.4), per dialect: a consistent dump
 * while the app takes writes, a load into a temporary database or schema beside the app's, and
 * the swap that puts it in the app's place. Backup, restore and clone (src/ops/) are written
 * once on top of this; each dialect implements it in `src/dialects/<dialect>/transfer.ts` with
 * the tools users have (SQLite's online backup API, `pg_dump`/`pg_restore`, `mariadb-dump`/
 * `mariadb`).
 *
 * Every temporary object carries appvisor's ownership marker (the `owner` given) and is named so
 * the provider's `listLeftovers` finds it: a restore killed at any point leaves either the old
 * data in place or the new, never neither, and what it left half-made is swept like an
 * interrupted create's leftover.
 */
import type { Writable } from 'node:stream';
import type { Dialect, OpOptions } from '../providers/provider.js';

/** An app's data on one server: a database, or (PostgreSQL `new-schema`) a schema in one. */
export type DataPlace =
  | { readonly kind: 'database'; readonly database: string }
  | { readonly kind: 'schema'; readonly database: string; readonly schema: string };

export interface DataTransfer {
  readonly dialect: Dialect;
  /** The data member's name in the archive: `data.sqlite`, `data.pgdump` or `data.sql`. */
  readonly member: string;
  /**
   * Checks that the client tools this dialect needs are installed.
   * @throws AppvisorError TOOL_MISSING naming the tool and its Debian package
   */
  checkTools(): Promise<void>;
  /**
   * Writes a consistent copy of `place` into `out` (one point in time, while the app goes on
   * writing), streamed: the data is never held in memory whole. `out` is ended when the dump is
   * complete, and the promise resolves once `out` finished (a file is then whole on disk).
   * Rejects if the dump fails; `out` is then incomplete and the caller discards it.
   */
  dump(place: DataPlace, out: Writable, opts?: OpOptions): Promise<void>;
  /**
   * Creates a fresh temporary place beside `place` (same kind, same server), marked with
   * `owner`, and loads the dump in file `dumpFile` into it; returns it. On failure it removes
   * what it made before rejecting.
   */
  load(place: DataPlace, dumpFile: string, owner: string, opts?: OpOptions): Promise<DataPlace>;
  /**
   * Puts `loaded` in `place`'s place and the old data aside, in one atomic step where the server
   * allows it (a transaction of renames; SQLite: a file rename), then drops the old data. The
   * app is stopped on every replica around it (the caller sees to that). `place` may not exist
   * yet (a clone): then `loaded` only takes its name. The result carries `owner` as its marker.
   */
  swap(place: DataPlace, loaded: DataPlace, owner: string, opts?: OpOptions): Promise<void>;
  /** Removes a temporary place `load` made (a restore that failed or was refused after the load). */
  discard(loaded: DataPlace, opts?: OpOptions): Promise<void>;
}

/** What a dialect's transfer needs to reach its server. */
export interface TransferOptions {
  /** The server's connection URL, password included (never logged: pass it to tools by env). */
  readonly url: string;
  /** The data folder (SQLite app databases live in its `apps/` subfolder). */
  readonly dataDir: string;
}
