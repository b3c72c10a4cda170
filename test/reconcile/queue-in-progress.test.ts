/**
 * A reconcile whose work goes on (an app's start past the executor's wait) returns
 * `{requeueAfterMs, inProgress: true}`: it is run again then, it is no failure, and it keeps the
 * key's backoff, so a start that then fails backs off from where the failures before it left.
 */
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { AppvisorError } from '../../src/errors.js';
import {
  QUEUE_EVENTS,
  type ReconcileEndEvent,
  ReconcileQueue,
  type ReconcileResult,
} from '../../src/reconcile/queue.js';

const open: ReconcileQueue[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((q) => q.close({ graceMs: 0 })));
});

function queueOf(script: (() => ReconcileResult | undefined)[]) {
  const ends: ReconcileEndEvent[] = [];
  let i = 0;
  const queue = new ReconcileQueue({
    log: pino({ level: 'silent' }),
    resyncMs: 0,
    backoff: { baseMs: 40, maxMs: 10_000 },
    reconcile: async () => script[Math.min(i++, script.length - 1)]!(),
  });
  open.push(queue);
  queue.on(QUEUE_EVENTS.end, (e) => ends.push(e));
  return { queue, ends };
}

async function until(check: () => boolean, ms = 3_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const fail = () => {
  throw new AppvisorError('APP_ERROR', { app: 'crm', detail: 'start failed' });
};

describe('ReconcileQueue: in-progress results', () => {
  it('runs the key again after requeueAfterMs, as ok with inProgress, not as a failure', async () => {
    const { queue, ends } = queueOf([() => ({ requeueAfterMs: 30, inProgress: true }), () => undefined]);
    queue.add('crm');
    await until(() => ends.length === 2);
    expect(ends[0]).toMatchObject({ outcome: 'ok', inProgress: true, nextRunInMs: 30 });
    expect(ends[1]).toMatchObject({ outcome: 'ok' });
    expect(ends[1]?.inProgress).toBeUndefined();
  });

  it('keeps the backoff across an in-progress run; a success resets it', async () => {
    const { queue, ends } = queueOf([
      fail,
      () => ({ requeueAfterMs: 10, inProgress: true }),
      fail,
      () => ({ requeueAfterMs: 0 }),
      fail,
    ]);
    queue.add('crm');
    await until(() => ends.length === 5);
    expect(ends.map((e) => e.outcome)).toEqual(['retry', 'ok', 'retry', 'ok', 'retry']);
    // 40 ms after the first failure, 80 ms after the second (the in-progress run reset nothing)…
    expect(ends[0]?.nextRunInMs).toBe(40);
    expect(ends[2]?.nextRunInMs).toBe(80);
    // …and 40 ms again after a success.
    expect(ends[4]?.nextRunInMs).toBe(40);
  });

  it('retries a start that failed after its run only after the backoff, which grows', async () => {
    const { queue, ends } = queueOf([() => ({ requeueAfterMs: 60_000, inProgress: true }), () => undefined]);
    queue.add('crm');
    await until(() => ends.length === 1);
    // The start the run left going fails: the key's long requeue gives way to its backoff.
    const t0 = Date.now();
    queue.retryAfterFailure('crm');
    await until(() => ends.length === 2);
    const first = Date.now() - t0;
    expect(first).toBeGreaterThanOrEqual(35);
    expect(first).toBeLessThan(5_000);
    // A second failure waits twice as long (40 ms, then 80 ms).
    const t1 = Date.now();
    queue.retryAfterFailure('crm');
    queue.retryAfterFailure('crm');
    await until(() => ends.length === 3);
    expect(Date.now() - t1).toBeGreaterThanOrEqual(75);
  });

  it('restarts a first crash at once and backs off each crash that follows soon after', async () => {
    const ends: ReconcileEndEvent[] = [];
    const queue = new ReconcileQueue({
      log: pino({ level: 'silent' }),
      resyncMs: 0,
      backoff: { baseMs: 300, maxMs: 10_000 },
      reconcile: async () => undefined,
    });
    open.push(queue);
    queue.on(QUEUE_EVENTS.end, (e) => ends.push(e));
    queue.add('crm');
    await until(() => ends.length === 1);
    const t0 = Date.now();
    queue.retryAfterCrash('crm');
    await until(() => ends.length === 2);
    // At once: well under the backoff's first 300 ms.
    expect(Date.now() - t0).toBeLessThan(200);
    // A crash loop: the second crash waits the first backoff, the third the second — even though
    // each run in between succeeded (a success resets start failures, not crashes).
    const t1 = Date.now();
    queue.retryAfterCrash('crm');
    await until(() => ends.length === 3);
    expect(Date.now() - t1).toBeGreaterThanOrEqual(290);
    const t2 = Date.now();
    queue.retryAfterCrash('crm');
    await until(() => ends.length === 4);
    expect(Date.now() - t2).toBeGreaterThanOrEqual(590);
  });

  it('ignores a failed start while the key runs: that run decides', async () => {
    let release!: () => void;
    const ends: ReconcileEndEvent[] = [];
    const queue = new ReconcileQueue({
      log: pino({ level: 'silent' }),
      resyncMs: 0,
      backoff: { baseMs: 40, maxMs: 10_000 },
      reconcile: () => new Promise<undefined>((resolve) => (release = () => resolve(undefined))),
    });
    open.push(queue);
    queue.on(QUEUE_EVENTS.end, (e) => ends.push(e));
    queue.add('crm');
    await until(() => release !== undefined);
    queue.retryAfterFailure('crm');
    release();
    await until(() => ends.length === 1);
    await new Promise((r) => setTimeout(r, 150));
    expect(ends).toHaveLength(1);
  });
});
