/**
 * Replicas on one PostgreSQL state store (SPEC §8.1), real `appvisor serve` processes behind a
 * real HAProxy (the test harness, test/helpers/replicas.ts):
 *   - requests/s through HAProxy with 1 and with 3 replicas: the same N schema apps, the same
 *     autocannon load (`GET /apps/<app>/api/info` cycling over the apps, each app visited on
 *     each replica first);
 *   - leader failover: SIGKILL the replica `/_supervisor/api/replicas` names leader, time until a
 *     live one reports `leader: true`; the killed one is restarted between rounds;
 *   - command propagation: `stop` (then `start`) on replica 1, time until replicas 2 and 3 answer
 *     503 APP_STOPPED (then 200), polled every 5 ms, from just before the POST.
 * Each replica gets a small connection budget, so 3 of them stay well inside the shared server's
 * 100 connections. Prints a table and one JSON line.
 *
 *   node --import tsx bench/replicas.ts [apps=20] [seconds=5] [connections=20] [failovers=3] [propagations=20]
 */
import { performance } from 'node:perf_hooks';
import { haproxyInstalled, type ReplicaSet, startReplicaSet } from '../test/helpers/replicas.js';
import {
  autocannon,
  errorCode,
  httpGet,
  numberArg,
  onInterrupt,
  PG_URL,
  percentile,
  progress,
  report,
  round,
  serverAvailable,
  summarize,
} from './lib.js';

const APPS = numberArg(0, 20);
const SECONDS = numberArg(1, 5);
const CONNECTIONS = numberArg(2, 20);
const FAILOVERS = numberArg(3, 3);
const PROPAGATIONS = numberArg(4, 20);
/** Per replica: the store, the lease, the admin pool and the shared schema pool fit in it. */
const CONNECTION_BUDGET = 6;
/** A round that does not happen within this is counted as timed out (the poll's 5 s, with room). */
const ROUND_TIMEOUT_MS = 15_000;

const appName = (prefix: string, i: number): string => `${prefix}_b${String(i).padStart(3, '0')}`;
const appPath = (name: string): string => `/apps/${name}/api/info`;

async function startSet(count: number): Promise<ReplicaSet> {
  const set = await startReplicaSet({
    dialect: 'postgres',
    count,
    connectionBudget: CONNECTION_BUDGET,
    manifests: (prefix) =>
      Object.fromEntries(
        Array.from({ length: APPS }, (_, i) => [
          `${appName(prefix, i)}.yaml`,
          `apiVersion: appvisor/v1\nkind: App\nname: ${appName(prefix, i)}\ndatabase:\n  mode: new-schema\n`,
        ]),
      ),
  });
  onInterrupt(() => set.close());
  return set;
}

/** Polls `url` every 5 ms until `done(status, code)`; ms since `since`, or undefined after ROUND_TIMEOUT_MS. */
async function until(
  url: string,
  done: (status: number, code: string | undefined) => boolean,
  since: number,
): Promise<number | undefined> {
  while (performance.now() - since < ROUND_TIMEOUT_MS) {
    const res = await httpGet(url).catch(() => undefined);
    if (res && done(res.status, errorCode(res.body))) return performance.now() - since;
    await new Promise((r) => setTimeout(r, 5));
  }
  return undefined;
}

interface Throughput {
  readonly replicas: number;
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  readonly non2xx: number;
}

async function throughput(count: number): Promise<Throughput> {
  progress(`${count} replica(s): starting, ${APPS} apps`);
  const set = await startSet(count);
  try {
    const paths = Array.from({ length: APPS }, (_, i) => appPath(appName(set.prefix, i)));
    // Every app started on every replica first: the load then measures serving, not lazy starts.
    for (const replica of set.replicas) {
      for (const p of paths) {
        const res = await httpGet(replica.url + p);
        if (res.status !== 200)
          throw new Error(`warm-up ${p} on replica ${replica.index + 1}: ${res.status} ${res.body}`);
      }
    }
    progress(`${count} replica(s): autocannon -c ${CONNECTIONS} for ${SECONDS} s`);
    const result = await autocannon({
      url: set.haproxyUrl,
      connections: CONNECTIONS,
      duration: SECONDS,
      requests: paths.map((path) => ({ method: 'GET', path })),
    });
    return {
      replicas: count,
      requestsPerSecond: Math.round(result.requests.average),
      p50Ms: result.latency.p50,
      p99Ms: result.latency.p99,
      errors: result.errors,
      non2xx: result.non2xx,
    };
  } finally {
    await set.close();
  }
}

interface ReplicaRow {
  readonly pid: number;
  readonly leader: boolean;
}

async function replicaRows(set: ReplicaSet, i: number): Promise<ReplicaRow[] | undefined> {
  const res = await set.admin(i, '/_supervisor/api/replicas').catch(() => undefined);
  return res?.status === 200 && Array.isArray(res.body) ? (res.body as ReplicaRow[]) : undefined;
}

async function failover(set: ReplicaSet): Promise<{ ms: number[]; timedOut: number; unavailable?: string }> {
  const ms: number[] = [];
  let timedOut = 0;
  for (let round = 0; round < FAILOVERS; round++) {
    const rows = await replicaRows(set, 0);
    const leader = rows?.find((r) => r.leader);
    const index = leader ? set.replicas.findIndex((r) => r.alive() && r.pid === leader.pid) : -1;
    if (index < 0) {
      return {
        ms,
        timedOut,
        unavailable: 'GET /_supervisor/api/replicas names no leader among the replicas',
      };
    }
    progress(`failover ${round + 1}/${FAILOVERS}: SIGKILL replica ${index + 1}`);
    await set.kill(index, 'SIGKILL');
    const killedAt = performance.now();
    const others = set.replicas.map((_, i) => i).filter((i) => i !== index);
    let took: number | undefined;
    while (took === undefined && performance.now() - killedAt < ROUND_TIMEOUT_MS) {
      for (const i of others) {
        const seen = await replicaRows(set, i);
        if (
          seen?.some(
            (r) =>
              r.leader && r.pid !== leader!.pid && set.replicas.some((x) => x.alive() && x.pid === r.pid),
          )
        ) {
          took = performance.now() - killedAt;
          break;
        }
      }
      if (took === undefined) await new Promise((r) => setTimeout(r, 20));
    }
    if (took === undefined) timedOut++;
    else ms.push(took);
    await set.restart(index);
  }
  return { ms, timedOut };
}

