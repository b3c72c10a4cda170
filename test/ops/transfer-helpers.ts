/** What the data transfer tests share: writers that insert while a dump runs, and their check. */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { expect } from 'vitest';
import type { DataPlace, DataTransfer } from '../../src/ops/transfer.js';

/** A row the writers insert: writer `writer`'s `seq`-th row. */
export interface WriterRow {
  readonly writer: number;
  readonly seq: number;
}

/** One writer's own connection. */
export interface WriterConnection {
  insert(writer: number, seq: number): Promise<void>;
  close(): Promise<void>;
}

export interface Writers {
  /** Resolves once the writers inserted `rows` rows in all. */
  until(rows: number): Promise<void>;
  /** Stops every writer after its current insert and closes its connection. */
  stop(): Promise<void>;
  /** Rows inserted (committed) so far. */
  written(): number;
}

/**
 * `count` writers, each on its own connection, each inserting its rows 1, 2, 3… one after the
 * other (autocommit): a consistent snapshot holds, of every writer, a gap-free prefix.
 */
export function startWriters(count: number, connect: () => Promise<WriterConnection>): Writers {
  let stopped = false;
  let total = 0;
  const loops = Array.from({ length: count }, async (_, writer) => {
    const conn = await connect();
    try {
      for (let seq = 1; !stopped; seq++) {
        await conn.insert(writer, seq);
        total++;
      }
    } finally {
      await conn.close();
    }
  });
  const all = Promise.all(loops);
  all.catch(() => undefined);
  return {
    async until(rows) {
      while (total < rows) {
        await Promise.race([new Promise((r) => setTimeout(r, 10)), all]);
      }
    },
    async stop() {
      stopped = true;
      await all;
    },
    written: () => total,
  };
}

/** Fails unless the rows hold, for each writer, exactly its seqs 1..k. */
export function writerPrefixes(rows: readonly WriterRow[]): void {
  const byWriter = new Map<number, number[]>();
  for (const r of rows) {
    const list = byWriter.get(Number(r.writer)) ?? [];
    list.push(Number(r.seq));
    byWriter.set(Number(r.writer), list);
  }
  for (const [writer, seqs] of byWriter) {
    seqs.sort((a, b) => a - b);
    expect({ writer, seqs }).toEqual({ writer, seqs: seqs.map((_, i) => i + 1) });
  }
}

/** Dumps `place` into a new file `file` (resolves once the file is complete). */
export async function dumpToFile(transfer: DataTransfer, place: DataPlace, file: string): Promise<void> {
  await transfer.dump(place, fs.createWriteStream(file));
}

const CHILD = new URL('./killed-load.child.ts', import.meta.url).pathname;
const ROOT = new URL('../..', import.meta.url).pathname;

/**
 * Starts a load of `file` in a child process and, as soon as `started()` sees its temporary
 * place, kills the child's process group (the client tool too) with SIGKILL. Fails if the load
 * finished first.
 */
export async function killLoadMidway(
  args: { dialect: string; url: string; place: DataPlace; file: string; owner: string },
  started: () => Promise<boolean>,
): Promise<void> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(args)], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  child.stderr.on('data', (d) => {
    out += d;
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_c, s) => resolve(s)));
  let done = false;
  void exited.then(() => {
    done = true;
  });
  const deadline = Date.now() + 30_000;
  while (!(await started())) {
    if (done) throw new Error(`the load ended before it was seen: ${out}`);
    if (Date.now() > deadline) throw new Error(`the load never started: ${out}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  process.kill(-child.pid!, 'SIGKILL');
  expect(await exited).toBe('SIGKILL');
  expect(out).not.toMatch(/load finished/);
}
