import { once } from 'node:events';
import pino, { type Logger } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AppvisorError } from '../../src/errors.js';
import {
  QUEUE_EVENTS,
  type ReconcileContext,
  type ReconcileEndEvent,
  ReconcileQueue,
  type ReconcileQueueOptions,
  type ReconcileResult,
  type Reconciler,
} from '../../src/reconcile/queue.js';

interface Deferred {
  readonly promise: Promise<void>;
  readonly resolve: () => void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  const promise = new Promise<void>((res) => {
    resolve = res;
  });
  return { promise, resolve };
}

/** Resolves when `signal` aborts, rejecting with its reason, as a well-behaved step does. */
function abortion(signal: AbortSignal): Promise<never> {
  return new Promise((_resolve, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

function memoryLogger(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line)) });
  return { log, lines };
}

const open: ReconcileQueue[] = [];

function makeQueue(options: Partial<ReconcileQueueOptions> & { reconcile: Reconciler }) {
  const queue = new ReconcileQueue({ log: pino({ level: 'silent' }), resyncMs: 0, ...options });
  open.push(queue);
  const runs: string[] = [];
  const ends: ReconcileEndEvent[] = [];
  queue.on(QUEUE_EVENTS.start, ({ key }) => runs.push(key));
  queue.on(QUEUE_EVENTS.end, (event) => ends.push(event));
  return { queue, runs, ends };
}

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);

beforeEach(() => {
  unhandled.length = 0;
  process.on('unhandledRejection', onUnhandled);
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((queue) => queue.close({ graceMs: 0 })));
  vi.useRealTimers();
  // Rejections are reported after a macrotask; give them one before checking.
  await new Promise((resolve) => setImmediate(resolve));
  process.off('unhandledRejection', onUnhandled);
  expect(unhandled).toEqual([]);
});

describe('ReconcileQueue: coalescing and serialization', () => {
  it('runs a queued key once however many times it is added', async () => {
    const gate = deferred();
    const { queue, runs } = makeQueue({
      reconcile: async (key) => {
        if (key === 'blocker') await gate.promise;
      },
    });
    queue.add('blocker');
    for (let i = 0; i < 100; i++) queue.add('a');
    expect(queue.size).toBe(1);
    gate.resolve();
    await queue.onIdle();
    expect(runs).toEqual(['blocker', 'a']);
  });

  it('gives a key added while it runs exactly one more run, after the current one', async () => {
    const gate = deferred();
    let active = 0;
    const { queue, runs, ends } = makeQueue({
      reconcile: async () => {
        active++;
        expect(active).toBe(1);
        if (runs.length === 1) await gate.promise;
        active--;
      },
    });
    queue.add('a');
    expect(queue.running).toEqual(['a']);
    expect(queue.pending).toBe(1);
    for (let i = 0; i < 50; i++) queue.add('a');
    expect(queue.size).toBe(0);
    gate.resolve();
    await queue.onIdle();
    expect(runs).toEqual(['a', 'a']);
    expect(ends.map((e) => e.nextRunInMs)).toEqual([0, undefined]);
  });

  it('never runs two reconciles at once across keys', async () => {
    let active = 0;
    let maxActive = 0;
    let calls = 0;
    const { queue } = makeQueue({
      reconcile: async (key) => {
        calls++;
        active++;
        maxActive = Math.max(maxActive, active);
        for (let i = 0; i < (key.length % 3) + 1; i++) await new Promise((resolve) => setImmediate(resolve));
        if (key.startsWith('k') && calls < 60) queue.add(`${key}x`);
        if (key !== 'k0') queue.add('k0');
        active--;
      },
    });
    queue.addAll(Array.from({ length: 20 }, (_, i) => `k${i}`));
    await queue.onIdle();
    expect(calls).toBeGreaterThan(20);
    expect(maxActive).toBe(1);
  });

  it('lets a reconcile add other keys and itself without deadlocking; onIdle waits for them', async () => {
    const { queue, runs } = makeQueue({
      reconcile: async (key) => {
        if (key === 'global' && runs.length === 1) {
          queue.addAll(['a', 'b', 'global']);
          queue.add('a');
        }
      },
    });
    queue.add('global');
    await queue.onIdle();
    expect(runs).toEqual(['global', 'a', 'b', 'global']);
    expect(queue.size + queue.pending + queue.scheduled).toBe(0);
  });

  it('emits idle when the last run ends', async () => {
    const { queue } = makeQueue({ reconcile: async () => {} });
    const idle = once(queue, QUEUE_EVENTS.idle);
    queue.addAll(['a', 'b']);
    await idle;
    expect(queue.pending).toBe(0);
  });
});

