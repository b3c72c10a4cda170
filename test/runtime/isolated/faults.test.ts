/**
 * Isolated apps misbehave (SPEC §8.3): one app of each isolation mode beside a healthy shared
 * app, each fault detected with its code, requests in flight answered 503 with Retry-After,
 * the app restarted by its reconcile, and the healthy app answering throughout.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ErrorCode } from '../../../src/errors.js';
import { type Serve, startServe, waitFor } from '../../serve/harness.js';
import { FIXTURE, isolated, json, load, p99, raw } from './helpers.js';

const WATCHDOG_MS = 1000;
const LIMIT_MB = 192;
const limits = `  watchdogMs: ${WATCHDOG_MS}\n  memoryLimitMb: ${LIMIT_MB}\n`;

let serve: Serve;

beforeAll(async () => {
  serve = await startServe({
    app: FIXTURE,
    manifests: {
      'calm.yaml': isolated('calm', 'shared', 'startMode: with-main\n'),
      'w.yaml': isolated('w', 'worker', 'startMode: with-main\n', limits),
      'p.yaml': isolated('p', 'process', 'startMode: with-main\n', limits),
    },
  });
  await waitFor(async () => (await serve.view('p')).status === 'running', 'p running');
  await waitFor(async () => (await serve.view('w')).status === 'running', 'w running');
}, 60_000);

afterAll(async () => {
  await serve?.close();
});

/** The codes of `error` statuses `app` goes through from now on. */
function watchErrors(app: string): { codes: string[]; stop(): void } {
  const codes: string[] = [];
  const listener = (e: { app: string; status: string; error: { code: string } | null }): void => {
    if (e.app === app && e.status === 'error' && e.error) codes.push(e.error.code);
  };
  serve.sup.events.on('status', listener);
  return { codes, stop: () => serve.sup.events.off('status', listener) };
}

async function hello(app: string): Promise<{ pid: number; threadId: number; mainThread: boolean }> {
  const answer = await raw(serve.sup.url, `/apps/${app}/hello`);
  if (answer.status !== 200) throw new Error(`${app}: ${answer.status} ${answer.body}`);
  return json(answer) as never;
}

describe('each mode runs where it says', () => {
  it('shared in the supervisor, worker in a thread of it, process in a child of its own', async () => {
    const calm = await hello('calm');
    const w = await hello('w');
    const p = await hello('p');
    expect(calm).toMatchObject({ pid: process.pid, mainThread: true });
    expect(w).toMatchObject({ pid: process.pid, mainThread: false });
    expect(p.pid).not.toBe(process.pid);
    expect(p.mainThread).toBe(true);
    // The admin API shows the mode and the memory the isolated instance reported.
    expect((await serve.view('calm')).isolation).toEqual({ mode: 'shared' });
    const views = await Promise.all(['w', 'p'].map((n) => serve.view(n)));
    for (const view of views) {
      expect(view.isolation?.memoryMb).toBeGreaterThan(0);
      expect(view.isolation?.memoryMb).toBeLessThan(LIMIT_MB);
    }
    expect(views.map((v) => v.isolation?.mode)).toEqual(['worker', 'process']);
  });
});

const FAULTS: readonly { route: string; code: ErrorCode; answersFirst?: boolean }[] = [
  { route: '/loop', code: 'APP_UNRESPONSIVE' },
  { route: '/alloc', code: 'APP_OUT_OF_MEMORY' },
  { route: '/exit', code: 'APP_CRASHED' },
  { route: '/throw', code: 'APP_CRASHED', answersFirst: true },
];

describe.each(['w', 'p'] as const)('faults of the %s app', (app) => {
  let baseline = 0;

  beforeAll(async () => {
    const calm = load(serve.sup.url, '/apps/calm/hello');
    await new Promise((r) => setTimeout(r, 1500));
    await calm.stop();
    expect(calm.failures).toEqual([]);
    baseline = p99(calm.latencies);
  });

  it.each(FAULTS)(
    '$route: $code, in-flight requests 503, restarted, the healthy app unaffected',
    async ({ route, code, answersFirst }) => {
      const before = await hello(app);
      const errors = watchErrors(app);
      const calm = load(serve.sup.url, '/apps/calm/hello');
      try {
        // A request in flight when the app dies is answered, never left hanging.
        const inFlight = raw(serve.sup.url, `/apps/${app}/slow?ms=20000`);
        const started = performance.now();
        const fault = await raw(serve.sup.url, `/apps/${app}${route}`);
        if (answersFirst) {
          expect(fault.status).toBe(200);
        } else {
          expect(fault.status).toBe(503);
          expect(json(fault).error?.code).toBe(code);
          expect(fault.headers['retry-after']).toBe('1');
        }
        const slow = await inFlight;
        expect(slow.status).toBe(503);
        expect(json(slow).error?.code).toBe(code);
        expect(slow.headers['retry-after']).toBe('1');
        const detectedMs = performance.now() - started;
        // Within watchdogMs + 1 s, with slack for a loaded test machine.
        if (code === 'APP_UNRESPONSIVE') expect(detectedMs).toBeLessThan(WATCHDOG_MS + 2500);
        await waitFor(() => errors.codes.includes(code), `status error with ${code}`, 5_000);
        // Restarted by its reconcile after the backoff: a new instance answers.
        const after = await waitFor(() => hello(app), `${app} back`, 15_000);
        if (app === 'p') expect(after.pid).not.toBe(before.pid);
        else expect(after.threadId).not.toBe(before.threadId);
        expect((await serve.view(app)).status).toBe('running');
      } finally {
        errors.stop();
        await calm.stop();
      }
      expect(calm.failures).toEqual([]);
      expect(calm.latencies.length).toBeGreaterThan(10);
      expect(p99(calm.latencies)).toBeLessThan(Math.max(2 * baseline, 50));
    },
    40_000,
  );
});
