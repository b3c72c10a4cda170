/**
 * The local adapter's isolated instances, seen from the adapter: the app's log lines reach the
 * supervisor's log with `app`, level, message and fields; an isolated app's PostgreSQL pool is
 * counted in the server's connection budget while it runs; a stop lets a request in flight
 * finish, then ends the worker or process.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeMainDatabase } from '../../../src/config/main-database.js';
import { ProviderSet } from '../../../src/providers/set.js';
import { ownerMarker } from '../../../src/reconcile/owner.js';
import type { InstanceSpec } from '../../../src/runtime/adapter.js';
import { LocalAdapter } from '../../../src/runtime/local-adapter.js';
import { migrate } from '../../../src/runtime/migrations.js';
import fixture from '../../fixtures/isolation-app.js';
import { postgres, uniqueName, withPgClient } from '../../helpers/servers.js';
import { FIXTURE } from './helpers.js';

const PG = await postgres();
const SECRET = 'main-secret-0123456789abcdef0123456789';

let root: string;
beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-iso-'));
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

interface Harness {
  readonly adapter: LocalAdapter;
  readonly providers: ProviderSet;
  readonly lines: Record<string, unknown>[];
  readonly dataDir: string;
  spec(name: string, mode: 'worker' | 'process'): Promise<InstanceSpec>;
  close(): Promise<void>;
}

async function harness(mainUrl: string, options: { connectionBudget?: number } = {}): Promise<Harness> {
  const dataDir = await fs.mkdtemp(path.join(root, 'run-'));
  const main = describeMainDatabase(mainUrl, dataDir);
  const providers = new ProviderSet(mainUrl, { dataDir, ...options });
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n'))
        if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const adapter = new LocalAdapter({
    providers,
    secrets: { getSecret: async () => SECRET },
    log: pino({ level: 'info' }, sink),
    dataDir,
    poolMax: 3,
  });
  return {
    adapter,
    providers,
    lines,
    dataDir,
    async spec(name, mode) {
      await providers.main.createDatabase(name, ownerMarker('iso-test', name));
      await providers.main.withConnection(name, {}, (client) =>
        migrate(client, fixture.migrations, {
          app: name,
          targetVersion: fixture.version,
          allowUpgrade: true,
          application: fixture.name,
        }),
      );
      return {
        name,
        isMain: false,
        basePath: `/apps/${name}`,
        domains: [],
        config: {},
        database: {
          kind: 'provisioned',
          target: {
            dialect: main.dialect,
            server: main.server,
            serverRef: 'main',
            kind: 'database',
            database: name,
          },
        },
        secret: { app: name, mode: 'shared' },
        application: { module: FIXTURE },
        isolation: { mode, memoryLimitMb: 256, watchdogMs: 2000 },
        data: { version: fixture.version, boot: 'check', upgrade: true },
        hash: `${name}-${mode}`,
      };
    },
    async close() {
      await adapter.close();
      await providers.close();
    },
  };
}

/** Sends a request straight to the ReadyApp the gateway would get, on a throwaway server. */
async function call(
  adapter: LocalAdapter,
  name: string,
  urlPath: string,
): Promise<{ status: number; body: string }> {
  const http = await import('node:http');
  const app = adapter.route(name);
  if (!app) throw new Error(`${name} not routable`);
  const server = http.createServer((req, res) => void app.handler(req, res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const { port } = server.address() as { port: number };
    const res = await fetch(`http://127.0.0.1:${port}${urlPath}`);
    return { status: res.status, body: await res.text() };
  } finally {
    server.closeAllConnections();
    server.close();
  }
}

describe('sockets a killed supervisor left behind', () => {
  it('are removed before the first isolated start; one something listens on is kept', async () => {
    const h = await harness(`sqlite:${path.join(root, 'sweep.sqlite')}`);
    const net = await import('node:net');
    const spec = await h.spec('sweeper', 'worker');
    const runDir = path.join(h.dataDir, 'run');
    await fs.mkdir(runDir, { recursive: true });
    const stale = path.join(runDir, 'gone-0000.sock');
    await fs.writeFile(stale, '');
    const live = path.join(runDir, 'live-0000.sock');
    const server = net.createServer().listen(live);
    await new Promise((r) => server.once('listening', r));
    try {
      await h.adapter.start(spec);
      await expect(fs.stat(stale)).rejects.toThrow(/ENOENT/);
      expect((await fs.stat(live)).isSocket()).toBe(true);
    } finally {
      server.close();
      await h.close();
    }
  });
});

describe.each(['worker', 'process'] as const)('an isolated app in a %s', (mode) => {
  it("its log lines reach the supervisor's log with app, level, message and fields", async () => {
    const h = await harness(`sqlite:${path.join(root, `${mode}-log.sqlite`)}`);
    try {
      await h.adapter.start(await h.spec('logger', mode));
      expect((await call(h.adapter, 'logger', '/log?marker=m-1')).status).toBe(200);
      const line = await waitForLine(h.lines, (l) => l.marker === 'm-1');
      expect(line).toMatchObject({ app: 'logger', level: 40, msg: 'hello from the app', nested: { n: 1 } });
    } finally {
      await h.close();
    }
  });

  it('a supervisor whose own loop was blocked longer than watchdogMs does not blame the app', async () => {
    const h = await harness(`sqlite:${path.join(root, `${mode}-blocked.sqlite`)}`);
    try {
      const spec = await h.spec('patient', mode);
      await h.adapter.start(spec);
      // The app's heartbeats queue up while this (the supervisor's) thread is busy.
      const until = Date.now() + spec.isolation!.watchdogMs * 1.5;
      while (Date.now() < until) {
        // blocked
      }
      await new Promise((r) => setTimeout(r, 500));
      expect(h.adapter.status('patient')).toMatchObject({ status: 'running', error: null });
      expect((await call(h.adapter, 'patient', '/hello')).status).toBe(200);
    } finally {
      await h.close();
    }
  });

  it("a start its host refuses fails with the host's code; a spec that fits starts it again", async () => {
    const h = await harness(`sqlite:${path.join(root, `${mode}-refused.sqlite`)}`);
    try {
      const spec = await h.spec('behind', mode);
      // The code is a version ahead of the data: a boot only checks, so it is refused.
      const ahead = { ...spec, data: { ...spec.data, version: spec.data.version + 1 }, hash: 'ahead' };
      await expect(h.adapter.start(ahead)).rejects.toMatchObject({ code: 'APP_NEEDS_UPGRADE' });
      expect(h.adapter.status('behind')).toMatchObject({
        status: 'needs-upgrade',
        error: { code: 'APP_NEEDS_UPGRADE' },
      });
      expect(h.adapter.route('behind')).toBeUndefined();
      // The same name starts fine on a spec the data fits.
      await h.adapter.start(spec);
      expect((await call(h.adapter, 'behind', '/hello')).status).toBe(200);
    } finally {
      await h.close();
    }
  });

  it('a stop lets the request in flight finish, then ends it', async () => {
    const h = await harness(`sqlite:${path.join(root, `${mode}-stop.sqlite`)}`);
    try {
      await h.adapter.start(await h.spec('drain', mode));
      const slow = call(h.adapter, 'drain', '/slow?ms=600');
      await new Promise((r) => setTimeout(r, 100));
      await h.adapter.stop('drain', { graceMs: 5_000 });
      expect(await slow).toEqual({ status: 200, body: '{"slept":600}' });
      expect(h.adapter.route('drain')).toBeUndefined();
      expect(h.adapter.status('drain')).toBeUndefined();
    } finally {
      await h.close();
    }
  });

  it("its PostgreSQL pool is counted in the server's connection budget while it runs", async (ctx) => {
    if (!PG.available) ctx.skip();
    const prefix = uniqueName('avb');
    const mainDb = `${prefix}_main`;
    await withPgClient(PG.url, (c) => c.query(`CREATE DATABASE "${mainDb}"`));
    const mainUrl = PG.url.replace(/\/[^/]*$/, `/${mainDb}`);
    const h = await harness(mainUrl, { connectionBudget: 20 });
    try {
      const name = `${prefix}_app`;
      await h.adapter.start(await h.spec(name, mode));
      const budget = [...h.providers.budgets().values()][0]!;
      const before = budget.open;
      expect((await call(h.adapter, name, '/db?text=x')).status).toBe(200);
      // Reserved for the host's pool of poolMax (3) connections, whatever it has open right now.
      expect(h.adapter.status(name)?.status).toBe('running');
      expect(before).toBeGreaterThanOrEqual(3);
      await h.adapter.stop(name);
      expect(budget.open).toBe(before - 3);
    } finally {
      await h.close();
      await withPgClient(PG.url, async (c) => {
        const { rows } = await c.query<{ datname: string }>(
          'SELECT datname FROM pg_database WHERE datname LIKE $1',
          [`${prefix}%`],
        );
        for (const r of rows) await c.query(`DROP DATABASE IF EXISTS "${r.datname}" WITH (FORCE)`);
      });
    }
  });
});

async function waitForLine(
  lines: readonly Record<string, unknown>[],
  match: (line: Record<string, unknown>) => boolean,
): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const found = lines.find(match);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no such log line; got ${JSON.stringify(lines)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