describe('ReconcileQueue: concurrency', () => {
  it('runs up to `concurrency` keys at once, never more, and never two runs of one key', async () => {
    const running = new Set<string>();
    let maxActive = 0;
    let calls = 0;
    const { queue } = makeQueue({
      concurrency: 4,
      reconcile: async (key) => {
        calls++;
        expect(running.has(key)).toBe(false);
        running.add(key);
        maxActive = Math.max(maxActive, running.size);
        // Adds of itself and of others while running: coalesced into one more run each.
        if (calls < 80) queue.addAll([key, `k${calls % 7}`]);
        for (let i = 0; i < (calls % 3) + 1; i++) await new Promise((resolve) => setImmediate(resolve));
        running.delete(key);
      },
    });
    queue.addAll(Array.from({ length: 12 }, (_, i) => `k${i}`));
    expect(queue.pending).toBe(4);
    expect(queue.size).toBe(8);
    await queue.onIdle();
    expect(calls).toBeGreaterThan(80);
    expect(maxActive).toBe(4);
  });

  it('coalesces adds of a running key into one run after it, while other keys go on', async () => {
    const gate = deferred();
    const { queue, runs } = makeQueue({
      concurrency: 2,
      reconcile: async (key) => {
        if (key === 'a' && runs.length === 1) await gate.promise;
      },
    });
    queue.add('a');
    for (let i = 0; i < 20; i++) queue.add('a');
    queue.addAll(['b', 'c']);
    // a holds one slot; b and c pass through the other while a runs.
    await vi.waitFor(() => expect(runs).toEqual(['a', 'b', 'c']));
    expect(queue.running).toEqual(['a']);
    gate.resolve();
    await queue.onIdle();
    expect(runs).toEqual(['a', 'b', 'c', 'a']);
  });

  it('does not let a failing or hanging key hold up the others', async () => {
    vi.useFakeTimers();
    const gate = deferred();
    const { queue, ends } = makeQueue({
      concurrency: 2,
      reconcile: async (key) => {
        if (key === 'hangs') await gate.promise;
        if (key === 'fails') throw new Error('down');
      },
    });
    queue.addAll(['hangs', 'fails', 'a', 'b', 'c']);
    await vi.advanceTimersByTimeAsync(0);
    expect(ends.map((e) => [e.key, e.outcome])).toEqual([
      ['fails', 'retry'],
      ['a', 'ok'],
      ['b', 'ok'],
      ['c', 'ok'],
    ]);
    expect(queue.running).toEqual(['hangs']);
    // The failing key's backoff runs it again beside the hanging one.
    await vi.advanceTimersByTimeAsync(1000);
    expect(ends.filter((e) => e.key === 'fails')).toHaveLength(2);
    gate.resolve();
    await queue.onIdle();
  });

  it('aborts every running reconcile on close after the grace', async () => {
    const signals: AbortSignal[] = [];
    const { queue, ends } = makeQueue({
      concurrency: 3,
      reconcile: async (_key, context) => {
        signals.push(context.signal);
        await abortion(context.signal);
      },
    });
    queue.addAll(['a', 'b', 'c', 'd']);
    await queue.close({ graceMs: 0 });
    expect(signals).toHaveLength(3);
    expect(signals.every((s) => s.aborted)).toBe(true);
    expect(ends.map((e) => e.key).sort()).toEqual(['a', 'b', 'c']);
    expect(queue.pending).toBe(0);
  });
});

