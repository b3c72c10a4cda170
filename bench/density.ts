/**
 * Density: RSS of ONE supervisor process with R routed apps (default 10,000) of which 100 / 500 /
 * 1,000 run (SQLite), against the alternative a user would otherwise pick: the same sample app as
 * one Node process per app.
 *
 * The supervisor runs in a child process of its own (so this script's memory is not counted),
 * bundled to plain JavaScript (no tsx loader thread) and started with --expose-gc. Every app is
 * started by one visit; then the child collects garbage, settles and reports
 * process.memoryUsage(). Per app = (RSS with n apps started − RSS with all apps routed but none
 * started) / n; "from empty" (largest size only) measures from a supervisor with no manifests.
 * The process-per-app side starts P (≤ 20) processes, each a bare node:http server with the
 * sample app's handler on its own SQLite file, visits each once, measures them the same way
 * and extrapolates the mean to n.
 *
 * Routed apps are provisioned and have a route and a record, but are never visited: their cost is
 * (RSS with all routed, none started − RSS with no manifests) / R.
 *
 * Idle stop (SPEC §8.2): a second supervisor, with settings idleStop (default 10s), gets a visit
 * storm of the largest size's apps (16 at a time); its RSS is measured at the peak, right after
 * the storm, and again once the admin API shows every stormed app `stopped` with reason `idle`.
 *
 *   node --import tsx bench/density.ts [sizes=100,500,1000] [processes=20] [routed=10000] [idleStop=10s]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { formatDuration, parseDuration } from '../src/config/duration.js';
import { applyPlan } from '../src/reconcile/commands.js';
import {
  bundleScript,
  createWorkspace,
  httpGet,
  listArg,
  MiB,
  mib,
  numberArg,
  onInterrupt,
  progress,
  report,
  round,
  silentLog,
} from './lib.js';

const SIZES = listArg(0, ['100', '500', '1000'])
  .map(Number)
  .sort((a, b) => a - b);
const PROCESSES = Math.min(20, Math.max(1, numberArg(1, 20)));
/** Apps with a manifest, a record and a route; the first `sizes` of them are visited. */
const ROUTED = Math.max(SIZES.at(-1) ?? 0, numberArg(2, 10_000));
const SETTLE_MS = 1_500;
/** Settings idleStop of the idle-stop phase. */
const IDLE_STOP_MS = parseDuration(process.argv[5] ?? '10s') ?? 10_000;
/** Visits in flight at once during the storm. */
const STORM_CONCURRENCY = 16;
/** How often the idle-stop phase asks the admin API whether the stormed apps are stopped. */
const POLL_MS = 500;
/** ANCHORS.md: one idle Node process with a node:http server. */
const ANCHOR_IDLE_NODE_MIB = 45;

/** Shared by both child scripts: collect garbage, settle, report memory. */
const MEASURE = `
async function measure(settleMs: number) {
  const before = process.memoryUsage().rss;
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 3; i++) {
    gc?.();
    await new Promise((r) => setTimeout(r, settleMs / 3));
  }
  const m = process.memoryUsage();
  return { rssBeforeGc: before, rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external };
}
function serveCommands(close: () => Promise<void>) {
  // The bench went away (crashed or interrupted): do not outlive it.
  process.on('disconnect', () => process.exit(0));
  process.on('message', async (msg: { cmd: string; settleMs?: number }) => {
    if (msg.cmd === 'measure') process.send!({ memory: await measure(msg.settleMs ?? 1000) });
    if (msg.cmd === 'close') {
      await close();
      process.exit(0);
    }
  });
}
`;

const SUPERVISOR_CHILD = `
import { pino } from 'pino';
import { startSupervisor } from './src/serve/supervisor.ts';
${MEASURE}
const sup = await startSupervisor({
  settings: JSON.parse(process.env.AVB_SETTINGS!),
  log: pino({ level: 'silent' }),
  env: {},
});
await sup.ready;
serveCommands(() => sup.close({ graceMs: 5000 }));
// The token lets the bench poll the admin API for the apps' statuses.
process.send!({ url: sup.url, token: sup.adminToken });
`;

