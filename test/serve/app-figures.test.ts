/**
 * The live figures per app (serve/app-figures.ts) on an injected clock: slots roll over,
 * quantiles from the histogram, rates, open connections across slots, memory, and the bounds
 * (lazy rings, the cap, the sweep).
 */
import { describe, expect, it, vi } from 'vitest';
import { AppFigures, LATENCY_BOUNDS_MS } from '../../src/serve/app-figures.js';

/** A clock the test moves; starts on a slot boundary plus 0.5 s. */
function clock(start = 1_700_000_040_000) {
  let now = start + 500;
  return {
    now: () => now,
    advance(ms: number) {
      now += ms;
    },
  };
}

/** Sends `n` requests to `app` answered with `status` after `ms`. */
function requests(figures: AppFigures, app: string, n: number, status = 200, ms = 1): void {
  for (let i = 0; i < n; i++) {
    const token = figures.opened(app);
    if (token !== undefined) figures.answered(token, status, ms);
  }
}

const last = <T>(list: readonly T[]): T => list[list.length - 1]!;

describe('AppFigures', () => {
  it('answers a full window of points, oldest first, each at its slot start', () => {
    const c = clock();
    const figures = new AppFigures({ stepSeconds: 10, slots: 6, now: c.now });
    const series = figures.series('blog');
    expect(series.stepSeconds).toBe(10);
    expect(series.points).toHaveLength(6);
    expect(last(series.points).at).toBe(new Date(1_700_000_040_000).toISOString());
    expect(series.points[0]!.at).toBe(new Date(1_700_000_040_000 - 50_000).toISOString());
    // No traffic: zeros, no latency, and no ring allocated for it.
    expect(series.points.every((p) => p.rps === 0 && p.p50Ms === null && p.openConnections === 0)).toBe(true);
    expect(figures.size).toBe(0);
  });

  it('counts requests per slot and rolls over to the next slot', () => {
    const c = clock();
    const figures = new AppFigures({ stepSeconds: 10, slots: 6, now: c.now });
    requests(figures, 'blog', 50);
    c.advance(10_000);
    requests(figures, 'blog', 20, 503);
    requests(figures, 'blog', 20);
    c.advance(10_000);
    const points = figures.series('blog').points;
    const [older, previous, current] = points.slice(-3);
    expect(older!.rps).toBe(5);
    expect(older!.errorRate).toBe(0);
    expect(previous!.rps).toBe(4);
    expect(previous!.errorRate).toBe(0.5);
    // The current slot is 0.5 s old and empty.
    expect(current).toMatchObject({ rps: 0, p50Ms: null, errorRate: 0 });
  });

  it('rates the current slot over its part gone by (at least a second)', () => {
    const c = clock();
    const figures = new AppFigures({ stepSeconds: 60, slots: 4, now: c.now });
    requests(figures, 'blog', 30);
    expect(last(figures.series('blog').points).rps).toBe(30);
    c.advance(2_500);
    expect(last(figures.series('blog').points).rps).toBe(10);
  });

  it('forgets slots older than the window and starts a reused slot empty', () => {
    const c = clock();
    const figures = new AppFigures({ stepSeconds: 10, slots: 3, now: c.now });
    requests(figures, 'blog', 10, 500);
    c.advance(30_000);
    requests(figures, 'blog', 1);
    const points = figures.series('blog').points;
    expect(points.map((p) => p.rps)).toEqual([0, 0, 1]);
    expect(points.map((p) => p.errorRate)).toEqual([0, 0, 0]);
  });

  it('estimates p50 and p95 inside the bucket that holds them', () => {
    const c = clock();
    const figures = new AppFigures({ stepSeconds: 10, slots: 3, now: c.now });
    // 90 fast requests (3 ms, bucket 2.5–5) and 10 slow ones (300 ms, bucket 250–500).
    requests(figures, 'blog', 90, 200, 3);
    requests(figures, 'blog', 10, 200, 300);
    const point = last(figures.series('blog').points);
    expect(point.p50Ms).toBeGreaterThan(2.5);
    expect(point.p50Ms).toBeLessThanOrEqual(5);
    expect(point.p95Ms).toBeGreaterThan(250);
    expect(point.p95Ms).toBeLessThanOrEqual(500);
    // Linear inside the bucket: rank 50 of 90 in 2.5–5 → 2.5 + 2.5 × 50/90.
    expect(point.p50Ms).toBeCloseTo(2.5 + (2.5 * 50) / 90, 3);
  });

  it('reads a latency past the last bound as that bound', () => {
    const c = clock();
    const figures = new AppFigures({ stepSeconds: 10, slots: 3, now: c.now });
    requests(figures, 'blog', 4, 200, 60_000);
    expect(last(figures.series('blog').points).p95Ms).toBe(last(LATENCY_BOUNDS_MS));
  });

  it('counts only 5xx as errors (a 499 and a 404 are not)', () => {
    const c = clock();
    const figures = new AppFigures({ stepSeconds: 10, slots: 3, now: c.now });
    requests(figures, 'blog', 1, 404);
    requests(figures, 'blog', 1, 499);
    requests(figures, 'blog', 1, 502);
    requests(figures, 'blog', 1, 200);
    expect(last(figures.series('blog').points).errorRate).toBe(0.25);
  });

  it('keeps the peak of open connections per slot, carried over slots with no event', () => {
    const c = clock();
    const figures = new AppFigures({ stepSeconds: 10, slots: 6, now: c.now });
    const a = figures.opened('chat')!;
    const b = figures.opened('chat')!;
    const socket = figures.opened('chat')!;
    figures.answered(a, 200, 1);
    figures.answered(b, 200, 1);
    expect(last(figures.series('chat').points).openConnections).toBe(3);
    // The socket stays open for three slots with nothing else happening.
    c.advance(30_000);
    expect(
      figures
        .series('chat')
        .points.slice(-4)
        .map((p) => p.openConnections),
    ).toEqual([3, 1, 1, 1]);
    expect([...figures.current()]).toEqual([{ app: 'chat', openConnections: 1, memoryMb: undefined }]);
    figures.released(socket);
    c.advance(10_000);
    expect(
      figures
        .series('chat')
        .points.slice(-3)
        .map((p) => p.openConnections),
    ).toEqual([1, 1, 0]);
    expect([...figures.current()][0]!.openConnections).toBe(0);
  });

  it("keeps an isolated app's highest memory report per slot, null where none came", () => {
    const c = clock();
    const figures = new AppFigures({ stepSeconds: 10, slots: 3, now: c.now });
    figures.memory('shop', 40);
    figures.memory('shop', 48.25);
    figures.memory('shop', 44);
    c.advance(20_000);
    const points = figures.series('shop').points;
    expect(points.map((p) => p.memoryMb)).toEqual([48.3, null, null]);
    // Only a fresh report is current (for the gauges).
    expect([...figures.current()][0]!.memoryMb).toBeUndefined();
    figures.memory('shop', 50);
    expect([...figures.current()][0]!.memoryMb).toBe(50);
    // A shared app has no memory field at all.
    requests(figures, 'blog', 1);
    expect('memoryMb' in last(figures.series('blog').points)).toBe(false);
  });

  it('allocates a ring only on traffic, caps them, and frees quiet ones after a window', () => {
    const c = clock();
    const warnings: unknown[] = [];
    const figures = new AppFigures({
      stepSeconds: 10,
      slots: 3,
      maxApps: 2,
      now: c.now,
      log: { warn: (obj: unknown) => warnings.push(obj) },
    });
    figures.series('nobody');
    figures.summary(['nobody']);
    expect(figures.size).toBe(0);
    requests(figures, 'a', 1);
    requests(figures, 'b', 1);
    requests(figures, 'c', 5);
    requests(figures, 'c', 5);
    expect(figures.size).toBe(2);
    expect(figures.refused).toBe(10);
    expect(warnings).toHaveLength(1);
    expect(last(figures.series('c').points).rps).toBe(0);
    expect(figures.bytesPerApp()).toBe(3 * (3 + LATENCY_BOUNDS_MS.length + 1) * 4);

    // 'b' keeps a socket open; 'a' goes quiet for a whole window and is freed.
    const socket = figures.opened('b')!;
    c.advance(20_000);
    figures.sweep();
    expect(figures.size).toBe(2);
    c.advance(10_000);
    figures.sweep();
    expect(figures.size).toBe(1);
    requests(figures, 'c', 1);
    expect(last(figures.series('c').points).rps).toBe(1);
    figures.released(socket);
  });

  it('summarises rps, p95 and error rate per app for a list', () => {
    const c = clock();
    const figures = new AppFigures({ stepSeconds: 10, slots: 3, now: c.now });
    requests(figures, 'blog', 20, 200, 3);
    c.advance(10_000);
    requests(figures, 'blog', 1, 500, 3);
    const summary = figures.summary(['blog', 'idle']);
    expect(summary.stepSeconds).toBe(10);
    expect(summary.apps.blog!.rps).toEqual([0, 2, 1]);
    expect(summary.apps.blog!.errorRate).toEqual([0, 0, 1]);
    expect(summary.apps.blog!.p95Ms[0]).toBeNull();
    expect(summary.apps.blog!.p95Ms[1]).toBeGreaterThan(2.5);
    expect(summary.apps.idle).toEqual({ rps: [0, 0, 0], p95Ms: [null, null, null], errorRate: [0, 0, 0] });
  });

  it('keeps writing into the newest slot when the clock goes back', () => {
    const c = clock();
    const figures = new AppFigures({ stepSeconds: 10, slots: 3, now: c.now });
    c.advance(10_000);
    requests(figures, 'blog', 1);
    c.advance(-10_000);
    requests(figures, 'blog', 1);
    c.advance(10_000);
    expect(last(figures.series('blog').points).rps).toBe(2);
  });

  it('refuses a window it cannot keep', () => {
    expect(() => new AppFigures({ slots: 1 })).toThrow(/at least 2 slots/);
    expect(() => new AppFigures({ stepSeconds: 0 })).toThrow(/stepSeconds > 0/);
  });
});

describe('AppFigures.start', () => {
  it('moves on to the next slot by a timer at its end, reading no clock per request', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      let now = 20_000_000 * 60_000 + 59_000;
      let readings = 0;
      const figures = new AppFigures({
        stepSeconds: 60,
        slots: 3,
        now: () => {
          readings++;
          return now;
        },
      });
      figures.start();
      const before = readings;
      requests(figures, 'blog', 5);
      expect(readings).toBe(before);
      now += 1_001;
      vi.advanceTimersByTime(1_001);
      requests(figures, 'blog', 2);
      const [previous, current] = figures.series('blog').points.slice(-2);
      // 5 requests over the whole minute before; 2 in the second gone by of this one.
      expect(Math.round(previous!.rps * 60)).toBe(5);
      expect(Math.round(current!.rps)).toBe(2);
      figures.stop();
      now += 60_000;
      requests(figures, 'blog', 1);
      expect(Math.round(last(figures.series('blog').points).rps)).toBe(1);
    } finally {
      vi.useRealTimers();
    }
  });
});