describe('ReconcileQueue: outcomes', () => {
  it('backs off 1 s doubling to 5 min per key by default', async () => {
    vi.useFakeTimers();
    const { queue, runs, ends } = makeQueue({
      reconcile: async () => {
        throw new Error('server down');
      },
    });
    queue.add('a');
    await queue.onIdle();
    const expected = [1000, 2000, 4000, 8000, 16_000, 32_000, 64_000, 128_000, 256_000, 300_000, 300_000];
    for (const [i, delay] of expected.entries()) {
      expect(ends[i]).toMatchObject({ key: 'a', outcome: 'retry', nextRunInMs: delay });
      expect(queue.scheduled).toBe(1);
      await vi.advanceTimersByTimeAsync(delay - 1);
      expect(runs).toHaveLength(i + 1);
      await vi.advanceTimersByTimeAsync(1);
      await queue.onIdle();
      expect(runs).toHaveLength(i + 2);
    }
  });

  it('starts the backoff over after a success', async () => {
    vi.useFakeTimers();
    let fail = true;
    const { queue, ends } = makeQueue({
      backoff: { baseMs: 100 },
      reconcile: async () => {
        if (fail)
          throw new AppvisorError('DB_UNREACHABLE', { dialect: 'postgres', server: 'x', detail: 'down' });
      },
    });
    queue.add('a');
    await vi.advanceTimersByTimeAsync(100 + 200);
    expect(ends.map((e) => e.nextRunInMs)).toEqual([100, 200, 400]);
    fail = false;
    await vi.advanceTimersByTimeAsync(400);
    expect(ends[3]).toMatchObject({ outcome: 'ok' });
    expect(ends[3]?.nextRunInMs).toBeUndefined();
    expect(queue.scheduled).toBe(0);
    fail = true;
    queue.add('a');
    await queue.onIdle();
    expect(ends[4]).toMatchObject({ outcome: 'retry', nextRunInMs: 100 });
  });

  it('runs a key in backoff promptly on add(), keeping its failure count', async () => {
    vi.useFakeTimers();
    const { queue, runs, ends } = makeQueue({
      backoff: { baseMs: 1000 },
      reconcile: async () => {
        throw new Error('nope');
      },
    });
    queue.add('a');
    await vi.advanceTimersByTimeAsync(1000);
    expect(ends.map((e) => e.nextRunInMs)).toEqual([1000, 2000]);
    queue.add('a');
    await queue.onIdle();
    expect(runs).toHaveLength(3);
    expect(ends[2]?.nextRunInMs).toBe(4000);
    // The 2 s timer was replaced, not left to fire as well.
    expect(queue.scheduled).toBe(1);
    await vi.advanceTimersByTimeAsync(3999);
    expect(runs).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(1);
    expect(runs).toHaveLength(4);
  });

  it('runs a key in backoff once on add(), not again when the old timer would have fired', async () => {
    vi.useFakeTimers();
    const { queue, runs, ends } = makeQueue({
      reconcile: async () => {
        if (runs.length === 1) throw new Error('first attempt fails');
      },
    });
    queue.add('a');
    await queue.onIdle();
    expect(ends[0]).toMatchObject({ outcome: 'retry', nextRunInMs: 1000 });
    queue.add('a');
    await queue.onIdle();
    expect(ends[1]).toMatchObject({ outcome: 'ok' });
    expect(queue.scheduled).toBe(0);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(runs).toEqual(['a', 'a']);
  });

  it('keeps backoff per key', async () => {
    vi.useFakeTimers();
    const { queue, ends } = makeQueue({
      reconcile: async () => {
        throw new Error('nope');
      },
    });
    queue.add('a');
    await vi.advanceTimersByTimeAsync(1000);
    queue.add('b');
    await queue.onIdle();
    expect(ends.map((e) => [e.key, e.nextRunInMs])).toEqual([
      ['a', 1000],
      ['a', 2000],
      ['b', 1000],
    ]);
  });

  it.each<[string, 'retry' | 'terminal', unknown]>([
    ['a plain Error', 'retry', new Error('boom')],
    ['a thrown string', 'retry', 'boom'],
    ['DB_UNREACHABLE', 'retry', new AppvisorError('DB_UNREACHABLE')],
    ['STEP_TIMEOUT', 'retry', new AppvisorError('STEP_TIMEOUT')],
    ['MANIFEST_INVALID', 'terminal', new AppvisorError('MANIFEST_INVALID')],
    ['DB_PERMISSION_DENIED', 'terminal', new AppvisorError('DB_PERMISSION_DENIED')],
    ['ADOPT_REFUSED', 'terminal', new AppvisorError('ADOPT_REFUSED')],
    [
      'DB_UNREACHABLE marked not retryable',
      'terminal',
      new AppvisorError('DB_UNREACHABLE', {}, { retryable: false }),
    ],
  ])('treats %s as %s', async (_name, outcome, thrown) => {
    vi.useFakeTimers();
    const { queue, ends } = makeQueue({
      reconcile: async () => {
        throw thrown;
      },
    });
    queue.add('a');
    await queue.onIdle();
    expect(ends).toEqual([expect.objectContaining({ outcome, error: thrown })]);
    expect(queue.scheduled).toBe(outcome === 'retry' ? 1 : 0);
  });

  it('does not retry a terminal failure until the key is added again', async () => {
    vi.useFakeTimers();
    let calls = 0;
    const { queue, runs, ends } = makeQueue({
      reconcile: async () => {
        calls++;
        if (calls === 1) throw new AppvisorError('MANIFEST_INVALID', { file: 'a.yaml', detail: 'bad' });
      },
    });
    queue.add('a');
    await queue.onIdle();
    expect(ends[0]).toMatchObject({ outcome: 'terminal' });
    expect(ends[0]?.nextRunInMs).toBeUndefined();
    await vi.advanceTimersByTimeAsync(3_600_000);
    expect(runs).toHaveLength(1);
    queue.add('a');
    await queue.onIdle();
    expect(ends[1]).toMatchObject({ outcome: 'ok' });
  });

  it('honours requeueAfterMs', async () => {
    vi.useFakeTimers();
    const results: (ReconcileResult | undefined)[] = [{ requeueAfterMs: 5000 }, { requeueAfterMs: 0 }];
    const { queue, runs, ends } = makeQueue({ reconcile: async () => results.shift() });
    queue.add('a');
    await queue.onIdle();
    expect(ends[0]).toMatchObject({ outcome: 'ok', nextRunInMs: 5000 });
    await vi.advanceTimersByTimeAsync(4999);
    expect(runs).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    // requeueAfterMs: 0 runs again within the same wave, so onIdle covers it.
    await queue.onIdle();
    expect(runs).toHaveLength(3);
    expect(queue.scheduled).toBe(0);
  });

  it('addAfter runs a key once its delay passed, and not at all when a timer or a run covers it', async () => {
    vi.useFakeTimers();
    const { queue, runs } = makeQueue({ reconcile: async () => ({ requeueAfterMs: 10_000 }) });
    queue.addAfter('a', 3000);
    await vi.advanceTimersByTimeAsync(2999);
    expect(runs).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    await queue.onIdle();
    expect(runs).toEqual(['a']);
    // 'a' waits on its requeue timer: a later wake-up leaves it as it is.
    queue.addAfter('a', 100);
    await vi.advanceTimersByTimeAsync(9_000);
    expect(runs).toEqual(['a']);
    await vi.advanceTimersByTimeAsync(1_000);
    await queue.onIdle();
    expect(runs).toEqual(['a', 'a']);
  });

  it('resolves onIdle without waiting for a backoff timer', async () => {
    const { queue } = makeQueue({
      reconcile: async () => {
        throw new Error('later');
      },
    });
    queue.add('a');
    await queue.onIdle();
    expect(queue.scheduled).toBe(1);
    expect(queue.pending).toBe(0);
  });
});