async function propagation(set: ReplicaSet): Promise<{ stop: number[]; start: number[]; timedOut: number }> {
  const app = appName(set.prefix, 0);
  const urls = [1, 2].map((i) => set.url(i) + appPath(app));
  const stop: number[] = [];
  const start: number[] = [];
  let timedOut = 0;
  for (let round = 0; round < PROPAGATIONS && timedOut < 2; round++) {
    if (round % 5 === 0) progress(`propagation ${round + 1}/${PROPAGATIONS}`);
    for (const [verb, into, done] of [
      ['stop', stop, (status: number, code: string | undefined) => status === 503 && code === 'APP_STOPPED'],
      ['start', start, (status: number) => status === 200],
    ] as const) {
      const since = performance.now();
      const res = await set.admin(0, `/_supervisor/api/apps/${app}/${verb}`, 'POST');
      if (res.status !== 202) throw new Error(`${verb} on replica 1: ${res.status} ${res.text}`);
      const took = await Promise.all(urls.map((u) => until(u, done, since)));
      if (took.some((t) => t === undefined)) timedOut++;
      for (const t of took) if (t !== undefined) into.push(t);
    }
  }
  return { stop, start, timedOut };
}

if (!haproxyInstalled()) {
  console.log('!!! haproxy is not installed (apt-get install haproxy); skipping');
  console.log(JSON.stringify({ bench: 'replicas', skipped: 'haproxy not installed' }));
} else if (!(await serverAvailable('postgres', PG_URL))) {
  console.log(JSON.stringify({ bench: 'replicas', skipped: 'PostgreSQL unreachable' }));
} else {
  const one = await throughput(1);
  const three = await throughput(3);
  progress('3 replicas for failover and propagation');
  const set = await startSet(3);
  let fail: Awaited<ReturnType<typeof failover>>;
  let prop: Awaited<ReturnType<typeof propagation>>;
  try {
    // Every replica has the app running before the clock starts.
    for (let i = 0; i < 3; i++) await httpGet(set.url(i) + appPath(appName(set.prefix, 0)));
    prop = await propagation(set);
    fail = await failover(set);
  } finally {
    await set.close();
  }
  const failSummary = fail.ms.length > 0 ? summarize(fail.ms) : undefined;
  const stopSummary = prop.stop.length > 0 ? summarize(prop.stop) : undefined;
  const startSummary = prop.start.length > 0 ? summarize(prop.start) : undefined;
  const p99 = (xs: readonly number[]): number | undefined =>
    xs.length > 0
      ? round(
          percentile(
            [...xs].sort((a, b) => a - b),
            99,
          ),
        )
      : undefined;
  const rows = [
    {
      figure: 'req/s through HAProxy, 1 replica',
      value: one.requestsPerSecond,
      detail: `p50 ${one.p50Ms} ms, p99 ${one.p99Ms} ms, non-2xx ${one.non2xx}, errors ${one.errors}`,
    },
    {
      figure: 'req/s through HAProxy, 3 replicas',
      value: three.requestsPerSecond,
      detail: `p50 ${three.p50Ms} ms, p99 ${three.p99Ms} ms, non-2xx ${three.non2xx}, errors ${three.errors}`,
    },
    {
      figure: 'leader failover ms (p50 / max)',
      value: failSummary ? `${failSummary.p50} / ${failSummary.max}` : 'n/a',
      detail: fail.unavailable ?? `${fail.ms.length} rounds, ${fail.timedOut} over ${ROUND_TIMEOUT_MS} ms`,
    },
    {
      figure: 'stop → APP_STOPPED on the others, ms (p50 / p99)',
      value: stopSummary ? `${stopSummary.p50} / ${p99(prop.stop)}` : 'n/a',
      detail: `${prop.stop.length} readings, ${prop.timedOut} rounds over ${ROUND_TIMEOUT_MS} ms`,
    },
    {
      figure: 'start → 200 on the others, ms (p50 / p99)',
      value: startSummary ? `${startSummary.p50} / ${p99(prop.start)}` : 'n/a',
      detail: `${prop.start.length} readings`,
    },
  ];
  report(
    `replicas on one PostgreSQL state store behind HAProxy: ${APPS} schema apps, autocannon -c ${CONNECTIONS} × ${SECONDS} s, budget ${CONNECTION_BUDGET} connections per replica`,
    rows,
    {
      bench: 'replicas',
      apps: APPS,
      seconds: SECONDS,
      connections: CONNECTIONS,
      throughput: {
        one,
        three,
        ratio: Math.round((three.requestsPerSecond / one.requestsPerSecond) * 100) / 100,
      },
      failover: { ...fail, ms: fail.ms.map((x) => round(x)), summary: failSummary ?? null },
      propagation: {
        stop: stopSummary ? { ...stopSummary, p99: p99(prop.stop) } : null,
        start: startSummary ? { ...startSummary, p99: p99(prop.start) } : null,
        timedOut: prop.timedOut,
      },
    },
  );
}
