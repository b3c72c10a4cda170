/**
 * Gateway overhead: requests/s of `GET /apps/<app>/api/info` through `createGateway` vs the same
 * handler on a bare node:http server, with one routed app and with 10,000 (routes and domains
 * registered, one in a hundred running). The gateway servers record every request into the
 * supervisor's own metrics and its live figures per app (serve/app-figures.ts), run each app's handler in the app's scope (`runInApp`, as an app
 * instance does) and watch the event loop (serve/loop-watcher.ts), as `serve` does. Each server
 * runs in its own child process; autocannon (same settings for all) runs here.
 *
 * The 2 cores are shared with the load generator and with whatever else runs on the machine, so
 * the servers take turns of one second, in the reverse order every other turn (a drift in the
 * background load then hits each server alike), and a ratio is the median of the per-turn
 * ratios to bare: `seconds` per server and round, that many turns. Server CPU per request is printed next to it: it does not move with the client.
 * Prints a table and one JSON line.
 *
 *   node --import tsx bench/gateway.ts [seconds=5] [rounds=4] [connections=10] [apps=10000]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { createMetrics } from '../src/admin/metrics.js';
import { AppvisorError } from '../src/errors.js';
import { createGateway } from '../src/gateway/server.js';
import type { GatewayApps, ReadyApp } from '../src/gateway/types.js';
import { resolveLoggerOptions } from '../src/log.js';
import { appScope, runInApp } from '../src/runtime/app-context.js';
import { AppFigures } from '../src/serve/app-figures.js';
import { startLoopWatcher } from '../src/serve/loop-watcher.js';
import { type AutocannonResult, autocannon, median } from './lib.js';

const KINDS = ['bare', 'gateway', 'gateway-many'] as const;
type Kind = (typeof KINDS)[number];

/** The goal for gateway / bare requests per second (issue 10). */
const GOAL = 0.98;
/** One in this many of the routed apps is running. */
const RUNNING_EVERY = 100;

const BODY = JSON.stringify({ name: 'x', version: '1.0.0' });
const HEADERS = {
  'content-type': 'application/json; charset=utf-8',
  'content-length': Buffer.byteLength(BODY),
};

/** The application handler every server runs. */
function info(_req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(200, HEADERS).end(BODY);
}

const appName = (i: number): string => `app${String(i).padStart(5, '0')}`;

/** The app the many-apps server is asked for: a running one in the middle of the table. */
const target = (apps: number): string => appName(Math.floor(apps / 2 / RUNNING_EVERY) * RUNNING_EVERY);

/**
 * `count` routed apps, each with a domain, kept in maps as the runtime keeps them; one in
 * RUNNING_EVERY is running. Requests are counted by the supervisor's metrics.
 */
function routedApps(count: number): GatewayApps {
  const routes = new Set<string>();
  const domains = new Map<string, string>();
  const running = new Map<string, ReadyApp>();
  for (let i = 0; i < count; i++) {
    const name = appName(i);
    routes.add(name);
    domains.set(`${name}.example.com`, name);
    const scope = appScope(name);
    if (i % RUNNING_EVERY === 0)
      running.set(name, { name, handler: (req, res) => runInApp(scope, info, req, res) });
  }
  const main: ReadyApp = { name: 'main', handler: info };
  const metrics = createMetrics();
  return {
    has: (name) => routes.has(name),
    appForDomain: (host) => domains.get(host),
    ready: (name) => (routes.has(name) ? running.get(name) : undefined),
    readyMain: () => main,
    acquire: async (name) => {
      const app = running.get(name);
      if (app !== undefined) return app;
      throw new AppvisorError(routes.has(name) ? 'APP_STOPPED' : 'APP_NOT_FOUND', { app: name });
    },
    acquireMain: async () => main,
    onRequest: (name, status, ms) => metrics.observeRequest(name, status, ms),
  };
}

async function serve(kind: Kind, apps: number): Promise<void> {
  let port: number;
  if (kind === 'bare') {
    const server = createServer(info);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  } else {
    await startLoopWatcher({
      log: pino({ level: 'silent' }),
      threadLog: resolveLoggerOptions({ level: 'silent' }),
    });
    const figures = new AppFigures();
    figures.start();
    const gateway = createGateway({
      apps: routedApps(kind === 'gateway' ? 1 : apps),
      supervisor: () => {},
      log: pino({ level: 'silent' }),
      traffic: figures,
    });
    port = (await gateway.listen(0, '127.0.0.1')).port;
  }
  process.on('message', () => {
    const { user, system } = process.cpuUsage();
    process.send?.({ cpuMicros: user + system });
  });
  process.send?.({ port });
}

