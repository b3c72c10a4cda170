/**
 * Runs every bench in bench/ one after another, each in its own child process, with small sizes
 * (three to four minutes in all), then prints a summary: one headline per bench, a table, and one
 * JSON line. A bench that runs too long is interrupted (it cleans up on SIGINT), then killed.
 *
 *   npm run bench                      # every bench, small sizes
 *   npm run bench -- converge density  # only these
 *   npm run bench -- --full            # each bench with its own (full) defaults
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const NOT_BENCHES = new Set(['lib.ts', 'run.ts']);
const TIMEOUT_MS = 10 * 60_000;

/** Arguments for the quick run; a bench not listed runs with its own defaults. */
const QUICK_ARGS: Readonly<Record<string, readonly string[]>> = {
  planner: ['5000', '10'],
  providers: ['100'],
  gateway: ['3', '2', '10', '10000'],
  manifests: ['5000', '5'],
  converge: ['200'],
  'cold-start': ['50'],
  density: ['100,500', '20', '2000'],
  'hot-reload': ['32', '50'],
  connections: ['300', '200', '10'],
  'mysql-shared-pool': ['30', '2', '10'],
  replicas: ['10', '3', '10', '2', '10'],
  backup: ['20000', '1'],
  isolation: ['3', '50', '2'],
  'isolation-hop': ['3'],
  figures: ['10000', '1000000', '5'],
  'ui-list': ['1000,10000', '3', '1000', '0'],
};

type Json = Record<string, unknown>;
// biome-ignore lint/suspicious/noExplicitAny: headlines read loosely typed JSON from other benches.
type Loose = any;

/** One line of figures per bench, read from its JSON; anything unexpected falls back to a note. */
const HEADLINES: Readonly<Record<string, (j: Loose) => string>> = {
  backup: (j) =>
    `${j.rows} rows: ${j.results.map((r: Loose) => `${r.backend} backup ${r.backupMs} (bare dump ${r.bareDumpMs}, ×${r.backupRatio}) / restore ${r.restoreMs} (bare ${r.bareRestoreMs}, ×${r.restoreRatio}) ms`).join(', ')}`,
  isolation: (j) => {
    const by = (rows: Loose[], mode: string): Loose => rows.find((r: Loose) => r.mode === mode) ?? {};
    const show = (v: unknown, unit = ''): string => (v === null || v === undefined ? 'n/a' : `${v}${unit}`);
    return ['shared', 'worker', 'process']
      .filter((mode) => j.throughput.some((r: Loose) => r.mode === mode))
      .map((mode) => {
        const rate = by(
          j.throughput.filter((r: Loose) => r.route === undefined || r.route === '/api/info'),
          mode,
        );
        const density = by(j.density, mode);
        const hang = by(j.hang, mode);
        if (rate.rps == null && density.perAppMiB == null && hang.maxMs == null) return `${mode} n/a`;
        return `${mode} ${show(rate.rps)} req/s (×${show(rate.ratioToShared)}), ${show(density.perAppMiB, ' MiB')}/idle app, cold ${show(density.coldStartMs?.p50, ' ms')}, hung → restarted ${show(hang.maxMs, ' ms')}`;
      })
      .join('; ');
  },
  'isolation-hop': (j) =>
    j.rows.map((r: Loose) => `${r.kind} ${r['req/s']} req/s (×${r['× shared']})`).join(', '),
  figures: (j) =>
    `${j.apps} busy apps hold ${j.measuredMiB} MiB (${j.measuredBytesPerApp} B/app); +${j.perRequestNs.spread.extraNs} ns/request over ${j.apps} apps, +${j.perRequestNs.one.extraNs} ns for one`,
  planner: (j) => j.results.map((r: Loose) => `${r.mode} ${r.medianMs} ms / ${r.apps} apps`).join(', '),
  providers: (j) => j.results.map((r: Loose) => `${r.kind} create ${r.createMsMean} ms`).join(', '),
  gateway: (j) =>
    `gateway/bare req/s ratio ${j.ratio}, with ${j.apps} apps ${j.manyRatio} (goal >= ${j.goal}); CPU ratio ${j.cpuRatio} / ${j.manyCpuRatio}`,
  manifests: (j) =>
    `${j.count} manifests: cold ${j.cold.medianMs} ms (goal < ${j.goalMs} ms: ${j.meetsGoal ? 'met' : 'not met'}; full pipeline ${j.fullPipeline.medianMs} ms), cached ${j.cached.medianMs} ms`,
  converge: (j) =>
    `${j.apps} apps: ${j.results.map((r: Loose) => `${r.backend}@${r.concurrency} ${r.msPerApp} ms/app`).join(', ')}` +
    (j.goals?.pgSchema
      ? `; 1,000 schemas ${j.goals.pgSchema.seconds1000} s (goal < ${j.goals.pgSchema.goalSeconds1000}; their DDL alone ${j.goals.pgSchema.floorSeconds1000} s)`
      : '') +
    (j.goals?.pgDatabase
      ? `; databases ${j.goals.pgDatabase.ratio}× floor (goal ≤ ${j.goals.pgDatabase.goalRatio}), ${j.goals.pgDatabase.ratioToWithDdlFloor}× with the app's DDL`
      : ''),
  'cold-start': (j) =>
    j.results
      .map((r: Loose) => `${r.kind} p50 ${r.firstVisitMs.p50} / p95 ${r.firstVisitMs.p95} ms`)
      .join(', '),
  density: (j) => {
    const last = j.oneProcess.at(-1);
    const idle = j.idleStop;
    return (
      `${last.apps} apps: ${last.rssMiB} MiB in one process (${last.perAppKiB} KiB/app) vs ${j.processPerApp.meanRssMiB} MiB per process; ratio ${j.ratios[last.apps]}; ` +
      `idle stop of ${idle.stormed}: ${idle.peakRssMiB} → ${idle.afterRssMiB} MiB after ${idle.allStoppedAfterS} s, then ${idle.secondStormed} other apps peak at ${idle.secondPeakRssMiB} MiB`
    );
  },
  'hot-reload': (j) =>
    `watcher p50 ${j.watcher.p50} / p95 ${j.watcher.p95} ms; reload() p50 ${j.reload.p50} ms`,
  'mysql-shared-pool': (j) =>
    j.skipped
      ? 'skipped'
      : `new connection p50 ${j.newConnectionMs.p50} ms vs USE ${j.useMs.p50} ms; warm burst shared/per-app ${j.warmThroughputRatio}`,
  replicas: (j) =>
    j.skipped
      ? 'skipped'
      : `req/s via HAProxy 1 → 3 replicas ${j.throughput.one.requestsPerSecond} → ${j.throughput.three.requestsPerSecond}; ` +
        `failover ${j.failover.summary ? `p50 ${j.failover.summary.p50} / max ${j.failover.summary.max} ms` : 'n/a'}; ` +
        `stop propagation ${j.propagation.stop ? `p50 ${j.propagation.stop.p50} / p99 ${j.propagation.stop.p99} ms` : 'n/a'}`,
  connections: (j) => {
    if (j.skipped) return 'skipped';
    const variants = Object.values(j.variants as Record<string, Loose>).map(
      (v) =>
        `${v.key}: peak ${v.visit.peak} visiting, ${v.burst.peak} in the burst, ${v.burst.requestsPerSecond} req/s`,
    );
    const limited = j.limited
      ? `; at max_connections ${j.limited.maxConnections}: ${JSON.stringify(j.limited.answers)}`
      : '';
    return `${j.apps} apps: ${variants.join('; ')}${limited}`;
  },
};

