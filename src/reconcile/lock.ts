/**
 * The reconcile lock: two appvisor processes on one state store (`serve` and `apply`, or two
 * servers) never reconcile at once. It lives where the store lives and is tied to something
 * the operating system or the server cleans up when its holder dies, so a crashed (even
 * SIGKILLed) holder never leaves it locked:
 *
 * - PostgreSQL: a session-level advisory lock on a dedicated connection.
 * - MySQL/MariaDB: a named lock (`GET_LOCK`) on a dedicated connection.
 * - SQLite: an exclusive transaction on `<main file>.lock` (an OS file lock).
 */
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import mysql from 'mysql2/promise';
import pg from 'pg';
import type { Logger } from 'pino';
import { AppvisorError, messageOf } from '../errors.js';
import { abortReason, translateDbError } from '../providers/errors.js';
import type { Dialect } from '../providers/provider.js';
import { type DatabaseUrl, parseDatabaseUrl } from '../providers/url.js';
import { advisoryLockKey, mysqlLockName } from '../state/dialect.js';

export interface ReconcileLockOptions {
  /** How long to wait while another process holds the lock before failing with LOCK_HELD. @default 0 */
  readonly waitMs?: number;
  /** Aborts the wait; the acquire then rejects with the signal's reason. */
  readonly signal?: AbortSignal;
  readonly log?: Logger;
  /** Base for relative `sqlite:` paths. @default process.cwd() */
  readonly cwd?: string;
  /** How often the connection holding the lock is checked (and kept from idling out). @default 15000 */
  readonly checkIntervalMs?: number;
  /** Pause between attempts while waiting. @default 200 */
  readonly pollMs?: number;
}

/** A held reconcile lock. */
export interface ReconcileLock {
  readonly dialect: Dialect;
  /** Redacted description of the main database. */
  readonly target: string;
  /** True until released or lost. */
  readonly held: boolean;
  /**
   * Resolves (never rejects) with the reason if the lock is lost while held: its connection
   * died, so another process may take it. Stop reconciling when it does. Never settles after
   * `release()`.
   */
  readonly lost: Promise<AppvisorError>;
  /** Releases the lock; safe to call more than once. */
  release(): Promise<void>;
}

const NAMESPACE = 'appvisor:reconcile';

/** One dialect's way of holding the lock. */
interface LockSession {
  /** One attempt, without waiting: true when this session now holds the lock. */
  tryLock(): Promise<boolean>;
  /** Rejects when the session can no longer be holding the lock. */
  check(): Promise<void>;
  /** Releases the lock and closes the session. */
  release(): Promise<void>;
  /** Drops the session without ceremony (the server or OS releases whatever it held). */
  destroy(): void;
  /** Called once if the session's connection dies by itself. */
  onDeath(listener: (err: Error) => void): void;
}

/** Calls its listener at most once, even when death is reported before anyone listens. */
class DeathWatch {
  #listener: ((err: Error) => void) | undefined;
  #error: Error | undefined;

  fire = (err: Error): void => {
    if (this.#error) return;
    this.#error = err;
    this.#listener?.(err);
  };

  listen = (listener: (err: Error) => void): void => {
    this.#listener = listener;
    if (this.#error) listener(this.#error);
  };
}

async function postgresSession(url: DatabaseUrl): Promise<LockSession> {
  const client = new pg.Client({
    connectionString: url.url,
    keepAlive: true,
    connectionTimeoutMillis: 5000,
    application_name: 'appvisor reconcile lock',
  });
  const death = new DeathWatch();
  // Unhandled, an 'error' on an idle client would crash the process.
  client.on('error', death.fire);
  client.on('end', () => death.fire(new Error('connection closed')));
  await client.connect();
  const key = advisoryLockKey(NAMESPACE);
  return {
    async tryLock() {
      const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS ok', [
        key,
      ]);
      return rows[0]?.ok === true;
    },
    async check() {
      await client.query('SELECT 1');
    },
    async release() {
      try {
        await client.query('SELECT pg_advisory_unlock($1::bigint)', [key]);
      } finally {
        await client.end();
      }
    },
    destroy() {
      client.end().catch(() => undefined);
    },
    onDeath: death.listen,
  };
}

async function mysqlSession(url: DatabaseUrl): Promise<LockSession> {
  const conn = await mysql.createConnection({ uri: url.url, connectTimeout: 5000, enableKeepAlive: true });
  const death = new DeathWatch();
  conn.on('error', death.fire);
  conn.on('end', () => death.fire(new Error('connection closed')));
  const name = mysqlLockName(NAMESPACE, url.database);
  return {
    async tryLock() {
      const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT GET_LOCK(?, 0) AS ok', [name]);
      const ok = rows[0]?.ok as number | null | undefined;
      if (ok === null || ok === undefined) throw new Error(`GET_LOCK('${name}') failed`);
      return Number(ok) === 1;
    },
    async check() {
      await conn.query('SELECT 1');
    },
    async release() {
      try {
        await conn.query('SELECT RELEASE_LOCK(?)', [name]);
      } finally {
        await conn.end();
      }
    },
    destroy() {
      conn.destroy();
    },
    onDeath: death.listen,
  };
}

