/**
 * Concurrent reconciles write the store at once; InnoDB's next-key locks (taken by the fenced
 * `INSERT … SELECT` and the history trim under REPEATABLE READ, which the fencing relies on)
 * can make two of them deadlock, and the server then rolls one back. Every store operation is
 * a compare-and-set or a read, so running a rolled-back one again is safe.
 */
import { setTimeout as sleep } from 'node:timers/promises';

/** SQLSTATE 40001 (serialization failure: MySQL's deadlock victim) and 40P01 (PostgreSQL's deadlock). */
const ROLLED_BACK_STATES = new Set(['40001', '40P01']);
const ATTEMPTS = 5;

function rolledBackByServer(err: unknown): boolean {
  const e = err as { sqlState?: unknown; code?: unknown } | null;
  return ROLLED_BACK_STATES.has(String(e?.sqlState ?? e?.code));
}

/** Runs `fn`, again after a short random pause when the server rolled it back as a deadlock victim. */
export async function retryingDeadlocks<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt === ATTEMPTS || !rolledBackByServer(err)) throw err;
      // Random, so that the two sides of the deadlock do not meet again in step.
      await sleep(Math.random() * 10 * attempt);
    }
  }
}
