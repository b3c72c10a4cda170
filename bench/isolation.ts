/**
 * Isolation modes (SPEC §8.3, issue 13): what running an app in its own worker thread or process
 * costs next to the shared mode, on a real `appvisor serve` (the built CLI, `dist/`, on
 * 127.0.0.1, a SQLite main database in a temp folder), with the application in
 * bench/fixtures/isolation-app.mjs:
 *
 * - throughput: requests/s and p50/p99 latency of `GET /apps/<app>/api/info` for one app per
 *   mode in the same serve, with autocannon; the apps take turns of one second, in the reverse
 *   order every other turn, and each ratio to shared is the median of the per-turn ratios (the
 *   2 cores are shared with the load generator: see bench/gateway.ts);
 * - RSS per idle app: per mode, a serve with N apps of that mode (none started: the baseline),
 *   then each visited once (its cold start: first visit → whole response, sequentially), then
 *   idle for a few seconds: (RSS of the serve and every process under it − the baseline) / N;
 * - a hung app: a worker or process app (`watchdogMs` 1000) whose route loops forever; the time
 *   from sending that request to the first 200 answered by a new instance of the app.
 *
 * Each answer names the process and thread it came from: a mode this build does not run (an
 * app asked for `worker` that answers from the supervisor's main thread, or one that does not
 * start) is reported n/a with the reason, and the rest still runs. Shared apps cannot be
 * preempted, so a shared hang would stop the serve: that row is n/a by design.
 *
 * Builds dist/ first (`npm run build`). Prints a table and one JSON line.
 *
 *   node --import tsx bench/isolation.ts [seconds=5] [apps=100] [hangs=3] [connections=10] [modes=shared,worker,process]
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  type AutocannonResult,
  autocannon,
  createWorkspace,
  httpGet,
  listArg,
  MiB,
  median,
  numberArg,
  onInterrupt,
  percentile,
  progress,
  ROOT,
  round,
  type Workspace,
} from './lib.js';

const MODES = ['shared', 'worker', 'process'] as const;
type Mode = (typeof MODES)[number];

const SECONDS = numberArg(0, 5);
const APPS = Math.max(1, numberArg(1, 100));
const HANGS = numberArg(2, 3);
const CONNECTIONS = Math.max(1, numberArg(3, 10));
const SELECTED = listArg(4, MODES).map((m) => {
  if (!(MODES as readonly string[]).includes(m)) throw new Error(`unknown mode ${m}; use ${MODES.join(',')}`);
  return m as Mode;
});

/** Issue 13's goals. */
const GOALS = { workerThroughputRatio: 0.7, workerIdleRssMiB: 15, hungRestartSlackMs: 1_000 };
const WATCHDOG_MS = 1_000;
/** Idle time before the RSS reading, after the last first visit. */
const SETTLE_MS = 3_000;
const FIXTURE = path.join(ROOT, 'bench/fixtures/isolation-app.mjs');
const CLI = path.join(ROOT, 'bin/appvisor.js');

// ---- one `appvisor serve` ----

interface Serve {
  readonly child: ChildProcess;
  readonly url: string;
  /** Stops it (SIGTERM, then SIGKILL after 15 s) and whatever it left running under it. */
  stop(): Promise<void>;
}

/** What an app instance of the fixture says about itself. */
interface Where {
  readonly name: string;
  readonly pid: number;
  readonly threadId: number;
  readonly instance: string;
}