/**
 * SQLite: an exclusive transaction on a side file. Its file lock belongs to the process, so the
 * OS drops it when the process dies, however it dies. busy_timeout 0 and polling keep the
 * synchronous driver from blocking the event loop while waiting.
 */
async function sqliteSession(url: DatabaseUrl): Promise<LockSession> {
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

function openSession(url: DatabaseUrl): Promise<LockSession> {
  switch (url.dialect) {
    case 'postgres':
      return postgresSession(url);
    case 'mysql':
      return mysqlSession(url);
    case 'sqlite':
      return url.filename === ':memory:' ? Promise.resolve(memorySession(url)) : sqliteSession(url);
  }
}

class HeldLock implements ReconcileLock {
  readonly dialect: Dialect;
  readonly target: string;
  readonly lost: Promise<AppvisorError>;
  readonly #session: LockSession;
  readonly #log: Logger | undefined;
  readonly #timer: NodeJS.Timeout;
  #state: 'held' | 'lost' | 'released' = 'held';
  #checking = false;
  #releasing: Promise<void> | undefined;
  #resolveLost!: (err: AppvisorError) => void;

  constructor(session: LockSession, url: DatabaseUrl, checkIntervalMs: number, log: Logger | undefined) {
    this.dialect = url.dialect;
    this.target = url.redacted;
    this.#session = session;
    this.#log = log;
    this.lost = new Promise((resolve) => {
      this.#resolveLost = resolve;
    });
    this.#timer = setInterval(() => this.#check(), checkIntervalMs);
    this.#timer.unref();
    // Last: a death reported before this point is replayed at once.
    session.onDeath((err) => this.#lose(err));
  }

  get held(): boolean {
    return this.#state === 'held';
  }

  #check(): void {
    if (this.#checking || this.#state !== 'held') return;
    this.#checking = true;
    this.#session
      .check()
      .catch((err: unknown) => this.#lose(err))
      .finally(() => {
        this.#checking = false;
      });
  }

  #lose(cause: unknown): void {
    if (this.#state !== 'held') return;
    this.#state = 'lost';
    clearInterval(this.#timer);
    this.#session.destroy();
    const err = new AppvisorError(
      'STATE_STORE_FAILED',
      { target: this.target, detail: `lost the reconcile lock: ${messageOf(cause)}` },
      { cause },
    );
    this.#log?.error({ err, target: this.target }, 'lost the reconcile lock');
    this.#resolveLost(err);
  }

  release(): Promise<void> {
    this.#releasing ??= this.#release();
    return this.#releasing;
  }

  async #release(): Promise<void> {
    const wasHeld = this.#state === 'held';
    this.#state = 'released';
    clearInterval(this.#timer);
    if (!wasHeld) return;
    try {
      await this.#session.release();
      this.#log?.debug({ target: this.target }, 'reconcile lock released');
    } catch (err) {
      // The connection is gone, and with it the lock.
      this.#log?.warn({ err, target: this.target }, 'reconcile lock: release failed; connection dropped');
      this.#session.destroy();
    }
  }
}

/**
 * Takes the reconcile lock of the state store at `url` (the main database URL), waiting up to
 * `waitMs` while another process holds it. Fails with LOCK_HELD when it stays held, with
 * DB_UNREACHABLE when the server cannot be reached, and with the signal's reason on abort.
 */
export async function acquireReconcileLock(
  url: string | DatabaseUrl,
  opts: ReconcileLockOptions = {},
): Promise<ReconcileLock> {
  const parsed = typeof url === 'string' ? parseDatabaseUrl(url, opts.cwd) : url;
  const { signal, log } = opts;
  const waitMs = Math.max(0, opts.waitMs ?? 0);
  const pollMs = opts.pollMs ?? 200;
  const translate = (err: unknown): unknown =>
    signal?.aborted && err === signal.reason
      ? err
      : translateDbError(err, {
          dialect: parsed.dialect,
          server: parsed.redacted,
          operation: 'take the reconcile lock',
        });

  signal?.throwIfAborted();
  const session = await openSession(parsed).catch((err: unknown) => {
    throw translate(err);
  });
  const started = performance.now();
  try {
    let announced = false;
    for (;;) {
      if (await session.tryLock()) break;
      const waited = performance.now() - started;
      if (waited >= waitMs)
        throw new AppvisorError('LOCK_HELD', { target: parsed.redacted, ms: Math.round(waited) });
      if (!announced) {
        log?.info(
          { target: parsed.redacted, waitMs },
          'waiting for the reconcile lock held by another appvisor process',
        );
        announced = true;
      }
      try {
        await sleep(Math.min(pollMs, waitMs - waited), undefined, signal ? { signal } : undefined);
      } catch {
        throw abortReason(signal!);
      }
    }
  } catch (err) {
    session.destroy();
    throw translate(err);
  }
  log?.debug(
    { target: parsed.redacted, waitedMs: Math.round(performance.now() - started) },
    'reconcile lock acquired',
  );
  return new HeldLock(session, parsed, opts.checkIntervalMs ?? 15_000, log);
}
