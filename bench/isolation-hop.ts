/**
 * What the hop to another thread costs by itself (issue 13's goal: worker-mode throughput ≥ 0.7 ×
 * shared). One tiny JSON route, answered (bench/fixtures/hop-server.mjs, each server a child
 * process of its own): `shared` by the server's own handler; `unix-http` by an HTTP server in a
 * worker thread over a Unix socket with a keep-alive agent (appvisor's isolated transport, bare);
 * `message` by a worker answering a postMessage with status, headers and body (no HTTP on the
 * second leg: the floor of any transport that carries a request to another thread and back).
 * The servers take one-second turns, in the reverse order every other turn; each ratio to
 * shared is the median of the per-turn ratios. autocannon runs here. Prints a table and one
 * JSON line.
 *
 *   node --import tsx bench/isolation-hop.ts [seconds=5] [connections=10]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import {
  type AutocannonResult,
  autocannon,
  median,
  numberArg,
  onInterrupt,
  progress,
  ROOT,
  report,
  round,
} from './lib.js';

const KINDS = ['shared', 'unix-http', 'message'] as const;
type Kind = (typeof KINDS)[number];
const SECONDS = Math.max(1, Math.round(numberArg(0, 5)));
const CONNECTIONS = Math.max(1, numberArg(1, 10));

function start(kind: Kind): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [path.join(ROOT, 'bench/fixtures/hop-server.mjs'), kind], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${kind} server exited with ${code}`)));
    child.stdout!.once('data', (d: Buffer) =>
      resolve({ child, url: `http://127.0.0.1:${String(d).trim()}/` }),
    );
  });
}

progress(`starting ${KINDS.join(', ')}`);
const servers = new Map<Kind, { child: ChildProcess; url: string }>();
const stopAll = async (): Promise<void> => {
  for (const s of servers.values()) s.child.kill('SIGKILL');
};
const offInterrupt = onInterrupt(stopAll);
try {
  for (const kind of KINDS) servers.set(kind, await start(kind));
  for (const kind of KINDS)
    await autocannon({ url: servers.get(kind)!.url, connections: CONNECTIONS, duration: 1 });
  const slices = new Map<Kind, AutocannonResult[]>(KINDS.map((k) => [k, []]));
  progress(`${SECONDS} one-second turns each`);
  for (let turn = 0; turn < SECONDS; turn++) {
    for (const kind of turn % 2 === 0 ? KINDS : [...KINDS].reverse()) {
      slices
        .get(kind)!
        .push(await autocannon({ url: servers.get(kind)!.url, connections: CONNECTIONS, duration: 1 }));
    }
  }
  const shared = slices.get('shared')!;
  const rows = KINDS.map((kind) => {
    const own = slices.get(kind)!;
    return {
      kind,
      'req/s': Math.round(own.reduce((n, s) => n + s.requests.total, 0) / SECONDS),
      '× shared': round(median(own.map((s, i) => s.requests.total / shared[i]!.requests.total)), 3),
      'p50 / p99 ms': `${median(own.map((s) => s.latency.p50))} / ${Math.max(...own.map((s) => s.latency.p99))}`,
      failures: own.reduce((n, s) => n + s.errors + s.non2xx, 0),
    };
  });
  report(
    `one route answered in the server's thread, over HTTP on a Unix socket to a worker, and by postMessage to a worker; autocannon -c ${CONNECTIONS}, ${SECONDS} one-second turns each; node ${process.version}`,
    rows,
    { bench: 'isolation-hop', seconds: SECONDS, connections: CONNECTIONS, rows },
  );
} finally {
  await stopAll();
  offInterrupt();
}