/** Starts `appvisor serve` on the workspace's folders; resolves once it is ready. */
async function startServe(ws: Workspace): Promise<Serve> {
  const child = spawn(process.execPath, [CLI, 'serve'], {
    cwd: ws.dir,
    env: {
      PATH: process.env.PATH,
      APPVISOR_HOST: '127.0.0.1',
      APPVISOR_PORT: '0',
      APPVISOR_APPS_DIR: ws.appsDir,
      APPVISOR_DATA_DIR: ws.dataDir,
      APPVISOR_DATABASE_URL: ws.mainUrl,
      APPVISOR_APP: FIXTURE,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      unhook();
      const under = descendants(child.pid);
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(killer);
      }
      // Whatever the serve started and did not end (a process-mode app after a SIGKILL).
      for (const pid of under) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Gone already.
        }
      }
    })();
    return stopping;
  };
  const unhook = onInterrupt(stop);
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4_000);
  });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let buffer = '';
      let listening: string | undefined;
      const timer = setTimeout(
        () => reject(new Error(`serve not ready after 120 s; stderr: ${stderr}`)),
        120_000,
      );
      child.stdout!.on('data', (chunk: Buffer) => {
        buffer += chunk.toString();
        const lines = buffer.split('\n');
        buffer = lines.pop() ?? '';
        for (const text of lines) {
          let line: { msg?: string; url?: string; level?: number };
          try {
            line = JSON.parse(text);
          } catch {
            continue;
          }
          if (line.msg === 'appvisor listening') listening = line.url;
          if (line.msg?.startsWith('first reconcile done') && listening) {
            clearTimeout(timer);
            resolve(listening);
          }
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`serve exited with ${code} before it was ready; stderr: ${stderr}`));
      });
    });
    return { child, url, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The pids of every process under `pid` (children, their children, …), from /proc. */
function descendants(pid: number | undefined): number[] {
  if (pid === undefined) return [];
  const children = new Map<number, number[]>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      // `pid (comm) state ppid …`; comm may hold spaces and parentheses.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // Exited meanwhile.
    }
  }
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    for (const child of children.get(queue.shift()!) ?? []) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