const SINGLE_APP_CHILD = `
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { SqliteClient } from './src/dialects/sqlite/client.ts';
import { createJwtHelpers } from './src/runtime/jwt.ts';
import { migrate } from './src/runtime/migrations.ts';
import sampleApp from './src/sample-app/index.ts';
${MEASURE}
const { name, file } = JSON.parse(process.env.AVB_APP!) as { name: string; file: string };
const client = new SqliteClient(file, { fileMustExist: true });
await migrate(client, sampleApp.migrations, { app: name, targetVersion: sampleApp.version, allowUpgrade: true });
const secret = crypto.randomBytes(32).toString('base64url');
const instance = await sampleApp.create({
  name,
  basePath: '',
  config: {},
  database: { dialect: 'sqlite', client, connection: { dialect: 'sqlite', filename: file, database: name } },
  jwt: createJwtHelpers({ app: name, ownSecret: secret, mode: 'own', mainSecret: secret, isMain: false }),
  log: pino({ level: 'silent' }),
  isMain: false,
});
const server = http.createServer(instance.handler);
server.listen(0, '127.0.0.1', () => process.send!({ url: 'http://127.0.0.1:' + (server.address() as AddressInfo).port }));
serveCommands(async () => {
  server.close();
  await client.close();
});
`;

interface Memory {
  readonly rssBeforeGc: number;
  readonly rss: number;
  readonly heapUsed: number;
  readonly heapTotal: number;
  readonly external: number;
}

interface Child {
  readonly process: ChildProcess;
  readonly url: string;
  /** The supervisor's admin token (supervisor children only). */
  readonly token: string | undefined;
  measure(): Promise<Memory>;
  close(): Promise<void>;
}

function startChild(file: string, env: Record<string, string>): Promise<Child> {
  const child = spawn(process.execPath, ['--expose-gc', file], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const running = (): boolean => child.exitCode === null && child.signalCode === null;
  const unhook = onInterrupt(async () => {
    child.kill('SIGKILL');
  });
  void exited.then(unhook);
  const request = <T>(msg: object, key: string): Promise<T> =>
    new Promise((resolve, reject) => {
      const onMessage = (m: Record<string, unknown>): void => {
        if (!(key in m)) return;
        child.off('message', onMessage);
        resolve(m[key] as T);
      };
      child.on('message', onMessage);
      child.once('exit', (code) => reject(new Error(`child exited with ${code}`)));
      // With a callback, a closed channel is an error here, not an unhandled 'error' event.
      child.send(msg, (err) => {
        if (err) reject(err);
      });
    });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`child exited with ${code} before it was ready`)));
    child.once('message', (m: { url: string; token?: string }) =>
      resolve({
        process: child,
        url: m.url,
        token: m.token,
        measure: () => request<Memory>({ cmd: 'measure', settleMs: SETTLE_MS }, 'memory'),
        async close() {
          if (!running()) return;
          if (child.connected) child.send({ cmd: 'close' }, (err) => err && child.kill('SIGKILL'));
          else child.kill('SIGKILL');
          const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
          await exited;
          clearTimeout(timer);
        },
      }),
    );
  });
}

async function visit(url: string, expectName: string): Promise<void> {
  const r = await httpGet(url);
  if (r.status !== 200 || (JSON.parse(r.body) as { name?: string }).name !== expectName) {
    throw new Error(`GET ${url} answered ${r.status} ${r.body}`);
  }
}

/** Visits `names` with STORM_CONCURRENCY visits in flight at once. */
async function storm(url: string, names: readonly string[]): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < names.length) {
      const name = names[next++]!;
      await visit(`${url}/apps/${name}/api/info`, name);
    }
  };
  await Promise.all(Array.from({ length: STORM_CONCURRENCY }, worker));
}

/**
 * Polls the admin API until every app of `names` is stopped with reason idle; the seconds from
 * `since` (a performance.now() time) until it saw so.
 */