interface Outcome {
  readonly bench: string;
  readonly seconds: number;
  readonly exitCode: number | null;
  readonly json: Json | undefined;
}

function runOne(bench: string, args: readonly string[]): Promise<Outcome> {
  const started = performance.now();
  console.log(`\n===== ${bench} ${args.join(' ')} =====`);
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(HERE, `${bench}.ts`), ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let json: Json | undefined;
  let buffered = '';
  child.stdout.on('data', (chunk: Buffer) => {
    process.stdout.write(chunk);
    buffered += chunk.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.startsWith('{')) continue;
      try {
        json = JSON.parse(line) as Json;
      } catch {
        // Not the JSON line.
      }
    }
  });
  let killTimer: NodeJS.Timeout | undefined;
  const timer = setTimeout(() => {
    console.error(`\n${bench}: over ${TIMEOUT_MS / 60_000} min, interrupting`);
    child.kill('SIGINT');
    killTimer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  }, TIMEOUT_MS);
  return new Promise((resolve) => {
    child.once('exit', (code) => {
      clearTimeout(timer);
      clearTimeout(killTimer);
      resolve({ bench, seconds: Math.round((performance.now() - started) / 100) / 10, exitCode: code, json });
    });
  });
}

const flags = process.argv.slice(2);
const full = flags.includes('--full');
const only = flags.filter((f) => !f.startsWith('--'));
const benches = fs
  .readdirSync(HERE)
  .filter((f) => f.endsWith('.ts') && !NOT_BENCHES.has(f))
  .map((f) => f.slice(0, -3))
  .filter((b) => only.length === 0 || only.includes(b))
  .sort();
for (const name of only) if (!benches.includes(name)) throw new Error(`no bench named ${name}`);

const outcomes: Outcome[] = [];
let stopping = false;
process.once('SIGINT', () => {
  // The child got the same SIGINT from the terminal and cleans up; run nothing after it.
  stopping = true;
});
for (const bench of benches) {
  if (stopping) break;
  outcomes.push(await runOne(bench, full ? [] : (QUICK_ARGS[bench] ?? [])));
}

const headline = (o: Outcome): string => {
  if (o.exitCode !== 0) return `FAILED (exit ${o.exitCode})`;
  if (!o.json) return 'no JSON line';
  try {
    return HEADLINES[o.bench]?.(o.json) ?? 'see its output';
  } catch {
    return 'see its output';
  }
};
console.log(`\n===== summary (${full ? 'full' : 'quick'} sizes, node ${process.version}) =====`);
console.table(outcomes.map((o) => ({ bench: o.bench, s: o.seconds, figures: headline(o) })));
const totalS = Math.round(outcomes.reduce((a, o) => a + o.seconds, 0));
console.log(`total ${totalS} s`);
console.log(
  JSON.stringify({
    bench: 'run',
    node: process.version,
    sizes: full ? 'full' : 'quick',
    totalSeconds: totalS,
    results: outcomes.map((o) => ({ bench: o.bench, seconds: o.seconds, exitCode: o.exitCode })),
  }),
);
if (outcomes.some((o) => o.exitCode !== 0) || stopping) process.exitCode = 1;
