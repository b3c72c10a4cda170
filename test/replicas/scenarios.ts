/**
 * The replica scenarios of issue 11 (SPEC §8.1), run unchanged on a PostgreSQL and on a MariaDB
 * state store: real `appvisor serve` processes behind a real HAProxy (test/helpers/replicas.ts).
 * Only the limits differ: PostgreSQL carries operator intent by LISTEN/NOTIFY (within 1 s),
 * MariaDB by the poll alone (within 5 s).
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import {
  haproxyInstalled,
  type ReplicaSet,
  type ReplicaSetOptions,
  type StoreDialect,
  startReplicaSet,
  writeVersionedApp,
} from '../helpers/replicas.js';
import { manifest, waitFor } from '../serve/harness.js';

export interface ScenarioLimits {
  /** How soon a stop sent to one replica must reach the others. */
  readonly propagationMs: number;
}

/** What the load loops saw: one entry per request. */
interface Sample {
  readonly target: string;
  readonly path: string;
  /** 0: no answer (connection refused or reset). */
  readonly status: number;
  readonly code: string | undefined;
  readonly version: number | undefined;
  readonly retryAfter: string | null;
  readonly startedAt: number;
  readonly endedAt: number;
}

interface Load {
  readonly samples: Sample[];
  /** Ends the loops and resolves with everything they saw. */
  stop(): Promise<Sample[]>;
}

/**
 * `concurrency` loops, each GETting a random path of `paths()` on a random URL of `targets()`
 * (read afresh each time, so a test can take a replica out of the rotation) until stopped.
 */
function startLoad(targets: () => readonly string[], paths: () => readonly string[], concurrency = 4): Load {
  const samples: Sample[] = [];
  let running = true;
  const pick = <T>(xs: readonly T[]): T | undefined => xs[Math.floor(Math.random() * xs.length)];
  const loop = async (): Promise<void> => {
    while (running) {
      const target = pick(targets());
      const urlPath = pick(paths());
      if (target === undefined || urlPath === undefined) {
        await new Promise((r) => setTimeout(r, 10));
        continue;
      }
      const startedAt = performance.now();
      let status = 0;
      let code: string | undefined;
      let version: number | undefined;
      let retryAfter: string | null = null;
      try {
        const res = await fetch(target + urlPath, { signal: AbortSignal.timeout(10_000) });
        status = res.status;
        retryAfter = res.headers.get('retry-after');
        const body = (await res.json().catch(() => undefined)) as
          | { version?: number; error?: { code?: string } }
          | undefined;
        code = body?.error?.code;
        version = body?.version;
      } catch (err) {
        // No answer: status 0, and why (a refused connection, a reset, the timeout).
        const cause = (err as { cause?: { code?: string } }).cause;
        code = cause?.code ?? (err as Error).name;
      }
      samples.push({
        target,
        path: urlPath,
        status,
        code,
        version,
        retryAfter,
        startedAt,
        endedAt: performance.now(),
      });
    }
  };
  const loops = Array.from({ length: concurrency }, loop);
  return {
    samples,
    async stop() {
      running = false;
      await Promise.all(loops);
      return samples;
    },
  };
}