/** VmRSS of `pid` in bytes (0 once it is gone). */
function rssOf(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** RSS of the serve and of every process under it. */
function treeRss(serve: Serve): number {
  const pid = serve.child.pid!;
  return rssOf(pid) + descendants(pid).reduce((sum, p) => sum + rssOf(p), 0);
}

/** Where `app` answered from, or why it did not answer. */
async function visit(serve: Serve, app: string): Promise<Where | { readonly failed: string }> {
  try {
    const r = await httpGet(`${serve.url}/apps/${app}/api/info`, { timeoutMs: 60_000 });
    if (r.status !== 200) return { failed: `answered ${r.status} ${r.body.slice(0, 300)}` };
    return JSON.parse(r.body) as Where;
  } catch (err) {
    return { failed: String(err) };
  }
}

/** Why an answer does not come from `mode` (undefined: it does). */
function notIn(mode: Mode, where: Where, servePid: number): string | undefined {
  const actual = where.pid !== servePid ? 'process' : where.threadId !== 0 ? 'worker' : 'shared';
  return actual === mode
    ? undefined
    : `an app with isolation.mode ${mode} answered from ${actual === 'shared' ? "the supervisor's main thread" : `a ${actual}`}: this build does not run mode ${mode}`;
}

const isolationLines = (mode: Mode): string =>
  `isolation:\n  mode: ${mode}\n${mode === 'shared' ? '' : `  watchdogMs: ${WATCHDOG_MS}\n`}`;

// ---- throughput ----

/** The routes measured: the gateway's and the hop's own cost, and a route with work. */
const ROUTES = ['/api/info', '/api/rows'] as const;
type Route = (typeof ROUTES)[number];

interface Throughput {
  readonly mode: Mode;
  readonly route: Route;
  readonly rps: number | null;
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  /** Median of the per-turn ratios to shared. */
  readonly ratioToShared: number | null;
  readonly failures: number;
  readonly na?: string;
}

async function throughput(modes: readonly Mode[], route: Route): Promise<Throughput[]> {
  const ws = await createWorkspace('sqlite');
  try {
    const app = (mode: Mode): string => `${ws.prefix}_${mode}`;
    for (const mode of modes) {
      fs.writeFileSync(
        path.join(ws.appsDir, `${app(mode)}.yaml`),
        ws.manifest(app(mode), isolationLines(mode)),
      );
    }
    progress(`throughput of ${route}: serve with one app per mode (${modes.join(', ')})`);
    const serve = await startServe(ws);
    try {
      const na = new Map<Mode, string>();
      for (const mode of modes) {
        const where = await visit(serve, app(mode));
        const why =
          'failed' in where ? `does not start: ${where.failed}` : notIn(mode, where, serve.child.pid!);
        if (why) na.set(mode, why);
      }
      const running = modes.filter((m) => !na.has(m));
      const url = (mode: Mode): string => `${serve.url}/apps/${app(mode)}${route}`;
      const settings = { connections: CONNECTIONS, pipelining: 1 };
      for (const mode of running) await autocannon({ url: url(mode), ...settings, duration: 2 });
      const turns = Math.max(1, Math.round(SECONDS));
      const slices = new Map<Mode, AutocannonResult[]>(running.map((m) => [m, []]));
      for (let turn = 0; turn < turns; turn++) {
        for (const mode of turn % 2 === 0 ? running : [...running].reverse()) {
          slices.get(mode)!.push(await autocannon({ url: url(mode), ...settings, duration: 1 }));
        }
      }
      const shared = slices.get('shared');
      return modes.map((mode): Throughput => {
        const own = slices.get(mode);
        if (!own)
          return {
            mode,
            route,
            rps: null,
            p50Ms: null,
            p99Ms: null,
            ratioToShared: null,
            failures: 0,
            na: na.get(mode)!,
          };
        const total = own.reduce((sum, s) => sum + s.requests.total, 0);
        const ratios = shared ? own.map((s, i) => s.requests.total / shared[i]!.requests.total) : [];
        return {
          mode,
          route,
          rps: Math.round(total / turns),
          p50Ms: median(own.map((s) => s.latency.p50)),
          p99Ms: Math.max(...own.map((s) => s.latency.p99)),
          ratioToShared: ratios.length > 0 ? round(median(ratios), 3) : null,
          failures: own.reduce((sum, s) => sum + s.errors + s.timeouts + s.non2xx, 0),
        };
      });
    } finally {
      await serve.stop();
    }
  } finally {
    await ws.dispose();
  }
}

// ---- RSS per idle app and cold start ----

interface Density {
  readonly mode: Mode;
  readonly apps: number;
  readonly baselineMiB: number | null;
  readonly afterMiB: number | null;
  readonly perAppMiB: number | null;
  /** First visit → whole response, per app in turn. */
  readonly coldStartMs: { readonly p50: number; readonly p95: number; readonly max: number } | null;
  readonly na?: string;
}

async function density(mode: Mode): Promise<Density> {
  const ws = await createWorkspace('sqlite');
  const none = { mode, apps: APPS, baselineMiB: null, afterMiB: null, perAppMiB: null, coldStartMs: null };
  try {
    const names = Array.from({ length: APPS }, (_, i) => ws.appName(i));
    await ws.writeManifests(names, () => isolationLines(mode));
    progress(`${mode}: serve with ${APPS} apps, none started`);
    const serve = await startServe(ws);
    try {
      await sleep(SETTLE_MS);
      const baseline = treeRss(serve);
      progress(`${mode}: visiting each app once`);
      const cold: number[] = [];
      for (const name of names) {
        const t0 = performance.now();
        const where = await visit(serve, name);
        cold.push(performance.now() - t0);
        const why =
          'failed' in where ? `does not start: ${where.failed}` : notIn(mode, where, serve.child.pid!);
        if (why) return { ...none, na: why };
      }
      await sleep(SETTLE_MS);
      const after = treeRss(serve);
      const sorted = [...cold].sort((a, b) => a - b);
      return {
        mode,
        apps: APPS,
        baselineMiB: round(baseline / MiB, 1),
        afterMiB: round(after / MiB, 1),
        perAppMiB: round((after - baseline) / APPS / MiB, 2),
        coldStartMs: {
          p50: round(percentile(sorted, 50), 1),
          p95: round(percentile(sorted, 95), 1),
          max: round(sorted.at(-1)!, 1),
        },
      };
    } finally {
      await serve.stop();
    }
  } finally {
    await ws.dispose();
  }
}

// ---- a hung app ----

interface Hang {
  readonly mode: Mode;
  readonly watchdogMs: number;
  /** Hang request sent → first 200 from a new instance: one hang of each of `hangs` apps. */
  readonly restartMs: readonly number[];
  readonly medianMs: number | null;
  readonly maxMs: number | null;
  /**
   * The first app hung once more right after its restart: a crash loop, which waits the queue's
   * backoff (1 s after the second crash within a minute) on top.
   */
  readonly repeatMs: number | null;
  /** What the hung requests themselves were answered. */
  readonly hungAnswers: readonly string[];
  readonly na?: string;
}

async function hang(mode: Mode): Promise<Hang> {
  const none = {
    mode,
    watchdogMs: WATCHDOG_MS,
    restartMs: [],
    medianMs: null,
    maxMs: null,
    repeatMs: null,
    hungAnswers: [],
  };
  if (mode === 'shared') {
    return {
      ...none,
      na: 'a shared app cannot be preempted: its endless loop stops the serve (it is only logged)',
    };
  }
  if (HANGS === 0) return { ...none, na: 'hangs=0' };
  const ws = await createWorkspace('sqlite');
  try {
    const apps = Array.from({ length: HANGS }, (_, i) => `${ws.prefix}_hang${i}`);
    for (const app of apps) {
      fs.writeFileSync(path.join(ws.appsDir, `${app}.yaml`), ws.manifest(app, isolationLines(mode)));
    }
    progress(`${mode}: ${HANGS} apps hung once each, then the first once more`);
    const serve = await startServe(ws);
    try {
      const hangOnce = async (
        app: string,
        before: Where,
      ): Promise<{ ms: number; answer: string; after: Where } | string> => {
        const t0 = performance.now();
        // On a connection of its own: the polls below must not queue behind it.
        const hung = httpGet(`${serve.url}/apps/${app}/hang`, {
          timeoutMs: 30_000,
          agent: new http.Agent(),
        }).then(
          (r) => `${r.status}`,
          (err: unknown) => `no answer: ${String(err)}`,
        );
        const deadline = t0 + 60_000;
        while (performance.now() < deadline) {
          const r = await visit(serve, app);
          if (!('failed' in r) && r.instance !== before.instance) {
            return { ms: performance.now() - t0, answer: await hung, after: r };
          }
          await sleep(20);
        }
        return `${app} not restarted within 60 s`;
      };
      const times: number[] = [];
      const answers: string[] = [];
      let first: Where | undefined;
      for (const app of apps) {
        const where = await visit(serve, app);
        const why =
          'failed' in where ? `does not start: ${where.failed}` : notIn(mode, where, serve.child.pid!);
        if (why) return { ...none, na: why };
        const result = await hangOnce(app, where as Where);
        if (typeof result === 'string') return { ...none, na: result };
        times.push(result.ms);
        answers.push(result.answer);
        first ??= result.after;
      }
      const again = await hangOnce(apps[0]!, first!);
      if (typeof again === 'string') return { ...none, na: again };
      answers.push(again.answer);
      return {
        mode,
        watchdogMs: WATCHDOG_MS,
        restartMs: times.map((t) => Math.round(t)),
        medianMs: Math.round(median(times)),
        maxMs: Math.round(Math.max(...times)),
        repeatMs: Math.round(again.ms),
        hungAnswers: answers,
      };
    } finally {
      await serve.stop();
    }
  } finally {
    await ws.dispose();
  }
}

// ---- helpers ----

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const cell = (value: number | null | undefined, suffix = ''): string =>
  value === null || value === undefined ? 'n/a' : `${value}${suffix}`;

// ---- main ----

progress('building dist/ (npm run build)');
const build = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8' });
if (build.status !== 0) throw new Error(`npm run build failed:\n${build.stdout}\n${build.stderr}`);

const rates: Throughput[] = [];
for (const route of ROUTES) rates.push(...(await throughput(SELECTED, route)));
const densities: Density[] = [];
for (const mode of SELECTED) densities.push(await density(mode));
const hangs: Hang[] = [];
for (const mode of SELECTED) hangs.push(await hang(mode));

const worker = {
  rate: rates.find((r) => r.mode === 'worker' && r.route === '/api/info'),
  density: densities.find((d) => d.mode === 'worker'),
};
const verdict = (ok: boolean | undefined): string => (ok === undefined ? 'n/a' : ok ? 'met' : 'not met');
const goals = {
  workerThroughput: verdict(
    worker.rate?.ratioToShared == null ? undefined : worker.rate.ratioToShared >= GOALS.workerThroughputRatio,
  ),
  workerIdleRss: verdict(
    worker.density?.perAppMiB == null ? undefined : worker.density.perAppMiB <= GOALS.workerIdleRssMiB,
  ),
  hungRestart: verdict(
    hangs.every((h) => h.maxMs === null)
      ? undefined
      : hangs.every((h) => h.maxMs === null || h.maxMs <= WATCHDOG_MS + GOALS.hungRestartSlackMs),
  ),
};

console.log(
  `\nisolation modes: GET /apps/<app>/api/info and /api/rows (bench/fixtures/isolation-app.mjs) on appvisor serve, SQLite; ` +
    `autocannon -c ${CONNECTIONS}, ${Math.max(1, Math.round(SECONDS))} one-second turns per mode; ${APPS} idle apps per mode; ` +
    `watchdogMs ${WATCHDOG_MS}; node ${process.version}`,
);
console.table(
  SELECTED.map((mode) => {
    const r = rates.find((x) => x.mode === mode && x.route === '/api/info')!;
    const w = rates.find((x) => x.mode === mode && x.route === '/api/rows')!;
    const d = densities.find((x) => x.mode === mode)!;
    const h = hangs.find((x) => x.mode === mode)!;
    return {
      mode,
      'info req/s': cell(r.rps),
      '× shared': cell(r.ratioToShared),
      'p50 / p99 ms': `${cell(r.p50Ms)} / ${cell(r.p99Ms)}`,
      'rows req/s': cell(w.rps),
      'rows × shared': cell(w.ratioToShared),
      'rows p50 / p99 ms': `${cell(w.p50Ms)} / ${cell(w.p99Ms)}`,
      'MiB / idle app': cell(d.perAppMiB),
      'cold start p50 ms': cell(d.coldStartMs?.p50),
      'hung → restarted ms (median / max)': h.medianMs === null ? 'n/a' : `${h.medianMs} / ${h.maxMs}`,
      'hung again → restarted ms': cell(h.repeatMs),
    };
  }),
);
for (const [what, rows] of [
  ['throughput', rates],
  ['idle RSS / cold start', densities],
  ['hung app', hangs],
] as const) {
  for (const row of rows) if (row.na) console.log(`n/a ${what}, ${row.mode}: ${row.na}`);
}
console.log(
  `goals: worker throughput (/api/info) >= ${GOALS.workerThroughputRatio} × shared: ${goals.workerThroughput}; ` +
    `RSS per idle worker app <= ${GOALS.workerIdleRssMiB} MiB: ${goals.workerIdleRss}; ` +
    `hung app restarted within watchdogMs + ${GOALS.hungRestartSlackMs} ms (${WATCHDOG_MS + GOALS.hungRestartSlackMs} ms): ${goals.hungRestart}`,
);
console.log(
  JSON.stringify({
    bench: 'isolation',
    node: process.version,
    seconds: Math.max(1, Math.round(SECONDS)),
    connections: CONNECTIONS,
    apps: APPS,
    watchdogMs: WATCHDOG_MS,
    goals: { ...GOALS, verdicts: goals },
    throughput: rates,
    density: densities,
    hang: hangs,
  }),
);
if (rates.some((r) => r.failures > 0)) process.exitCode = 1;