async function idleStopped(
  sup: Child,
  names: readonly string[],
  since: number,
  timeoutMs: number,
): Promise<number> {
  const wanted = new Set(names);
  for (;;) {
    const r = await httpGet(`${sup.url}/_supervisor/api/apps`, {
      headers: { authorization: `Bearer ${sup.token}` },
    });
    if (r.status !== 200) throw new Error(`GET /_supervisor/api/apps answered ${r.status} ${r.body}`);
    const apps = JSON.parse(r.body) as { name: string; status: string; statusReason?: string | null }[];
    const left = apps.filter(
      (a) => wanted.has(a.name) && !(a.status === 'stopped' && a.statusReason === 'idle'),
    );
    const elapsedMs = performance.now() - since;
    if (left.length === 0) return elapsedMs / 1000;
    if (elapsedMs > timeoutMs) {
      throw new Error(
        `${left.length} apps not stopped for idleness after ${timeoutMs} ms, e.g. ${JSON.stringify(left[0])}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

const ws = await createWorkspace('sqlite');
const bundles: { dispose(): Promise<void> }[] = [];
const children: Child[] = [];
try {
  const names = Array.from({ length: ROUTED }, (_, i) => ws.appName(i));
  await ws.writeManifests(names);
  progress(`provisioning ${ROUTED} SQLite apps`);
  const t0 = performance.now();
  const applied = await applyPlan(ws.settings, { log: silentLog });
  if (applied.failures.length > 0) throw new Error(`apply failed: ${JSON.stringify(applied.failures[0])}`);
  progress(`provisioned in ${((performance.now() - t0) / 1000).toFixed(1)} s; bundling the child scripts`);
  const supervisorScript = await bundleScript('density-supervisor', SUPERVISOR_CHILD);
  bundles.push(supervisorScript);
  const singleScript = await bundleScript('density-single-app', SINGLE_APP_CHILD);
  bundles.push(singleScript);

  // ---- one process, many apps ----
  // An empty supervisor (no manifests, fresh state store) for the cost of an app's route and record too.
  const emptyDir = path.join(ws.dir, 'empty');
  await fs.mkdir(path.join(emptyDir, 'apps.d'), { recursive: true });
  const empty = await startChild(supervisorScript.file, {
    AVB_SETTINGS: JSON.stringify({
      ...ws.settings,
      appsDir: path.join(emptyDir, 'apps.d'),
      dataDir: path.join(emptyDir, 'data'),
      database: { url: `sqlite:${path.join(emptyDir, 'data', 'main.sqlite')}` },
    }),
  });
  children.push(empty);
  const emptyMemory = await empty.measure();
  await empty.close();

  const sup = await startChild(supervisorScript.file, { AVB_SETTINGS: JSON.stringify(ws.settings) });
  children.push(sup);
  const baseline = await sup.measure();
  const inProcess: { apps: number; memory: Memory; visitS: number }[] = [];
  let visited = 0;
  for (const size of SIZES) {
    const t = performance.now();
    for (; visited < size; visited++) {
      await visit(`${sup.url}/apps/${names[visited]}/api/info`, names[visited]!);
    }
    const visitS = (performance.now() - t) / 1000;
    const memory = await sup.measure();
    inProcess.push({ apps: size, memory, visitS });
    progress(`${size} apps running in one process: RSS ${mib(memory.rss)} MiB`);
  }
  await sup.close();

  // ---- idle stop after a visit storm ----
  const stormed = names.slice(0, SIZES.at(-1) ?? 0);
  const idleSup = await startChild(supervisorScript.file, {
    AVB_SETTINGS: JSON.stringify({ ...ws.settings, idleStopMs: IDLE_STOP_MS }),
  });
  children.push(idleSup);
  const stormStart = performance.now();
  await storm(idleSup.url, stormed);
  const stormS = (performance.now() - stormStart) / 1000;
  const peak = await idleSup.measure();
  progress(`visit storm of ${stormed.length} apps in ${stormS.toFixed(1)} s: RSS ${mib(peak.rss)} MiB`);
  const stoppedAfterS = await idleStopped(idleSup, stormed, stormStart, IDLE_STOP_MS + 120_000);
  const afterIdle = await idleSup.measure();
  progress(
    `all ${stormed.length} stopped (idle) ${stoppedAfterS.toFixed(1)} s after the storm began: RSS ${mib(afterIdle.rss)} MiB`,
  );
  // The memory the stopped apps freed goes back to the allocator rather than to the OS; what
  // matters is that it is reused: a storm of as many other apps peaks where the first did
  // (without idle stop, twice as many apps would be running).
  const secondStorm = names.slice(stormed.length, 2 * stormed.length);
  await storm(idleSup.url, secondStorm);
  const secondPeak = await idleSup.measure();
  progress(`a second storm of ${secondStorm.length} other apps: RSS ${mib(secondPeak.rss)} MiB`);
  await idleSup.close();

  // ---- one process per app ----
  const singles: { rss: number; rssBeforeGc: number; heapUsed: number }[] = [];
  const own: Child[] = [];
  for (let i = 0; i < Math.min(PROCESSES, names.length); i++) {
    const name = names[i]!;
    const file = path.join(ws.dataDir, 'apps', `${name}.sqlite`);
    const child = await startChild(singleScript.file, { AVB_APP: JSON.stringify({ name, file }) });
    children.push(child);
    own.push(child);
    await visit(`${child.url}/api/info`, name);
  }
  for (const m of await Promise.all(own.map((c) => c.measure()))) singles.push(m);
  await Promise.all(own.map((c) => c.close()));
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const perProcess = mean(singles.map((s) => s.rss));
  const perProcessNoGc = mean(singles.map((s) => s.rssBeforeGc));

  const routedPerAppKiB = round((baseline.rss - emptyMemory.rss) / ROUTED / 1024, 1);
  const idleLabel = `idleStop ${formatDuration(IDLE_STOP_MS)}`;
  const rows: Record<string, unknown>[] = inProcess.map((r) => {
    const perApp = (r.memory.rss - baseline.rss) / r.apps;
    const separate = perProcess * r.apps;
    return {
      phase: 'visited, running',
      routed: ROUTED,
      running: r.apps,
      'one process RSS MiB': mib(r.memory.rss),
      'per running app KiB': round(perApp / 1024, 0),
      'heap used MiB': mib(r.memory.heapUsed),
      [`process per app MiB (${singles.length} measured)`]: Math.round(separate / MiB),
      'ratio (per-app / one)': round(separate / r.memory.rss, 1),
    };
  });
  const returnedMiB = mib(peak.rss - afterIdle.rss);
  rows.push(
    {
      phase: `${idleLabel}: peak after the storm`,
      routed: ROUTED,
      running: stormed.length,
      'one process RSS MiB': mib(peak.rss),
      'per running app KiB': round((peak.rss - baseline.rss) / Math.max(1, stormed.length) / 1024, 0),
      'heap used MiB': mib(peak.heapUsed),
    },
    {
      phase: `${idleLabel}: all stopped (idle) ${round(stoppedAfterS, 1)} s after the storm began`,
      routed: ROUTED,
      running: 0,
      'one process RSS MiB': mib(afterIdle.rss),
      'per running app KiB': `${returnedMiB} MiB returned`,
      'heap used MiB': mib(afterIdle.heapUsed),
    },
    {
      phase: `${idleLabel}: peak after a storm of ${secondStorm.length} other apps`,
      routed: ROUTED,
      running: secondStorm.length,
      'one process RSS MiB': mib(secondPeak.rss),
      'per running app KiB': `${mib(secondPeak.rss - peak.rss)} MiB above the first peak`,
      'heap used MiB': mib(secondPeak.heapUsed),
    },
  );
  report(
    `density: idle SQLite apps in ONE supervisor process vs one Node process per app ` +
      `(no manifests: ${mib(emptyMemory.rss)} MiB; ${ROUTED} routed, none started: ${mib(baseline.rss)} MiB = ${routedPerAppKiB} KiB per routed app; one app per process: ${mib(perProcess)} MiB each, ` +
      `${mib(perProcessNoGc)} MiB before gc; ANCHORS idle node:http ≈ ${ANCHOR_IDLE_NODE_MIB} MB) — node ${process.version}`,
    rows,
    {
      bench: 'density',
      node: process.version,
      settleMs: SETTLE_MS,
      emptyRssMiB: mib(emptyMemory.rss),
      emptyHeapUsedMiB: mib(emptyMemory.heapUsed),
      routed: ROUTED,
      routedPerAppKiB,
      baselineRssMiB: mib(baseline.rss),
      baselineHeapUsedMiB: mib(baseline.heapUsed),
      oneProcess: inProcess.map((r) => ({
        apps: r.apps,
        rssMiB: mib(r.memory.rss),
        rssBeforeGcMiB: mib(r.memory.rssBeforeGc),
        heapUsedMiB: mib(r.memory.heapUsed),
        externalMiB: mib(r.memory.external),
        perAppKiB: round((r.memory.rss - baseline.rss) / r.apps / 1024, 1),
        visitAllS: round(r.visitS),
      })),
      processPerApp: {
        measured: singles.length,
        meanRssMiB: mib(perProcess),
        meanRssBeforeGcMiB: mib(perProcessNoGc),
        minRssMiB: mib(Math.min(...singles.map((s) => s.rss))),
        maxRssMiB: mib(Math.max(...singles.map((s) => s.rss))),
        extrapolatedMiB: Object.fromEntries(
          inProcess.map((r) => [r.apps, Math.round((perProcess * r.apps) / MiB)]),
        ),
      },
      ratios: Object.fromEntries(
        inProcess.map((r) => [r.apps, round((perProcess * r.apps) / r.memory.rss, 1)]),
      ),
      idleStop: {
        idleStopMs: IDLE_STOP_MS,
        stormed: stormed.length,
        stormConcurrency: STORM_CONCURRENCY,
        stormS: round(stormS),
        peakRssMiB: mib(peak.rss),
        peakHeapUsedMiB: mib(peak.heapUsed),
        allStoppedAfterS: round(stoppedAfterS, 1),
        afterRssMiB: mib(afterIdle.rss),
        afterHeapUsedMiB: mib(afterIdle.heapUsed),
        returnedMiB,
        secondStormed: secondStorm.length,
        secondPeakRssMiB: mib(secondPeak.rss),
        secondPeakAboveFirstMiB: mib(secondPeak.rss - peak.rss),
        baselineRssMiB: mib(baseline.rss),
      },
    },
  );
} finally {
  await Promise.all(children.map((c) => c.close().catch(() => c.process.kill('SIGKILL'))));
  for (const b of bundles) await b.dispose();
  await ws.dispose();
}