/** A compact account of unexpected samples for a failure message. */
function tally(samples: readonly Sample[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const s of samples) {
    const key = `${s.target}${s.path} ${s.status}${s.code ? ` ${s.code}` : ''}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

const info = (app: string): string => `/apps/${app}/api/info`;

/** The 503s (with Retry-After) of a replica that cannot serve an app now but another may. */
const HOLD_CODES: ReadonlySet<string> = new Set([
  'APP_NEEDS_UPGRADE',
  'UPGRADE_HELD_BACK',
  'APP_DATA_NEWER',
  'APP_STARTING',
]);

/** Polls `url` until it answers `status` (and `code`, when given); resolves with the ms it took from `since`. */
async function answersWithin(
  url: string,
  expected: { status: number; code?: string },
  since: number,
  timeoutMs: number,
): Promise<number> {
  await waitFor(
    async () => {
      const res = await fetch(url);
      const body = (await res.json().catch(() => undefined)) as { error?: { code?: string } } | undefined;
      return (
        res.status === expected.status && (expected.code === undefined || body?.error?.code === expected.code)
      );
    },
    `${url} to answer ${expected.status} ${expected.code ?? ''}`,
    timeoutMs,
    10,
  );
  return performance.now() - since;
}

/**
 * Waits until every replica answers 200 for each of `apps` (starting them): the set-up of a
 * scenario that is about something else. A replica that lists an app but does not serve it yet
 * right after start-up is caught by the convergence scenario's load, not here.
 */
async function servedEverywhere(set: ReplicaSet, apps: readonly string[]): Promise<void> {
  for (let i = 0; i < set.replicas.length; i++) {
    for (const a of apps) {
      await waitFor(
        async () => (await set.request(i, info(a))).status === 200,
        `${a} on replica ${i}`,
        10_000,
        50,
      );
    }
  }
}

interface ReplicaRow {
  readonly id: string;
  readonly pid: number;
  readonly leader: boolean;
  readonly live?: boolean;
}

/** GET /_supervisor/api/replicas of replica `i`; throws unless it answers 200 with a list. */
async function replicasSeenBy(set: ReplicaSet, i: number): Promise<ReplicaRow[]> {
  const res = await set.admin(i, '/_supervisor/api/replicas');
  if (res.status !== 200 || !Array.isArray(res.body)) {
    throw new Error(`GET /_supervisor/api/replicas on replica ${i}: ${res.status} ${res.text.slice(0, 200)}`);
  }
  return res.body as ReplicaRow[];
}

interface AppRow {
  readonly name: string;
  readonly displayName: string;
  readonly status: string;
  readonly domains: readonly string[];
}

async function appsSeenBy(set: ReplicaSet, i: number): Promise<Map<string, AppRow>> {
  const res = await set.admin(i, '/_supervisor/api/apps');
  if (res.status !== 200) throw new Error(`GET /_supervisor/api/apps on replica ${i}: ${res.status}`);
  return new Map((res.body as AppRow[]).map((a) => [a.name, a]));
}

/** Defines the scenarios; `available`: whether the dialect's server answered its probe (test/helpers/servers.ts). */
export function replicaScenarios(dialect: StoreDialect, available: boolean, limits: ScenarioLimits): void {
  const hasHaproxy = haproxyInstalled();
  if (!hasHaproxy) {
    console.warn(
      '\n!!! SKIPPING replica tests: haproxy is not installed (.ci/run installs it: apt-get install haproxy)\n',
    );
  }
  const name = dialect === 'postgres' ? 'PostgreSQL' : 'MariaDB';
  // PostgreSQL apps can live as schemas in the main database (no CREATE DATABASE per app); MariaDB has databases only.
  const mode = dialect === 'postgres' ? 'database:\n  mode: new-schema\n' : '';

  let set: ReplicaSet | undefined;
  const extraDirs: string[] = [];
  afterEach(async () => {
    await set?.close();
    set = undefined;
    for (const dir of extraDirs.splice(0)) await fs.rm(dir, { recursive: true, force: true });
  });
  const start = async (options: Omit<ReplicaSetOptions, 'dialect'>): Promise<ReplicaSet> => {
    set = await startReplicaSet({ dialect, ...options });
    return set;
  };

  describe.skipIf(!hasHaproxy)(`replicas on a ${name} state store behind HAProxy`, () => {
    it.skipIf(!available)(
      'every replica converges to manifests added, changed and removed in the shared apps.d, under load',
      async () => {
        const app = (prefix: string, n: number): string => `${prefix}_a${String(n).padStart(2, '0')}`;
        const s = await start({
          manifests: (prefix) =>
            Object.fromEntries(
              Array.from({ length: 15 }, (_, k) => [
                `${app(prefix, k + 1)}.yaml`,
                manifest(app(prefix, k + 1), mode),
              ]),
            ),
        });
        const kept = Array.from({ length: 10 }, (_, k) => app(s.prefix, k + 1));
        const added = Array.from({ length: 5 }, (_, k) => app(s.prefix, k + 16));
        const removed = Array.from({ length: 5 }, (_, k) => app(s.prefix, k + 11));
        const urls = [s.haproxyUrl, ...s.replicas.map((r) => r.url)];
        const load = startLoad(
          () => urls,
          () => kept.map(info),
        );
        try {
          for (const a of added) await s.write(`${a}.yaml`, manifest(a, mode));
          for (const a of kept.slice(0, 5))
            await s.write(`${a}.yaml`, manifest(a, `${mode}displayName: Renamed ${a}\n`));
          const domain = `${kept[5]!.replaceAll('_', '-')}.example.test`;
          await s.write(`${kept[5]}.yaml`, manifest(kept[5]!, `${mode}domains: [${domain}]\n`));
          for (const a of removed) await s.remove(`${a}.yaml`);

          for (let i = 0; i < s.replicas.length; i++) {
            await waitFor(
              async () => {
                const apps = await appsSeenBy(s, i);
                const missing = [
                  ...kept
                    .slice(0, 5)
                    .filter((a) => apps.get(a)?.displayName !== `Renamed ${a}`)
                    .map((a) => `${a} not renamed`),
                  ...(apps.get(kept[5]!)?.domains.includes(domain) ? [] : [`${kept[5]} without ${domain}`]),
                  ...[...kept, ...added]
                    .filter((a) => !apps.has(a) || apps.get(a)!.status === 'orphaned')
                    .map((a) => `${a} missing`),
                  ...removed
                    .filter((a) => apps.has(a) && apps.get(a)!.status !== 'orphaned')
                    .map((a) => `${a} still ${apps.get(a)!.status}`),
                ];
                if (missing.length > 0) throw new Error(missing.join(', '));
                return true;
              },
              `replica ${i} to converge`,
              20_000,
              100,
            );
            // Converged means served, not only listed: the new apps answer and the domain routes.
            // Listed comes first: while the leader still creates an app, a replica lists it and
            // answers a retryable 503 APP_STARTING, so each is given a moment to be served.
            for (const a of added) {
              const res = await waitFor(
                async () => {
                  const res = await s.request(i, info(a));
                  const starting = res.status === 503 && res.body.error?.code === 'APP_STARTING';
                  return starting && res.headers.get('retry-after') !== null ? undefined : res;
                },
                `${a} to be served on replica ${i}`,
                10_000,
                100,
              );
              expect(res.body, `${a} on replica ${i}`).toMatchObject({ name: a });
            }
            expect((await s.request(i, '/api/info', { host: domain })).body).toMatchObject({ name: kept[5] });
            for (const a of removed)
              expect((await s.request(i, info(a))).status, `${a} on replica ${i}`).toBe(404);
          }
        } finally {
          await load.stop();
        }
        const failed = load.samples.filter((x) => x.status !== 200);
        expect(load.samples.length).toBeGreaterThan(50);
        expect(tally(failed)).toEqual({});
      },
      180_000,
    );

    it.skipIf(!available)(
      `a stop sent to replica 1 answers 503 APP_STOPPED on replicas 2 and 3 within ${limits.propagationMs} ms, and a start within the same`,
      async () => {
        const s = await start({ manifests: (prefix) => ({ 'stop.yaml': manifest(`${prefix}_stop`, mode) }) });
        const target = `${s.prefix}_stop`;
        await servedEverywhere(s, [target]);

        const stopAt = performance.now();
        const stop = await s.admin(0, `/_supervisor/api/apps/${target}/stop`, 'POST');
        expect(stop.status).toBe(202);
        const stopped = await Promise.all(
          [1, 2].map((i) =>
            answersWithin(s.url(i) + info(target), { status: 503, code: 'APP_STOPPED' }, stopAt, 10_000),
          ),
        );
        const startAt = performance.now();
        expect((await s.admin(0, `/_supervisor/api/apps/${target}/start`, 'POST')).status).toBe(202);
        const started = await Promise.all(
          [1, 2].map((i) => answersWithin(s.url(i) + info(target), { status: 200 }, startAt, 10_000)),
        );
        console.log(
          `${name}: stop reached replicas 2 and 3 after ${stopped.map((ms) => ms.toFixed(0)).join(', ')} ms; start after ${started.map((ms) => ms.toFixed(0)).join(', ')} ms`,
        );
        for (const ms of [...stopped, ...started]) expect(ms).toBeLessThan(limits.propagationMs);
      },
      120_000,
    );

    it.skipIf(!available)(
      'SIGKILL of the leader mid-provisioning: another replica leads within 15 s, each database is created once, and no live replica answers 5xx',
      async () => {
        const s = await start({
          manifests: (prefix) => ({
            'steady.yaml': manifest(`${prefix}_steady`, mode),
            'held.yaml': manifest(`${prefix}_held`, mode),
          }),
        });
        const steady = `${s.prefix}_steady`;
        const held = `${s.prefix}_held`;
        expect((await s.admin(0, `/_supervisor/api/apps/${held}/stop`, 'POST')).status).toBe(202);
        for (let i = 0; i < 3; i++) {
          await answersWithin(
            s.url(i) + info(held),
            { status: 503, code: 'APP_STOPPED' },
            performance.now(),
            10_000,
          );
        }

        await servedEverywhere(s, [steady]);
        const before = await replicasSeenBy(s, 0);
        const leaderRow = before.find((r) => r.leader);
        expect(leaderRow, JSON.stringify(before)).toBeDefined();
        const leader = s.replicas.findIndex((r) => r.pid === leaderRow!.pid);
        expect(
          leader,
          `no replica of this set has the leader's pid ${leaderRow!.pid}`,
        ).toBeGreaterThanOrEqual(0);
        const others = [0, 1, 2].filter((i) => i !== leader);

        const load = startLoad(
          () => s.replicas.filter((r) => r.alive()).map((r) => r.url),
          () => [info(steady), info(held)],
        );
        // New databases (not schemas): CREATE DATABASE is what a killed leader can leave half-made.
        const fresh = Array.from({ length: 10 }, (_, k) => `${s.prefix}_db${k + 1}`);
        let killedAt = 0;
        try {
          for (const a of fresh) await s.write(`${a}.yaml`, manifest(a));
          const existing = async (): Promise<number> =>
            (await databasesNamed(s, fresh)).length + (await leftovers(s)).length;
          await waitFor(
            async () => (await existing()) > 0,
            'the leader to start creating the databases',
            20_000,
            5,
          );
          await s.kill(leader, 'SIGKILL');
          killedAt = performance.now();

          await waitFor(
            async () => {
              for (const i of others) {
                const rows = await replicasSeenBy(s, i);
                const lead = rows.find((r) => r.leader && r.pid !== leaderRow!.pid);
                if (lead && s.replicas.some((r) => r.alive() && r.pid === lead.pid)) return true;
              }
              return false;
            },
            'another replica to lead',
            15_000,
            50,
          );
          console.log(`${name}: a new leader after ${(performance.now() - killedAt).toFixed(0)} ms`);

          // Converged: every new app is served by every live replica, from one database each.
          for (const i of others) {
            for (const a of fresh) {
              await waitFor(
                async () => (await s.request(i, info(a))).status === 200,
                `${a} on replica ${i}`,
                30_000,
                100,
              );
            }
          }
        } finally {
          await load.stop();
        }
        const names = await databasesNamed(s, fresh);
        expect([...names].sort()).toEqual([...fresh].sort());
        expect(await leftovers(s)).toEqual([]);
        // No replica created a database twice: at most one `created` create-database step per app
        // (none when the killed leader created it but died before recording its run).
        const live = others[0]!;
        for (const a of fresh) {
          const history = await s.admin(live, `/_supervisor/api/apps/${a}/history`);
          expect(history.status, `history of ${a}`).toBe(200);
          const creates = (history.body as { steps: { action: string; result: string }[] }[])
            .flatMap((entry) => entry.steps)
            .filter((step) => step.action === 'create-database' && step.result === 'created');
          expect(creates.length, `create-database steps of ${a}`).toBeLessThanOrEqual(1);
        }

        const wrong = load.samples.filter((x) => {
          if (x.status === 0) return false; // the killed replica, or a request in flight when it died
          if (x.path === info(held)) return !(x.status === 503 && x.code === 'APP_STOPPED');
          return x.status >= 500;
        });
        expect(load.samples.length).toBeGreaterThan(50);
        expect(tally(wrong)).toEqual({});
      },
      180_000,
    );

    it.skipIf(!available)(
      'with every connection to the main database cut once, a stop still reaches the other replicas within the poll (5 s)',
      async () => {
        const s = await start({
          throughProxy: true,
          manifests: (prefix) => ({ 'cut.yaml': manifest(`${prefix}_cut`, mode) }),
        });
        const target = `${s.prefix}_cut`;
        await servedEverywhere(s, [target]);

        s.proxy!.cut();
        s.proxy!.restore();
        // Each replica notices the dead connections and reconnects on its own: wait until its admin API reads the store again.
        for (let i = 0; i < 3; i++) {
          await waitFor(
            async () => (await s.admin(i, '/_supervisor/api/apps')).status === 200,
            `replica ${i} to read the store`,
            15_000,
            100,
          );
        }

        const stopAt = performance.now();
        expect((await s.admin(0, `/_supervisor/api/apps/${target}/stop`, 'POST')).status).toBe(202);
        const ms = await Promise.all(
          [1, 2].map((i) =>
            answersWithin(s.url(i) + info(target), { status: 503, code: 'APP_STOPPED' }, stopAt, 15_000),
          ),
        );
        console.log(
          `${name}: after the cut, the stop reached replicas 2 and 3 after ${ms.map((x) => x.toFixed(0)).join(', ')} ms`,
        );
        for (const x of ms) expect(x).toBeLessThan(5_000);
      },
      120_000,
    );

    it.skipIf(!available)(
      'a rolling upgrade from version 2 to 3 behind HAProxy: no v2 replica serves v3 data, the data moves once no v2 replica is left, and no request fails',
      async () => {
        const modules = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-rolling-'));
        extraDirs.push(modules);
        const v2 = await writeVersionedApp(modules, 2);
        const v3 = await writeVersionedApp(modules, 3);
        const s = await start({
          app: () => v2,
          manifests: (prefix) =>
            Object.fromEntries(
              Array.from({ length: 5 }, (_, k) => [
                `u${k}.yaml`,
                manifest(`${prefix}_u${k}`, `${mode}startMode: with-main\n`),
              ]),
            ),
        });
        const apps = Array.from({ length: 5 }, (_, k) => `${s.prefix}_u${k}`);
        await servedEverywhere(s, apps);
        for (const a of apps)
          expect((await s.request('haproxy', info(a))).body).toMatchObject({ version: 2 });

        const throughHaproxy = startLoad(
          () => [s.haproxyUrl],
          () => apps.map(info),
        );
        // Straight to the replicas still on v2: what each of them serves while the others move.
        const v2Direct = startLoad(
          () => s.replicas.filter((r) => r.alive() && r.app === v2).map((r) => r.url),
          () => apps.map(info),
          2,
        );
        try {
          for (let i = 0; i < 3; i++) {
            await s.kill(i, 'SIGTERM');
            await s.restart(i, { app: v3 });
            // Until the last v2 replica is gone, the data stays at v2: nobody answers version 3.
            if (i < 2) {
              await new Promise((r) => setTimeout(r, 1_500)); // HAProxy's health check puts the new one back in rotation
              for (const a of apps) {
                const res = await s.request('haproxy', info(a));
                // Served at v2, or (HAProxy's retries all landing on v3 replicas) a retryable 503.
                const answer =
                  res.status === 200
                    ? [200, res.body.version]
                    : [
                        res.status,
                        HOLD_CODES.has(res.body.error?.code ?? '') && res.headers.get('retry-after') !== null,
                      ];
                expect(answer, `${a} after replacing replica ${i}: ${res.text}`).toEqual(
                  res.status === 200 ? [200, 2] : [503, true],
                );
              }
            }
          }
          for (const a of apps) {
            await waitFor(
              async () => (await s.request('haproxy', info(a))).body?.version === 3,
              `${a} to be served at version 3 once every replica runs it`,
              30_000,
              100,
            );
          }
          // A v2 replica started again after the data moved (a rollback of one replica) refuses
          // it, and HAProxy retries on the v3 replicas: through it every app still answers v3.
          await s.kill(2, 'SIGTERM');
          await s.restart(2, { app: v2 });
          for (const a of apps) {
            const direct = await s.request(2, info(a));
            expect(direct.status, `${a} on the v2 replica`).toBe(503);
            expect(direct.body.error?.code, `${a} on the v2 replica`).toBe('APP_DATA_NEWER');
            expect(direct.headers.get('retry-after'), `${a} on the v2 replica`).toMatch(/^\d+$/);
            const balanced = await s.request('haproxy', info(a));
            expect([balanced.status, balanced.body.version], `${a} through HAProxy`).toEqual([200, 3]);
          }
        } finally {
          await throughHaproxy.stop();
          await v2Direct.stop();
        }

        expect(throughHaproxy.samples.length).toBeGreaterThan(50);
        // No request is lost or answered wrongly; while replicas run two versions, a replica that
        // cannot serve an app yet says so with a retryable 503 (Retry-After), which HAProxy retries
        // on another replica: what is left of them is a small share, reported here.
        const failed = throughHaproxy.samples.filter((x) => x.status !== 200);
        const held = failed.filter(
          (x) => x.status === 503 && HOLD_CODES.has(x.code ?? '') && x.retryAfter !== null,
        );
        // A connection HAProxy closed while a replica was being replaced (no answer, status 0).
        const dropped = failed.filter((x) => x.status === 0);
        // Never a wrong answer: no 404 for an app that exists, no 500, no 503 without Retry-After.
        // HAProxy's own 503 (no code): no replica was in rotation; its log says which left when, and why.
        expect(
          tally(failed.filter((x) => !held.includes(x) && !dropped.includes(x))),
          `HAProxy's health checks:\n${s.haproxyLog()}`,
        ).toEqual({});
        const share = (n: number) => `${((n / throughHaproxy.samples.length) * 100).toFixed(1)}%`;
        // None with shutdownDrain (the harness sets it, as the README advises): a replica leaves
        // the rotation before it stops, and the newer ones take over as it drains.
        console.log(
          `rolling upgrade through HAProxy: ${throughHaproxy.samples.length} requests, ${held.length} retryable 503 (${share(held.length)}), ${dropped.length} without an answer (${share(dropped.length)})`,
        );
        // The replicas on newer code stay out of rotation until the data moves (readyz `waiting`).
        expect(held.length + dropped.length).toBe(0);
        // A v2 replica asked after some replica served an app at v3 must refuse it (APP_DATA_NEWER, Retry-After), never serve it.
        for (const a of apps) {
          const firstV3 = Math.min(
            ...throughHaproxy.samples
              .filter((x) => x.path === info(a) && x.version === 3)
              .map((x) => x.endedAt),
          );
          const servedByV2 = v2Direct.samples.filter(
            (x) => x.path === info(a) && x.startedAt > firstV3 && x.status === 200,
          );
          expect(servedByV2, `${a} served by a v2 replica after its data moved to v3`).toEqual([]);
          const refused = v2Direct.samples.filter(
            (x) => x.path === info(a) && x.startedAt > firstV3 && x.status !== 0,
          );
          // APP_STARTING: a v2 replica restarted (the rollback above) before its first reconcile.
          for (const x of refused)
            expect([
              ['APP_DATA_NEWER', 'APP_STARTING'].includes(x.code ?? ''),
              x.retryAfter !== null,
            ]).toEqual([true, true]);
        }
      },
      240_000,
    );
  });
}

/** Which of `names` exist as databases on the set's server. */
async function databasesNamed(set: ReplicaSet, names: readonly string[]): Promise<string[]> {
  const rows =
    set.dialect === 'postgres'
      ? await set.serverQuery<{ name: string }>(
          'SELECT datname AS name FROM pg_database WHERE datname = ANY($1)',
          [names],
        )
      : await set.serverQuery<{ name: string }>(
          'SELECT schema_name AS name FROM information_schema.schemata WHERE schema_name IN (?)',
          [names],
        );
  return rows.map((r) => r.name);
}

/** PostgreSQL `_avtmp_*` databases the set's apps left (marked with their names); MariaDB creates none. */
async function leftovers(set: ReplicaSet): Promise<string[]> {
  if (set.dialect !== 'postgres') return [];
  const rows = await set.serverQuery<{ name: string }>(
    `SELECT datname AS name FROM pg_database
      WHERE starts_with(datname, '_avtmp_') AND shobj_description(oid, 'pg_database') LIKE $1`,
    [`appvisor:%:${set.prefix}%`],
  );
  return rows.map((r) => r.name);
}