describe('ReconcileQueue: runs', () => {
  it('gives each run its own reconcileId, a child logger and matching events', async () => {
    const { log, lines } = memoryLogger();
    const contexts: ReconcileContext[] = [];
    const { queue, ends } = makeQueue({
      log,
      reconcile: async (_key, context) => {
        contexts.push(context);
        context.log.info('inside');
      },
    });
    const starts: unknown[] = [];
    queue.on(QUEUE_EVENTS.start, (event) => starts.push(event));
    queue.addAll(['a', 'b']);
    await queue.onIdle();
    const ids = contexts.map((c) => c.reconcileId);
    expect(ids).toHaveLength(2);
    expect(new Set(ids).size).toBe(2);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}$/);
    expect(starts).toEqual([
      { key: 'a', reconcileId: ids[0] },
      { key: 'b', reconcileId: ids[1] },
    ]);
    expect(ends.map((e) => [e.key, e.reconcileId, e.outcome])).toEqual([
      ['a', ids[0], 'ok'],
      ['b', ids[1], 'ok'],
    ]);
    for (const end of ends) expect(end.durationMs).toBeGreaterThanOrEqual(0);
    expect(lines.filter((l) => l.msg === 'inside')).toEqual([
      expect.objectContaining({ app: 'a', reconcileId: ids[0] }),
      expect.objectContaining({ app: 'b', reconcileId: ids[1] }),
    ]);
  });

  it('logs a retryable failure as a warning with its retry delay', async () => {
    const { log, lines } = memoryLogger();
    const { queue } = makeQueue({
      log,
      reconcile: async () => {
        throw new AppvisorError('DB_UNREACHABLE', { dialect: 'postgres', server: 'db', detail: 'refused' });
      },
    });
    queue.add('a');
    await queue.onIdle();
    expect(lines).toContainEqual(
      expect.objectContaining({ level: 40, app: 'a', code: 'DB_UNREACHABLE', retryInMs: 1000, failures: 1 }),
    );
  });

  it('aborts a run that outlives stepTimeoutMs with STEP_TIMEOUT, and retries it', async () => {
    vi.useFakeTimers();
    let signal: AbortSignal | undefined;
    const { queue, ends } = makeQueue({
      stepTimeoutMs: 30_000,
      reconcile: async (_key, context) => {
        signal = context.signal;
        await abortion(context.signal);
      },
    });
    queue.add('a');
    await vi.advanceTimersByTimeAsync(29_999);
    expect(signal?.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await queue.onIdle();
    expect(signal?.reason).toMatchObject({ code: 'STEP_TIMEOUT' });
    expect(ends[0]).toMatchObject({ outcome: 'retry', nextRunInMs: 1000 });
  });

  it('never lets a failing reconcile or a throwing listener crash the process', async () => {
    vi.useFakeTimers();
    const failures: (() => Promise<void>)[] = [
      async () => {
        throw new Error('async');
      },
      () => {
        throw new Error('sync throw from a non-async reconciler');
      },
      () => Promise.reject(undefined),
      async () => {
        throw new AppvisorError('MANIFEST_INVALID');
      },
    ];
    const called: string[] = [];
    const { queue } = makeQueue({
      reconcile: (key) => {
        called.push(key);
        return (failures[Number(key)] ?? (async () => {}))();
      },
    });
    for (const event of [QUEUE_EVENTS.start, QUEUE_EVENTS.end, QUEUE_EVENTS.idle]) {
      queue.on(event, () => {
        throw new Error(`${event} listener bug`);
      });
    }
    queue.addAll(['0', '1', '2', '3']);
    await queue.onIdle();
    queue.add('4');
    queue.add('0');
    await queue.onIdle();
    expect(called).toEqual(['0', '1', '2', '3', '4', '0']);
    // afterEach asserts that no rejection went unhandled.
  });
});

