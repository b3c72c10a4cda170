import pino, { type Logger } from 'pino';
import { describe, expect, it } from 'vitest';
import { Resource, type Runnable, RunnableManager } from '../../src/serve/manager.js';

function memoryLogger(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line)) });
  return { log, lines };
}

interface Probe {
  /** `start:a`, `stop:a:<graceMs rounded down to 100>` in the order they happened. */
  readonly calls: string[];
  runnable(name: string, behaviour?: Behaviour): Runnable;
}

interface Behaviour {
  /** The start rejects with this. */
  readonly failStart?: Error;
  /** The start waits for this (or for its signal, if `abortable`). */
  readonly startGate?: Promise<void>;
  readonly abortable?: boolean;
  /** The stop never settles. */
  readonly hangStop?: boolean;
  /** The stop rejects. */
  readonly failStop?: Error;
}

function probe(): Probe {
  const calls: string[] = [];
  return {
    calls,
    runnable: (name, b = {}) => ({
      name,
      async start(signal) {
        calls.push(`start:${name}`);
        if (b.startGate) {
          const aborted = new Promise<never>((_resolve, reject) => {
            if (b.abortable) signal.addEventListener('abort', () => reject(signal.reason), { once: true });
          });
          await Promise.race([b.startGate, aborted]);
        }
        if (b.failStart) throw b.failStart;
      },
      async stop() {
        calls.push(`stop:${name}`);
        if (b.hangStop) await new Promise(() => {});
        if (b.failStop) throw b.failStop;
      },
    }),
  };
}

const silent = pino({ level: 'silent' });

function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

