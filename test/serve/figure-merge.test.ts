/**
 * The raw form of the live figures and their merge across replicas (serve/app-figures.ts `raw`,
 * `mergeRawFigures`, `seriesOf`): slots aligned by their start, counts and histograms summed and
 * the quantiles read off the sum (the same as one replica that served all the traffic), open
 * connections and memory summed, and what another replica's answer must look like to be merged.
 */
import { describe, expect, it } from 'vitest';
import {
  AppFigures,
  isRawAppFigures,
  isRawFigureSummary,
  LATENCY_BOUNDS_MS,
  mergeRawFigures,
  mergeRawSummaries,
  type RawAppFigures,
} from '../../src/serve/app-figures.js';

const STEP_MS = 10_000;
/** A slot boundary plus 0.5 s. */
const START = 170_000_004 * STEP_MS + 500;

/** A clock shared by several replicas' figures, as on one machine. */
function clock() {
  let now = START;
  return {
    now: () => now,
    advance(ms: number) {
      now += ms;
    },
  };
}

/** Sends `n` requests to `app` answered with `status` after `ms`. */
function requests(figures: AppFigures, app: string, n: number, status = 200, ms = 1): void {
  for (let i = 0; i < n; i++) figures.answered(figures.opened(app)!, status, ms);
}

const BUCKETS = LATENCY_BOUNDS_MS.length + 1;

describe('AppFigures.raw', () => {
  it('lists the slots with anything in them: counts, 5xx, the histogram, open peaks, memory', () => {
    const c = clock();
    const figures = new AppFigures({ stepSeconds: 10, slots: 6, now: c.now });
    expect(figures.raw('blog')).toEqual({ app: 'blog', stepSeconds: 10, memory: false, slots: [] });
    requests(figures, 'blog', 3, 200, 3);
    requests(figures, 'blog', 1, 503, 300);
    c.advance(20_000);
    const socket = figures.opened('blog')!;
    const raw = figures.raw('blog');
    const histogram = new Array<number>(BUCKETS).fill(0);
    histogram[LATENCY_BOUNDS_MS.indexOf(5)] = 3;
    histogram[LATENCY_BOUNDS_MS.indexOf(500)] = 1;
    const first = START - 500;
    expect(raw.slots).toEqual([
      { at: first, count: 4, errors: 1, open: 1, histogram },
      // The quiet slot in between is not listed; the socket opened in the current one.
      { at: first + 20_000, count: 0, errors: 0, open: 1, histogram: new Array<number>(BUCKETS).fill(0) },
    ]);
    figures.released(socket);
    figures.memory('shop', 40.5);
    expect(figures.raw('shop')).toMatchObject({
      memory: true,
      slots: [{ at: first + 20_000, memoryMb: 40.5 }],
    });
  });

  it('reads back through seriesOf as series() answers', () => {
    const c = clock();
    const figures = new AppFigures({ stepSeconds: 10, slots: 6, now: c.now });
    requests(figures, 'blog', 30, 200, 7);
    c.advance(10_000);
    requests(figures, 'blog', 5, 500, 70);
    figures.memory('blog', 12);
    c.advance(2_000);
    expect(figures.seriesOf(figures.raw('blog'))).toEqual(figures.series('blog'));
    const json = JSON.parse(JSON.stringify(figures.raw('blog'))) as RawAppFigures;
    expect(figures.seriesOf(json)).toEqual(figures.series('blog'));
  });
});