describe('ReconcileQueue: resync', () => {
  it('adds every key each resyncMs', async () => {
    vi.useFakeTimers();
    const { queue, runs } = makeQueue({
      resyncMs: 60_000,
      backoff: { baseMs: 50_000 },
      keys: () => ['a', 'b', 'c'],
      reconcile: async (key) => {
        if (key === 'c' && runs.length === 1) throw new Error('c is down');
      },
    });
    queue.add('c');
    await queue.onIdle();
    expect(queue.scheduled).toBe(1);
    await vi.advanceTimersByTimeAsync(50_000);
    await vi.advanceTimersByTimeAsync(10_000);
    await queue.onIdle();
    // c's backoff timer ran it at 50 s; the resync at 60 s ran all three.
    expect(runs).toEqual(['c', 'c', 'a', 'b', 'c']);
  });

  it('skips a key whose backoff timer is pending at resync time', async () => {
    vi.useFakeTimers();
    const { queue, runs } = makeQueue({
      resyncMs: 1000,
      backoff: { baseMs: 5000 },
      keys: () => ['a', 'b'],
      reconcile: async (key) => {
        if (key === 'a') throw new Error('a is down');
      },
    });
    queue.add('a');
    await queue.onIdle();
    await vi.advanceTimersByTimeAsync(4000);
    // Resyncs at 1, 2, 3 and 4 s ran b only: a was waiting out its 5 s backoff.
    expect(runs).toEqual(['a', 'b', 'b', 'b', 'b']);
    await vi.advanceTimersByTimeAsync(1000);
    expect(runs.filter((key) => key === 'a')).toHaveLength(2);
  });

  it('logs and survives a keys() that throws', async () => {
    vi.useFakeTimers();
    const { log, lines } = memoryLogger();
    const { queue, runs } = makeQueue({
      log,
      resyncMs: 1000,
      keys: () => {
        throw new Error('cache broken');
      },
      reconcile: async () => {},
    });
    await vi.advanceTimersByTimeAsync(1000);
    expect(lines).toContainEqual(expect.objectContaining({ msg: 'resync could not list the keys' }));
    queue.add('a');
    await queue.onIdle();
    expect(runs).toEqual(['a']);
  });

  it('waits for an asynchronous keys() (a refresh of its sources) and runs one at a time', async () => {
    vi.useFakeTimers();
    let refreshes = 0;
    let listed = ['a'];
    const { queue, runs } = makeQueue({
      resyncMs: 1000,
      keys: async () => {
        refreshes++;
        // The refresh takes 2.5 resync periods: the periods that come meanwhile are skipped.
        await new Promise((r) => setTimeout(r, 2500));
        return listed;
      },
      reconcile: async () => {},
    });
    await vi.advanceTimersByTimeAsync(1000);
    expect(refreshes).toBe(1);
    expect(runs).toEqual([]);
    listed = ['a', 'b'];
    await vi.advanceTimersByTimeAsync(2500);
    await queue.onIdle();
    // The keys are those the refresh ended with; the resyncs at 2 and 3 s were skipped.
    expect(runs).toEqual(['a', 'b']);
    expect(refreshes).toBe(1);
    await vi.advanceTimersByTimeAsync(500);
    expect(refreshes).toBe(2);
  });

  it('logs and survives a keys() that rejects, and is silent about one that rejects after close', async () => {
    vi.useFakeTimers();
    const { log, lines } = memoryLogger();
    let fail: ((err: Error) => void) | undefined;
    const { queue } = makeQueue({
      log,
      resyncMs: 1000,
      keys: () =>
        new Promise<string[]>((_resolve, reject) => {
          fail = reject;
        }),
      reconcile: async () => {},
    });
    await vi.advanceTimersByTimeAsync(1000);
    fail?.(new Error('store down'));
    await vi.advanceTimersByTimeAsync(0);
    const logged = () => lines.filter((l) => l.msg === 'resync could not list the keys');
    expect(logged()).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1000);
    await queue.close();
    fail?.(new Error('store closed'));
    await vi.advanceTimersByTimeAsync(0);
    expect(logged()).toHaveLength(1);
  });

  it('has no timer at all with resyncMs 0', () => {
    vi.useFakeTimers();
    makeQueue({ resyncMs: 0, keys: () => ['a'], reconcile: async () => {} });
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('ReconcileQueue: close', () => {
  it('aborts the running reconcile after the grace period and resolves; twice gives the same promise', async () => {
    vi.useFakeTimers();
    let signal: AbortSignal | undefined;
    const { queue, runs, ends } = makeQueue({
      reconcile: async (_key, context) => {
        signal = context.signal;
        await abortion(context.signal);
      },
    });
    queue.addAll(['a', 'b']);
    let closed = false;
    const first = queue.close({ graceMs: 2000 });
    void first.then(() => {
      closed = true;
    });
    expect(queue.close()).toBe(first);
    await vi.advanceTimersByTimeAsync(1999);
    expect(signal?.aborted).toBe(false);
    expect(closed).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await first;
    expect(signal?.reason).toMatchObject({ name: 'AbortError' });
    // The queued key was dropped, and the aborted run is not retried.
    expect(runs).toEqual(['a']);
    expect(ends).toEqual([expect.objectContaining({ key: 'a', outcome: 'retry' })]);
    expect(ends[0]?.nextRunInMs).toBeUndefined();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('lets a run that finishes within the grace period finish unaborted', async () => {
    const gate = deferred();
    let signal: AbortSignal | undefined;
    const { queue, ends } = makeQueue({
      reconcile: async (_key, context) => {
        signal = context.signal;
        await gate.promise;
      },
    });
    queue.add('a');
    const closing = queue.close({ graceMs: 60_000 });
    gate.resolve();
    await closing;
    expect(signal?.aborted).toBe(false);
    expect(ends).toEqual([expect.objectContaining({ outcome: 'ok' })]);
  });

  it('ignores adds after close and clears backoff and resync timers', async () => {
    vi.useFakeTimers();
    const { queue, runs } = makeQueue({
      resyncMs: 1000,
      keys: () => ['a'],
      reconcile: async () => {
        throw new Error('down');
      },
    });
    queue.add('a');
    await queue.onIdle();
    expect(vi.getTimerCount()).toBe(2);
    await queue.close();
    expect(vi.getTimerCount()).toBe(0);
    queue.add('a');
    queue.addAll(['b', 'c']);
    expect(queue.size + queue.pending + queue.scheduled).toBe(0);
    await vi.advanceTimersByTimeAsync(3_600_000);
    expect(runs).toEqual(['a']);
  });

  it('ignores adds made by the running reconcile while closing', async () => {
    let signalled: AbortSignal | undefined;
    const { queue, runs } = makeQueue({
      reconcile: async (key, { signal }) => {
        if (key !== 'a') return;
        signalled = signal;
        await abortion(signal).catch(() => {});
        queue.add('b');
        queue.add('a');
      },
    });
    queue.add('a');
    await queue.close({ graceMs: 0 });
    expect(signalled?.aborted).toBe(true);
    expect(runs).toEqual(['a']);
    expect(queue.size + queue.pending + queue.scheduled).toBe(0);
  });
});

describe('ReconcileQueue: options', () => {
  it.each<[Partial<ReconcileQueueOptions>, RegExp]>([
    [{ resyncMs: -1 }, /resyncMs must be a number ≥ 0/],
    [{ stepTimeoutMs: Number.NaN }, /stepTimeoutMs/],
    [{ backoff: { factor: 0 } }, /factor/],
    [{ concurrency: 0 }, /concurrency must be a whole number ≥ 1/],
    [{ concurrency: 1.5 }, /concurrency must be a whole number ≥ 1/],
  ])('rejects %o', (options, message) => {
    expect(
      () => new ReconcileQueue({ log: pino({ level: 'silent' }), reconcile: async () => {}, ...options }),
    ).toThrow(message);
  });
});

describe('ReconcileQueue: operations serialized with a key’s reconciles (exclusive)', () => {
  it('waits for the run under way, holds later runs back, and gives one run after it', async () => {
    const events: string[] = [];
    const release = deferred();
    let runs = 0;
    const { queue } = makeQueue({
      reconcile: async () => {
        runs++;
        events.push(`run ${runs} start`);
        if (runs === 1) await release.promise;
        events.push(`run ${runs} end`);
      },
    });
    queue.add('crm');
    await vi.waitFor(() => expect(events).toEqual(['run 1 start']));
    const op = queue.exclusive('crm', async () => {
      events.push('op start');
      queue.add('crm'); // an add during the operation: one run after it
      queue.add('crm');
      await new Promise((r) => setTimeout(r, 20));
      events.push('op end');
      return 42;
    });
    queue.add('crm'); // queued behind the run; the waiting operation goes first
    release.resolve();
    expect(await op).toBe(42);
    await queue.onIdle();
    await vi.waitFor(() => expect(events.at(-1)).toBe('run 2 end'));
    expect(events).toEqual(['run 1 start', 'run 1 end', 'op start', 'op end', 'run 2 start', 'run 2 end']);
  });

  it('runs operations on one key one after another, and other keys meanwhile', async () => {
    const events: string[] = [];
    const { queue } = makeQueue({ reconcile: async (key) => void events.push(`run ${key}`) });
    const slow = (name: string) => async () => {
      events.push(`${name} start`);
      await new Promise((r) => setTimeout(r, 30));
      events.push(`${name} end`);
    };
    const first = queue.exclusive('crm', slow('a'));
    const second = queue.exclusive('crm', slow('b'));
    queue.add('desk');
    await Promise.all([first, second]);
    await queue.onIdle();
    expect(events.filter((e) => e.startsWith('a') || e.startsWith('b'))).toEqual([
      'a start',
      'a end',
      'b start',
      'b end',
    ]);
    expect(events.indexOf('run desk')).toBeLessThan(events.indexOf('a end'));
  });

  it('frees the key when the operation fails, and refuses new operations once closed', async () => {
    const { queue, runs } = makeQueue({ reconcile: async () => undefined });
    await expect(
      queue.exclusive('crm', async () => {
        queue.add('crm');
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    await queue.onIdle();
    await vi.waitFor(() => expect(runs).toEqual(['crm']));
    await queue.close();
    await expect(queue.exclusive('crm', async () => 1)).rejects.toMatchObject({ code: 'SHUTTING_DOWN' });
  });

  it('gives an operation waiting at close SHUTTING_DOWN and aborts a running one’s signal', async () => {
    const { queue } = makeQueue({ reconcile: async () => undefined });
    const running = queue.exclusive('crm', (signal) => abortion(signal));
    const waiting = queue.exclusive('crm', async () => 'never');
    let closedYet = false;
    const closed = queue.close({ graceMs: 10 }).then(() => {
      closedYet = true;
    });
    await expect(waiting).rejects.toMatchObject({ code: 'SHUTTING_DOWN' });
    await expect(running).rejects.toBeDefined();
    await closed;
    expect(closedYet).toBe(true);
  });

  it('lets a close wait for an operation under way within its grace', async () => {
    const { queue } = makeQueue({ reconcile: async () => undefined });
    const events: string[] = [];
    const op = queue.exclusive('crm', async () => {
      await new Promise((r) => setTimeout(r, 30));
      events.push('op end');
    });
    await queue.close({ graceMs: 5_000 });
    events.push('closed');
    await op;
    expect(events).toEqual(['op end', 'closed']);
  });
});
