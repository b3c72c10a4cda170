/**
 * Gateway overhead: requests/s of `GET /apps/x/api/info` through `createGateway` vs the same
 * handler on a bare node:http server. Each server runs in its own child process; autocannon
 * (same settings for both) runs here, alternating bare / gateway. Prints a table and one JSON line.
 *
 *   node --import tsx bench/gateway.ts [seconds] [rounds] [connections]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { AppvisorError } from '../src/errors.js';
import { createGateway } from '../src/gateway/server.js';
import type { GatewayApps, ReadyApp } from '../src/gateway/types.js';

type Kind = 'bare' | 'gateway';

const BODY = JSON.stringify({ name: 'x', version: '1.0.0' });
const HEADERS = {
  'content-type': 'application/json; charset=utf-8',
  'content-length': Buffer.byteLength(BODY),
};

/** The application handler both servers run. */
function info(_req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(200, HEADERS).end(BODY);
}

async function serve(kind: Kind): Promise<void> {
  let port: number;
  if (kind === 'bare') {
    const server = createServer(info);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  } else {
    const app: ReadyApp = { name: 'x', handler: info };
    const counts = new Map<string, number>();
    const apps: GatewayApps = {
      has: (name) => name === 'x',
      appForDomain: () => undefined,
      ready: (name) => (name === 'x' ? app : undefined),
      readyMain: () => undefined,
      acquire: async (name) => {
        if (name === 'x') return app;
        throw new AppvisorError('APP_NOT_FOUND', { app: name });
      },
      acquireMain: async () => app,
      onRequest: (name, status) => {
        const key = `${name} ${status}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      },
    };
    const gateway = createGateway({ apps, supervisor: () => {}, log: pino({ level: 'silent' }) });
    port = (await gateway.listen(0, '127.0.0.1')).port;
  }
  process.on('message', () => {
    const { user, system } = process.cpuUsage();
    process.send?.({ cpuMicros: user + system });
  });
  process.send?.({ port });
}

interface Result {
  readonly requests: { readonly average: number; readonly total: number };
  readonly latency: { readonly p50: number; readonly p99: number; readonly average: number };
  readonly errors: number;
  readonly timeouts: number;
  readonly non2xx: number;
}

type Autocannon = (opts: {
  url: string;
  connections: number;
  duration: number;
  pipelining: number;
}) => Promise<Result>;

const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

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

function startChild(kind: Kind): Promise<Child> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), 'serve', kind], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    child.once('message', (msg: { port: number }) => resolve({ child, port: msg.port }));
    child.once('exit', (code) => reject(new Error(`${kind} server exited with ${code}`)));
  });
}

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 5);
  const rounds = Number(process.argv[3] ?? 2);
  const connections = Number(process.argv[4] ?? 10);
  const servers = { bare: await startChild('bare'), gateway: await startChild('gateway') };
  const url = (kind: Kind): string => `http://127.0.0.1:${servers[kind].port}/apps/x/api/info`;
  const settings = { connections, pipelining: 1 };
  try {
    for (const kind of ['bare', 'gateway'] as const)
      await autocannon({ url: url(kind), ...settings, duration: 2 });

    const rows: Array<{ round: number; server: Kind; cpuMicrosPerRequest: number } & Result> = [];
    for (let round = 1; round <= rounds; round++) {
      for (const server of ['bare', 'gateway'] as const) {
        const cpuBefore = await cpuOf(servers[server]);
        const result = await autocannon({ url: url(server), ...settings, duration: seconds });
        const cpuMicrosPerRequest = ((await cpuOf(servers[server])) - cpuBefore) / result.requests.total;
        rows.push({ round, server, cpuMicrosPerRequest, ...result });
      }
    }

    console.log(`GET /apps/x/api/info, autocannon -c ${connections} -d ${seconds}, Node ${process.version}`);
    console.log('round  server    req/s   server CPU µs/req  p50 ms  p99 ms  errors  non-2xx');
    for (const r of rows) {
      console.log(
        `${String(r.round).padEnd(7)}${r.server.padEnd(10)}${r.requests.average.toFixed(0).padStart(6)}` +
          `${r.cpuMicrosPerRequest.toFixed(1).padStart(20)}` +
          `${String(r.latency.p50).padStart(8)}${String(r.latency.p99).padStart(8)}` +
          `${String(r.errors + r.timeouts).padStart(8)}${String(r.non2xx).padStart(9)}`,
      );
    }
    const mean = (kind: Kind, of: (r: (typeof rows)[number]) => number): number => {
      const own = rows.filter((r) => r.server === kind);
      return own.reduce((sum, r) => sum + of(r), 0) / own.length;
    };
    const bare = mean('bare', (r) => r.requests.average);
    const gateway = mean('gateway', (r) => r.requests.average);
    const ratio = gateway / bare;
    const bareCpu = mean('bare', (r) => r.cpuMicrosPerRequest);
    const gatewayCpu = mean('gateway', (r) => r.cpuMicrosPerRequest);
    // CPU per request is the steadier figure on a busy machine: throughput moves with other load.
    const cpuRatio = bareCpu / gatewayCpu;
    console.log(
      `mean req/s: bare ${bare.toFixed(0)}, gateway ${gateway.toFixed(0)}; ratio ${ratio.toFixed(3)} (aim >= 0.9)`,
    );
    console.log(
      `server CPU per request: bare ${bareCpu.toFixed(1)} µs, gateway ${gatewayCpu.toFixed(1)} µs; ` +
        `ratio ${cpuRatio.toFixed(3)} (bare / gateway)`,
    );
    const failures = rows.reduce((sum, r) => sum + r.errors + r.timeouts + r.non2xx, 0);
    console.log(
      JSON.stringify({
        bench: 'gateway-overhead',
        node: process.version,
        connections,
        durationSeconds: seconds,
        rounds,
        bareRps: Math.round(bare),
        gatewayRps: Math.round(gateway),
        ratio: Number(ratio.toFixed(3)),
        bareCpuMicrosPerRequest: Number(bareCpu.toFixed(2)),
        gatewayCpuMicrosPerRequest: Number(gatewayCpu.toFixed(2)),
        cpuRatio: Number(cpuRatio.toFixed(3)),
        failures,
        runs: rows.map((r) => ({
          round: r.round,
          server: r.server,
          rps: Math.round(r.requests.average),
          cpuMicrosPerRequest: Number(r.cpuMicrosPerRequest.toFixed(2)),
        })),
      }),
    );
    if (failures > 0) process.exitCode = 1;
  } finally {
    servers.bare.child.kill();
    servers.gateway.child.kill();
  }
}

if (process.argv[2] === 'serve') await serve(process.argv[3] as Kind);
else await main();
