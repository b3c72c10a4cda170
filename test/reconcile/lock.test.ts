import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseDatabaseUrl } from '../../src/dialects/registry.js';
import { AppvisorError } from '../../src/errors.js';
import {
  acquireReconcileLock,
  type ReconcileLock,
  type ReconcileLockOptions,
} from '../../src/reconcile/lock.js';
import { dialectsUnderTest, type TestDatabase } from '../state/dialects.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const HOLDER = fileURLToPath(new URL('./fixtures/hold-lock.ts', import.meta.url));
const dialects = await dialectsUnderTest();

function fakeLog(): Logger & { info: ReturnType<typeof vi.fn> } {
  return { info: vi.fn(), debug: vi.fn(), warn: vi.fn(), error: vi.fn() } as unknown as Logger & {
    info: ReturnType<typeof vi.fn>;
  };
}

/** Starts a child process that takes the lock; resolves once it says it holds it. */
function spawnHolder(url: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', HOLDER, url], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`holder did not take the lock within 20 s: ${stderr}`));
    }, 20_000);
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.stdout!.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('held')) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`holder exited with ${code}: ${stderr}`));
    });
  });
}

// Server dialects coordinate through the leader lease in the store (test/state/lease.test.ts).
for (const { dialect, available, create } of dialects.filter((d) => d.dialect === 'sqlite')) {
  describe.skipIf(!available)(`reconcile lock on ${dialect}`, () => {
    let db: TestDatabase;
    const locks: ReconcileLock[] = [];

    const acquire = async (opts: ReconcileLockOptions = {}, url = db.url): Promise<ReconcileLock> => {
      const lock = await acquireReconcileLock(url, { pollMs: 50, ...opts });
      locks.push(lock);
      return lock;
    };

    beforeEach(async () => {
      db = await create();
    });
    afterEach(async () => {
      await Promise.all(locks.splice(0).map((l) => l.release()));
      await db.drop();
    });

    it('makes a second acquirer wait while it is held and hands it over on release', async () => {
      const first = await acquire();
      expect(first.held).toBe(true);
      expect(first.target).toBe(parseDatabaseUrl(db.url).redacted);

      const log = fakeLog();
      let settled = false;
      const second = acquire({ waitMs: 20_000, log }).finally(() => {
        settled = true;
      });
      await vi.waitFor(() =>
        expect(log.info).toHaveBeenCalledWith(expect.anything(), expect.stringMatching(/waiting/)),
      );
      await expect(acquire()).rejects.toMatchObject({ code: 'LOCK_HELD' });
      expect(settled).toBe(false);

      await first.release();
      expect(first.held).toBe(false);
      expect((await second).held).toBe(true);
    });

    it('gives up with LOCK_HELD after waitMs', async () => {
      await acquire();
      const started = performance.now();
      const err = await acquire({ waitMs: 300 }).catch((e: unknown) => e);
      const waited = performance.now() - started;

      expect(err).toBeInstanceOf(AppvisorError);
      expect(err).toMatchObject({ code: 'LOCK_HELD', retryable: true });
      expect((err as Error).message).toContain(parseDatabaseUrl(db.url).redacted);
      expect(waited).toBeGreaterThanOrEqual(290);
      expect(waited).toBeLessThan(5000);
    });

    it('releases once however often release() is called', async () => {
      const lock = await acquire();
      await Promise.all([lock.release(), lock.release()]);
      await lock.release();
      const again = await acquire();
      expect(again.held).toBe(true);
    });

    it('ends the wait with the abort reason when its signal aborts', async () => {
      await acquire();
      const controller = new AbortController();
      const log = fakeLog();
      const waiting = acquire({ waitMs: 60_000, signal: controller.signal, log });
      await vi.waitFor(() => expect(log.info).toHaveBeenCalled());
      const reason = new Error('shutting down');
      controller.abort(reason);
      await expect(waiting).rejects.toBe(reason);
    });

    it('is never left locked by a holder killed with SIGKILL', async () => {
      const child = await spawnHolder(db.url);
      try {
        await expect(acquire()).rejects.toMatchObject({ code: 'LOCK_HELD' });
      } finally {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        await exited;
      }
      const started = performance.now();
      const lock = await acquire({ waitMs: 10_000 });
      expect(lock.held).toBe(true);
      expect(performance.now() - started).toBeLessThan(5000);
    });
  });
}

describe('reconcile lock on SQLite specifics', () => {
  const sqlite = dialects.find((d) => d.dialect === 'sqlite')!;
  let db: TestDatabase;

  beforeEach(async () => {
    db = await sqlite.create();
  });
  afterEach(async () => {
    await db.drop();
  });

  it('is per main database: another file has its own lock', async () => {
    const a = await acquireReconcileLock(db.url);
    const b = await acquireReconcileLock(`sqlite:${path.join(db.dir!, 'other.sqlite')}`);
    expect([a.held, b.held]).toEqual([true, true]);
    await Promise.all([a.release(), b.release()]);
  });

  it('reports the lock lost when its file is removed while held', async () => {
    const lock = await acquireReconcileLock(db.url, { checkIntervalMs: 20 });
    fs.rmSync(`${parseDatabaseUrl(db.url).filename}.lock`);
    const err = await lock.lost;
    expect(err).toMatchObject({ code: 'LOCK_LOST' });
    expect(err.message).toMatch(/reconcile lock on .* was lost/);
    expect(lock.held).toBe(false);
    await lock.release();
  });

  it('works for an in-memory store within the process', async () => {
    const a = await acquireReconcileLock('sqlite::memory:');
    await expect(acquireReconcileLock('sqlite::memory:')).rejects.toMatchObject({ code: 'LOCK_HELD' });
    await a.release();
    const b = await acquireReconcileLock('sqlite::memory:');
    await b.release();
  });
});