describe('mergeRawFigures', () => {
  it('adds up slots aligned by their start; quantiles as exact as one replica with all the traffic', () => {
    const c = clock();
    const options = { stepSeconds: 10, slots: 6, now: c.now };
    const a = new AppFigures(options);
    const b = new AppFigures(options);
    const all = new AppFigures(options);
    /** The same requests, to one of the replicas and to the one that sees everything. */
    const both = (replica: AppFigures, n: number, status: number, ms: number) => {
      requests(replica, 'crm', n, status, ms);
      requests(all, 'crm', n, status, ms);
    };
    both(a, 90, 200, 3); // slot 0: A fast
    both(b, 10, 200, 300); // slot 0: B slow
    c.advance(10_000);
    both(b, 4, 503, 40); // slot 1: B only
    c.advance(20_000);
    both(a, 2, 200, 1); // slot 3: both
    both(b, 6, 500, 8);
    c.advance(3_000);

    const merged = mergeRawFigures([a.raw('crm'), b.raw('crm')]);
    expect(merged.slots.map((s) => s.at)).toEqual([0, 10_000, 30_000].map((d) => START - 500 + d));
    expect(merged.slots.map((s) => s.count)).toEqual([100, 4, 8]);
    expect(merged.slots.map((s) => s.errors)).toEqual([0, 4, 6]);
    expect(merged.slots[0]!.histogram).toEqual(all.raw('crm').slots[0]!.histogram);

    const points = a.seriesOf(merged).points;
    const alone = all.series('crm').points;
    const withoutOpen = (p: { openConnections: number }) => ({ ...p, openConnections: undefined });
    expect(points.map(withoutOpen)).toEqual(alone.map(withoutOpen));
    // The window's six slots end with the one under way (slot 3, 3.5 s gone by): slot 0 is third.
    const [first, second, , fourth] = points.slice(2);
    // p95 off the summed histogram: in the slow bucket, where the mean of the two p95s is not.
    const p95s = [a, b].map((r) => r.series('crm').points[2]!.p95Ms ?? 0);
    expect(first!.p95Ms).toBeGreaterThan(250);
    expect(first!.p95Ms).toBeLessThanOrEqual(500);
    expect((p95s[0]! + p95s[1]!) / 2).toBeLessThan(250);
    expect(first).toMatchObject({ rps: 10, errorRate: 0 });
    expect(second).toMatchObject({ rps: 0.4, errorRate: 1 });
    expect(fourth).toMatchObject({ rps: 2.286, errorRate: 0.75 });
    // Each replica held one request at a time: two between them where both had traffic.
    expect(points.map((p) => p.openConnections)).toEqual([0, 0, 2, 1, 0, 2]);
  });

  it("sums each replica's memory per slot, null where none reported", () => {
    const c = clock();
    const a = new AppFigures({ stepSeconds: 10, slots: 3, now: c.now });
    const b = new AppFigures({ stepSeconds: 10, slots: 3, now: c.now });
    a.memory('shop', 40);
    b.memory('shop', 60.25);
    c.advance(10_000);
    a.memory('shop', 44);
    c.advance(10_000);
    requests(b, 'shop', 1);
    const merged = mergeRawFigures([a.raw('shop'), b.raw('shop')]);
    expect(merged.memory).toBe(true);
    expect(a.seriesOf(merged).points.map((p) => p.memoryMb)).toEqual([100.3, 44, null]);
    // An app no replica reports memory for has no memory field.
    const plain = mergeRawFigures([a.raw('blog'), b.raw('blog')]);
    expect('memoryMb' in a.seriesOf(plain).points[0]!).toBe(false);
  });

  it('merges summaries app by app, an app one replica has no traffic for as zeros from it', () => {
    const c = clock();
    const a = new AppFigures({ stepSeconds: 10, slots: 3, now: c.now });
    const b = new AppFigures({ stepSeconds: 10, slots: 3, now: c.now });
    requests(a, 'blog', 3);
    requests(b, 'blog', 1, 500);
    requests(b, 'shop', 2);
    const merged = a.summaryOf(
      mergeRawSummaries([a.rawSummary(['blog', 'shop']), b.rawSummary(['blog', 'shop'])]),
    );
    expect(merged.apps.blog).toMatchObject({ rps: [0, 0, 4], errorRate: [0, 0, 0.25] });
    expect(merged.apps.shop!.rps).toEqual([0, 0, 2]);
  });

  it("leaves out another replica's slots outside this one's window (its clock ahead)", () => {
    const c = clock();
    const a = new AppFigures({ stepSeconds: 10, slots: 3, now: c.now });
    const ahead = new AppFigures({ stepSeconds: 10, slots: 3, now: () => c.now() + 10_000 });
    requests(a, 'blog', 1);
    requests(ahead, 'blog', 5);
    const points = a.seriesOf(mergeRawFigures([a.raw('blog'), ahead.raw('blog')])).points;
    expect(points.map((p) => p.rps)).toEqual([0, 0, 1]);
  });

  it('refuses figures of another step or app, and nothing at all', () => {
    const a = new AppFigures({ stepSeconds: 10, slots: 3 });
    const b = new AppFigures({ stepSeconds: 60, slots: 3 });
    expect(() => mergeRawFigures([a.raw('blog'), b.raw('blog')])).toThrow(/do not merge/);
    expect(() => mergeRawFigures([a.raw('blog'), a.raw('shop')])).toThrow(/do not merge/);
    expect(() => mergeRawFigures([])).toThrow(/nothing to merge/);
  });
});

describe('isRawAppFigures', () => {
  const slot = { at: 60_000, count: 2, errors: 0, open: 1, histogram: new Array<number>(BUCKETS).fill(0) };
  const raw = { app: 'blog', stepSeconds: 60, memory: false, slots: [slot] };

  it.each([
    ['the raw figures asked for', raw, true],
    ['another app', { ...raw, app: 'shop' }, false],
    ['another step', { ...raw, stepSeconds: 10 }, false],
    ['the points of the public form', { app: 'blog', stepSeconds: 60, points: [] }, false],
    ['a histogram of other buckets', { ...raw, slots: [{ ...slot, histogram: [1, 1] }] }, false],
    ['a slot not on a step boundary', { ...raw, slots: [{ ...slot, at: 61_000 }] }, false],
    ['a negative count', { ...raw, slots: [{ ...slot, count: -1 }] }, false],
    ['memory as text', { ...raw, memory: true, slots: [{ ...slot, memoryMb: '40' }] }, false],
    ['null', null, false],
  ])('%s: %s', (_what, value, ok) => {
    expect(isRawAppFigures(value, 'blog', 60)).toBe(ok);
  });

  it('takes a summary only with every app asked for', () => {
    const summary = { stepSeconds: 60, apps: { blog: raw } };
    expect(isRawFigureSummary(summary, ['blog'], 60)).toBe(true);
    expect(isRawFigureSummary(summary, ['blog', 'shop'], 60)).toBe(false);
    expect(isRawFigureSummary({ stepSeconds: 60, apps: { blog: { rps: [] } } }, ['blog'], 60)).toBe(false);
  });
});