/** One server in one round, over its slices. */
interface Row {
  readonly round: number;
  readonly server: Kind;
  readonly rps: number;
  readonly cpuMicrosPerRequest: number;
  /** Of one core. */
  readonly cpuShare: number;
  readonly p50: number;
  readonly p99: number;
  readonly errors: number;
  readonly non2xx: number;
}

/** One server's share of one turn. */
interface Slice {
  readonly round: number;
  readonly turn: number;
  readonly server: Kind;
  readonly cpuMicros: number;
  readonly result: AutocannonResult;
}

interface Child {
  readonly child: ChildProcess;
  readonly port: number;
}

/** CPU time (user + system, µs) the child has used so far. */
function cpuOf({ child }: Child): Promise<number> {
  return new Promise((resolve) => {
    child.once('message', (msg: { cpuMicros: number }) => resolve(msg.cpuMicros));
    child.send('cpu');
  });
}

function startChild(kind: Kind, apps: number): Promise<Child> {
  const script = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, ['--import', 'tsx', script, 'serve', kind, String(apps)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    child.once('message', (msg: { port: number }) => resolve({ child, port: msg.port }));
    child.once('exit', (code) => reject(new Error(`${kind} server exited with ${code}`)));
  });
}

const mean = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0) / values.length;

async function main(): Promise<void> {
  const arg = (i: number, fallback: number): number =>
    process.argv[i] === undefined || process.argv[i] === '-' ? fallback : Number(process.argv[i]);
  const seconds = arg(2, 5);
  const rounds = arg(3, 4);
  const connections = arg(4, 10);
  const apps = arg(5, 10_000);
  const servers = {} as Record<Kind, Child>;
  try {
    for (const kind of KINDS) servers[kind] = await startChild(kind, apps);
    const path = (kind: Kind): string =>
      `/apps/${kind === 'gateway-many' ? target(apps) : appName(0)}/api/info`;
    const url = (kind: Kind): string => `http://127.0.0.1:${servers[kind].port}${path(kind)}`;
    const settings = { connections, pipelining: 1 };
    for (const kind of KINDS) await autocannon({ url: url(kind), ...settings, duration: 2 });

    // Each round gives every server `seconds` of load, in slices of a second taken in turn.
    const sliceSeconds = Math.min(1, seconds);
    const slicesPerRound = Math.max(1, Math.round(seconds / sliceSeconds));
    const slices: Slice[] = [];
    let turn = 0;
    for (let round = 1; round <= rounds; round++) {
      for (let slice = 0; slice < slicesPerRound; slice++, turn++) {
        for (const server of turn % 2 === 0 ? KINDS : [...KINDS].reverse()) {
          const cpuBefore = await cpuOf(servers[server]);
          const result = await autocannon({ url: url(server), ...settings, duration: sliceSeconds });
          const cpuMicros = (await cpuOf(servers[server])) - cpuBefore;
          slices.push({ round, turn, server, cpuMicros, result });
        }
      }
    }
    const rows: Row[] = [];
    for (let round = 1; round <= rounds; round++) {
      for (const server of KINDS) {
        const own = slices.filter((s) => s.round === round && s.server === server);
        const requests = own.reduce((sum, s) => sum + s.result.requests.total, 0);
        const cpuMicros = own.reduce((sum, s) => sum + s.cpuMicros, 0);
        rows.push({
          round,
          server,
          rps: requests / (own.length * sliceSeconds),
          cpuMicrosPerRequest: cpuMicros / requests,
          cpuShare: cpuMicros / (own.length * sliceSeconds * 1e6),
          p50: median(own.map((s) => s.result.latency.p50)),
          p99: Math.max(...own.map((s) => s.result.latency.p99)),
          errors: own.reduce((sum, s) => sum + s.result.errors + s.result.timeouts, 0),
          non2xx: own.reduce((sum, s) => sum + s.result.non2xx, 0),
        });
      }
    }

    console.log(
      `GET /apps/<app>/api/info, autocannon -c ${connections}, ${seconds} s per server × ${rounds} rounds in ${sliceSeconds} s turns, ` +
        `gateway-many: ${apps} routed apps and domains, ${Math.ceil(apps / RUNNING_EVERY)} running; Node ${process.version}`,
    );
    console.log(
      'round  server          req/s  server CPU µs/req  server CPU %  p50 ms  p99 ms  errors  non-2xx',
    );
    for (const r of [...rows].sort(
      (a, b) => a.round - b.round || KINDS.indexOf(a.server) - KINDS.indexOf(b.server),
    )) {
      console.log(
        `${String(r.round).padEnd(7)}${r.server.padEnd(14)}${r.rps.toFixed(0).padStart(7)}` +
          `${r.cpuMicrosPerRequest.toFixed(1).padStart(19)}${(r.cpuShare * 100).toFixed(0).padStart(14)}` +
          `${String(r.p50).padStart(8)}${String(r.p99).padStart(8)}` +
          `${String(r.errors).padStart(8)}${String(r.non2xx).padStart(9)}`,
      );
    }

    const turns = Array.from({ length: turn }, (_, i) => i);
    const requestsOf = (kind: Kind, t: number): number =>
      slices.find((s) => s.server === kind && s.turn === t)!.result.requests.total;
    const summary = KINDS.map((kind) => {
      const own = rows.filter((r) => r.server === kind);
      const ratios = turns.map((t) => requestsOf(kind, t) / requestsOf('bare', t));
      const requests = slices
        .filter((s) => s.server === kind)
        .reduce((sum, s) => sum + s.result.requests.total, 0);
      const cpu = slices.filter((s) => s.server === kind).reduce((sum, s) => sum + s.cpuMicros, 0) / requests;
      return {
        server: kind,
        apps: kind === 'bare' ? 0 : kind === 'gateway' ? 1 : apps,
        rps: Math.round(mean(own.map((r) => r.rps))),
        ratio: Number(median(ratios).toFixed(3)),
        cpuMicrosPerRequest: Number(cpu.toFixed(2)),
        cpuRatio: 0,
      };
    });
    const bareCpu = summary[0]!.cpuMicrosPerRequest;
    for (const s of summary) s.cpuRatio = Number((bareCpu / s.cpuMicrosPerRequest).toFixed(3));

    console.log('');
    console.log(
      'server        routed apps   mean req/s  req/s ratio (median)          goal  CPU µs/req  CPU ratio',
    );
    for (const s of summary) {
      const verdict = s.server === 'bare' ? '' : s.ratio >= GOAL ? ' ok' : ' below';
      console.log(
        `${s.server.padEnd(14)}${String(s.apps).padStart(11)}${String(s.rps).padStart(13)}` +
          `${s.ratio.toFixed(3).padStart(22)}${(s.server === 'bare' ? '' : `>=${GOAL}${verdict}`).padStart(14)}` +
          `${s.cpuMicrosPerRequest.toFixed(1).padStart(12)}${s.cpuRatio.toFixed(3).padStart(11)}`,
      );
    }
    console.log(
      `req/s ratio: gateway / bare requests in the same ${sliceSeconds} s turn, median of ${turn} turns; ` +
        'CPU ratio: bare / gateway µs per request',
    );

    const failures = rows.reduce((sum, r) => sum + r.errors + r.non2xx, 0);
    const one = summary[1]!;
    const many = summary[2]!;
    console.log(
      JSON.stringify({
        bench: 'gateway-overhead',
        node: process.version,
        connections,
        durationSeconds: seconds,
        rounds,
        apps,
        goal: GOAL,
        bareRps: summary[0]!.rps,
        gatewayRps: one.rps,
        ratio: one.ratio,
        manyRps: many.rps,
        manyRatio: many.ratio,
        bareCpuMicrosPerRequest: bareCpu,
        gatewayCpuMicrosPerRequest: one.cpuMicrosPerRequest,
        cpuRatio: one.cpuRatio,
        manyCpuMicrosPerRequest: many.cpuMicrosPerRequest,
        manyCpuRatio: many.cpuRatio,
        failures,
        servers: summary,
        runs: rows.map((r) => ({
          round: r.round,
          server: r.server,
          rps: Math.round(r.rps),
          cpuMicrosPerRequest: Number(r.cpuMicrosPerRequest.toFixed(2)),
        })),
      }),
    );
    if (failures > 0) process.exitCode = 1;
  } finally {
    for (const kind of KINDS) servers[kind]?.child.kill();
  }
}

if (process.argv[2] === 'serve') await serve(process.argv[3] as Kind, Number(process.argv[4]));
else await main();