describe('RunnableManager', () => {
  it('starts in the given order and stops in the reverse order', async () => {
    const p = probe();
    const m = new RunnableManager(
      ['store', 'pools', 'queue', 'gateway'].map((n) => p.runnable(n)),
      {
        log: silent,
      },
    );
    await m.start();
    expect(m.running).toEqual(['store', 'pools', 'queue', 'gateway']);
    await m.stop({ graceMs: 1_000 });
    expect(p.calls).toEqual([
      'start:store',
      'start:pools',
      'start:queue',
      'start:gateway',
      'stop:gateway',
      'stop:queue',
      'stop:pools',
      'stop:store',
    ]);
    expect(m.running).toEqual([]);
  });

  it('stops the started ones in reverse when a start fails, starts nothing after it, and rethrows', async () => {
    const p = probe();
    const broken = new Error('port in use');
    const { log, lines } = memoryLogger();
    const m = new RunnableManager(
      [p.runnable('a'), p.runnable('b'), p.runnable('c', { failStart: broken }), p.runnable('d')],
      { log },
    );
    await expect(m.start()).rejects.toBe(broken);
    expect(p.calls).toEqual(['start:a', 'start:b', 'start:c', 'stop:b', 'stop:a']);
    expect(lines).toContainEqual(
      expect.objectContaining({
        runnable: 'c',
        err: 'port in use',
        msg: 'failed to start; stopping what was started',
      }),
    );
    // Stopping afterwards stops nothing twice.
    await m.stop();
    expect(p.calls.filter((c) => c.startsWith('stop:'))).toEqual(['stop:b', 'stop:a']);
  });

  it('stops them all under one grace deadline: a hanging one is logged and the rest still stop', async () => {
    const p = probe();
    const { log, lines } = memoryLogger();
    const given: Record<string, number> = {};
    const spy = (r: Runnable): Runnable => ({
      name: r.name,
      start: (s) => r.start(s),
      stop: (ms) => {
        given[r.name] = ms;
        return r.stop(ms);
      },
    });
    const m = new RunnableManager(
      [spy(p.runnable('store')), spy(p.runnable('runtime', { hangStop: true })), spy(p.runnable('gateway'))],
      { log },
    );
    await m.start();
    const t0 = Date.now();
    await m.stop({ graceMs: 300 });
    const took = Date.now() - t0;
    // One deadline for all: not 300 ms per runnable.
    expect(took).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThan(1_000);
    expect(p.calls.slice(3)).toEqual(['stop:gateway', 'stop:runtime', 'stop:store']);
    expect(given.gateway).toBeGreaterThan(250);
    // The store after the hanging runtime gets what was left of the deadline: nothing.
    expect(given.store).toBeLessThan(20);
    expect(lines).toContainEqual(
      expect.objectContaining({
        runnable: 'runtime',
        msg: 'still stopping after the grace period; stopping the rest anyway',
      }),
    );
  });

  it('logs a stop that fails and still stops the rest', async () => {
    const p = probe();
    const { log, lines } = memoryLogger();
    const m = new RunnableManager([p.runnable('a'), p.runnable('b', { failStop: new Error('boom') })], {
      log,
    });
    await m.start();
    await m.stop();
    expect(p.calls).toEqual(['start:a', 'start:b', 'stop:b', 'stop:a']);
    expect(lines).toContainEqual(
      expect.objectContaining({ runnable: 'b', err: 'boom', msg: 'failed to stop' }),
    );
  });

  it('is idempotent: start and stop twice give the same promises, and each runnable stops once', async () => {
    const p = probe();
    const m = new RunnableManager([p.runnable('a'), p.runnable('b')], { log: silent });
    const started = m.start();
    expect(m.start()).toBe(started);
    await started;
    const stopped = m.stop();
    expect(m.stop({ graceMs: 1 })).toBe(stopped);
    await stopped;
    await m.stop();
    expect(p.calls).toEqual(['start:a', 'start:b', 'stop:b', 'stop:a']);
  });

  it('refuses to start after a stop', async () => {
    const p = probe();
    const m = new RunnableManager([p.runnable('a')], { log: silent });
    await m.stop();
    await expect(m.start()).rejects.toThrow(/stopped before they were started/);
    expect(p.calls).toEqual([]);
  });

  it('on a stop during start, aborts the start under way, starts nothing more and unwinds what started', async () => {
    const p = probe();
    const slow = gate();
    const m = new RunnableManager(
      [p.runnable('a'), p.runnable('b', { startGate: slow.promise, abortable: true }), p.runnable('c')],
      { log: silent },
    );
    const started = m.start();
    await waitUntil(() => p.calls.includes('start:b'));
    const stopped = m.stop({ graceMs: 1_000 });
    await stopped;
    await expect(started).rejects.toMatchObject({ name: 'AbortError' });
    // b gave up on its signal, so it is not stopped; c never started.
    expect(p.calls).toEqual(['start:a', 'start:b', 'stop:a']);
  });

  it('on a stop during start, stops a start that finishes anyway together with the rest', async () => {
    const p = probe();
    const slow = gate();
    const m = new RunnableManager(
      [p.runnable('a'), p.runnable('b', { startGate: slow.promise }), p.runnable('c')],
      { log: silent },
    );
    const started = m.start();
    await waitUntil(() => p.calls.includes('start:b'));
    const stopped = m.stop({ graceMs: 1_000 });
    setTimeout(slow.open, 50);
    await stopped;
    await expect(started).rejects.toMatchObject({ name: 'AbortError' });
    expect(p.calls).toEqual(['start:a', 'start:b', 'stop:b', 'stop:a']);
  });

  it('on a stop during a start that outlives the grace, stops the rest and that one once it has started', async () => {
    const p = probe();
    const slow = gate();
    const m = new RunnableManager([p.runnable('a'), p.runnable('b', { startGate: slow.promise })], {
      log: silent,
    });
    const started = m.start();
    await waitUntil(() => p.calls.includes('start:b'));
    const t0 = Date.now();
    await m.stop({ graceMs: 100 });
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(p.calls).toEqual(['start:a', 'start:b', 'stop:a']);
    slow.open();
    await expect(started).rejects.toMatchObject({ name: 'AbortError' });
    await waitUntil(() => p.calls.includes('stop:b'));
  });
});

describe('Resource', () => {
  it('holds what it opened between start and stop, and closes it with the grace left', async () => {
    const closed: [string, number][] = [];
    const r = new Resource(
      'pool',
      async () => 'the pool',
      (value, graceMs) => {
        closed.push([value, graceMs]);
      },
    );
    expect(() => r.value).toThrow(/pool is not started/);
    expect(r.current).toBeUndefined();
    await r.start(new AbortController().signal);
    expect(r.value).toBe('the pool');
    await r.stop(250);
    expect(closed).toEqual([['the pool', 250]]);
  });

  it('closes nothing when it never opened', async () => {
    let closes = 0;
    const r = new Resource<string>(
      'pool',
      async () => {
        throw new Error('cannot open');
      },
      () => {
        closes++;
      },
    );
    await expect(r.start(new AbortController().signal)).rejects.toThrow('cannot open');
    await r.stop(100);
    expect(closes).toBe(0);
  });
});

async function waitUntil(check: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}
