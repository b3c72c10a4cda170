/**
 * The live figures per app (src/serve/app-figures.ts), in one run:
 *
 * - memory: bytes held by the figures of N apps (default 10,000, the cap), each busy in every
 *   slot of the hour and reporting memory (the worst case), measured as heap + array buffers
 *   after a full gc, against `bytesPerApp()` × N;
 * - per-request cost: what the gateway calls per request (`opened` + `answered`) over N apps
 *   round-robin, against the same loop calling nothing, in alternating turns (median per turn);
 * - the reads: one app's series (the detail view) and a summary of 200 apps (a list's page);
 * - across replicas: the size of the raw slots one replica answers another (one app, and 200),
 *   and a summary of 200 apps merged from three replicas (two answers parsed from JSON).
 *
 *   node --import tsx bench/figures.ts [apps=10000] [requests=2000000] [turns=7]
 */
import { performance } from 'node:perf_hooks';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { AppFigures, mergeRawSummaries, type RawFigureSummary } from '../src/serve/app-figures.js';
import { median, mib, numberArg, report, round } from './lib.js';

const APPS = numberArg(0, 10_000);
const REQUESTS = numberArg(1, 2_000_000);
const TURNS = numberArg(2, 7);

v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function heldBytes(): number {
  for (let i = 0; i < 3; i++) gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

const names = Array.from({ length: APPS }, (_, i) => `app-${String(i).padStart(5, '0')}`);

// ---- memory: every app busy in every slot of the window, and reporting memory ----

let now = 1_800_000_000_000;
const clock = () => now;
const before = heldBytes();
const full = new AppFigures({ now: clock, maxApps: APPS });
for (let slot = 0; slot < 60; slot++) {
  for (const name of names) {
    full.answered(full.opened(name)!, slot % 7 === 0 ? 503 : 200, (slot % 13) + 0.5);
    full.memory(name, 40 + (slot % 5));
  }
  now += 60_000;
}
const after = heldBytes();
const measured = after - before;
const computed = (full.bytesPerApp() + 60 * Float32Array.BYTES_PER_ELEMENT) * APPS;
if (full.size !== APPS) throw new Error(`expected ${APPS} rings, found ${full.size}`);

// ---- the reads ----

const readRuns = 200;
let t = performance.now();
for (let i = 0; i < readRuns; i++) full.series(names[i % APPS]!);
const seriesUs = ((performance.now() - t) / readRuns) * 1000;
const page = names.slice(0, 200);
t = performance.now();
for (let i = 0; i < readRuns / 10; i++) full.summary(page);
const summaryMs = (performance.now() - t) / (readRuns / 10);

// ---- across replicas: what one answers another, and merging three ----

const rawAppBytes = Buffer.byteLength(JSON.stringify(full.raw(names[0]!)));
const rawPage = JSON.stringify(full.rawSummary(page));
t = performance.now();
for (let i = 0; i < readRuns / 10; i++) {
  const theirs = [JSON.parse(rawPage), JSON.parse(rawPage)] as RawFigureSummary[];
  full.summaryOf(mergeRawSummaries([full.rawSummary(page), ...theirs]));
}
const merged3Ms = (performance.now() - t) / (readRuns / 10);

// ---- per-request cost, against none ----

let sink = 0;

/**
 * Nanoseconds per request over `pool` apps round-robin: the loop alone, and with the calls the
 * gateway makes per request; medians over the turns and of the difference per turn.
 */
function perRequest(pool: readonly string[]): { noneNs: number; figuresNs: number; extraNs: number } {
  const live = new AppFigures({ maxApps: pool.length });
  live.start();
  const size = pool.length;
  /** The loop without figures: picks the app as the gateway would, nothing else. */
  const none = (n: number): number => {
    const start = performance.now();
    for (let i = 0; i < n; i++) sink += pool[i % size]!.length + (i & 1);
    return performance.now() - start;
  };
  const withFigures = (n: number): number => {
    const start = performance.now();
    for (let i = 0; i < n; i++) {
      const name = pool[i % size]!;
      sink += name.length + (i & 1);
      const token = live.opened(name);
      if (token !== undefined) live.answered(token, i % 50 === 0 ? 500 : 200, (i % 40) * 0.25);
    }
    return performance.now() - start;
  };
  // Warm both up (rings allocated, code optimised) before the turns.
  none(REQUESTS / 4);
  withFigures(REQUESTS / 4);
  const noneNs: number[] = [];
  const figuresNs: number[] = [];
  for (let turn = 0; turn < TURNS; turn++) {
    // Alternating order, so neither always runs on a warmer or cooler machine.
    const order = turn % 2 === 0 ? [none, withFigures] : [withFigures, none];
    for (const run of order) {
      const ns = (run(REQUESTS) / REQUESTS) * 1e6;
      (run === none ? noneNs : figuresNs).push(ns);
    }
  }
  return {
    noneNs: round(median(noneNs), 1),
    figuresNs: round(median(figuresNs), 1),
    extraNs: round(median(figuresNs.map((ns, i) => ns - noneNs[i]!)), 1),
  };
}
// Every request to another of all the apps (their rings out of the CPU's caches), and one app.
const spread = perRequest(names);
const one = perRequest(names.slice(0, 1));

report(
  `Live figures: ${APPS} apps, ${REQUESTS} requests × ${TURNS} turns`,
  [
    {
      figure: 'bytes held, measured (heap + array buffers)',
      value: measured,
      unit: 'B',
      perApp: round(measured / APPS, 0),
    },
    {
      figure: 'bytes, computed (typed arrays only)',
      value: computed,
      unit: 'B',
      perApp: round(computed / APPS, 0),
    },
    { figure: 'measured', value: mib(measured), unit: 'MiB', perApp: '' },
    { figure: `per request over ${APPS} apps: none`, value: spread.noneNs, unit: 'ns', perApp: '' },
    {
      figure: `per request over ${APPS} apps: opened + answered`,
      value: spread.figuresNs,
      unit: 'ns',
      perApp: '',
    },
    { figure: `per request over ${APPS} apps: figures alone`, value: spread.extraNs, unit: 'ns', perApp: '' },
    { figure: 'per request, one app: figures alone', value: one.extraNs, unit: 'ns', perApp: '' },
    { figure: 'one app series (60 points)', value: round(seriesUs, 1), unit: 'µs', perApp: '' },
    { figure: 'summary of 200 apps', value: round(summaryMs, 2), unit: 'ms', perApp: '' },
    { figure: 'raw slots of one app (JSON)', value: rawAppBytes, unit: 'B', perApp: '' },
    {
      figure: 'raw slots of 200 apps (JSON)',
      value: Buffer.byteLength(rawPage),
      unit: 'B',
      perApp: round(Buffer.byteLength(rawPage) / 200, 0),
    },
    {
      figure: 'summary of 200 apps merged from 3 replicas',
      value: round(merged3Ms, 2),
      unit: 'ms',
      perApp: '',
    },
  ],
  {
    bench: 'figures',
    apps: APPS,
    requests: REQUESTS,
    turns: TURNS,
    measuredBytes: measured,
    measuredBytesPerApp: round(measured / APPS, 0),
    computedBytes: computed,
    measuredMiB: mib(measured),
    perRequestNs: { spread, one },
    seriesUs: round(seriesUs, 1),
    summary200Ms: round(summaryMs, 2),
    rawAppBytes,
    rawSummary200Bytes: Buffer.byteLength(rawPage),
    mergedSummary200From3Ms: round(merged3Ms, 2),
    sink: sink > 0,
  },
);
