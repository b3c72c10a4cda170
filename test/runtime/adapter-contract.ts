/**
 * The process adapter's contract (src/runtime/adapter.ts) as a suite that every adapter runs
 * unchanged: `adapterContract(label, factory)`. The factory owns everything adapter-specific
 * (where databases live, how secrets are read); the suite only uses the AppProcessAdapter
 * interface, plain-JSON instance specs and real HTTP.
 *
 * The application every spec names is the module `contractApp()` writes: plain JavaScript, one
 * migration, steered per instance by its `config` (`fail`, `hang`, `createDelayMs`), answering
 * every request with who it is.
 */
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AppvisorError } from '../../src/errors.js';
import type {
  AppProcessAdapter,
  BootData,
  InstanceSpec,
  InstanceStatusEvent,
} from '../../src/runtime/adapter.js';

/** What a factory hands the suite. */
export interface ContractHarness {
  readonly adapter: AppProcessAdapter;
  /**
   * A spec for app `name` on a database of its own that exists (empty: not installed), with its
   * own secret readable by the adapter; `module` is the application module to name.
   */
  spec(name: string, extra?: SpecExtra): Promise<InstanceSpec>;
  close(): Promise<void>;
}

export interface SpecExtra {
  readonly config?: Record<string, unknown>;
  readonly boot?: BootData;
}

export interface ContractOptions {
  /** The start timeout the adapter must be made with. */
  readonly startTimeoutMs: number;
  /** The application module every spec names (written by the suite). */
  readonly module: string;
}

export type AdapterFactory = (options: ContractOptions) => Promise<ContractHarness>;

/** Writes the suite's application module into `dir`; returns its path. */
export async function contractApp(dir: string): Promise<string> {
  const file = path.join(dir, 'contract-app.mjs');
  await fs.writeFile(
    file,
    `import { randomUUID } from 'node:crypto';
export default {
  name: 'contract-app',
  version: 1,
  migrations: [
    { version: 1, description: 'one table', up: (db) => db.exec('CREATE TABLE IF NOT EXISTS notes (id INTEGER)') },
  ],
  async create(ctx) {
    const cfg = ctx.config ?? {};
    if (cfg.fail) throw new Error('create() failed on purpose for ' + ctx.name);
    if (cfg.hang) await new Promise(() => {});
    if (cfg.createDelayMs) await new Promise((r) => setTimeout(r, cfg.createDelayMs));
    const instance = randomUUID();
    const token = ctx.jwt.sign({ sub: 'probe' });
    return {
      handler(req, res) {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({
          name: ctx.name, basePath: ctx.basePath, url: req.url, config: cfg, instance,
          dialect: ctx.database.dialect, tokenOk: Boolean(ctx.jwt.verify(token)),
        }));
      },
    };
  },
};
`,
  );
  return file;
}

const START_TIMEOUT_MS = 400;

function errorOf(promise: Promise<unknown>): Promise<AppvisorError> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (err: unknown) => err as AppvisorError,
  );
}

/** Runs the contract against adapters made by `factory`. */
export function adapterContract(label: string, factory: AdapterFactory, workDir: () => string): void {
  describe(`process adapter contract: ${label}`, () => {
    let h: ContractHarness;
    let adapter: AppProcessAdapter;
    let server: http.Server;
    let base: string;
    let events: InstanceStatusEvent[];

    beforeEach(async () => {
      const module = await contractApp(workDir());
      h = await factory({ startTimeoutMs: START_TIMEOUT_MS, module });
      adapter = h.adapter;
      events = [];
      adapter.events.on('status', (e) => events.push(e));
      // Requests go to whatever the adapter routes `/<name>/…` to, as the gateway does.
      server = http.createServer((req, res) => {
        const [, name, ...rest] = (req.url ?? '/').split('/');
        const ready = adapter.route(name ?? '');
        if (!ready) {
          res.statusCode = 404;
          res.end();
          return;
        }
        req.url = `/${rest.join('/')}`;
        ready.handler(req, res);
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });

    afterEach(async () => {
      await adapter.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await h.close();
    });

    const visit = async (name: string, p = '/api/info') => {
      const res = await fetch(`${base}/${name}${p}`);
      // biome-ignore lint/suspicious/noExplicitAny: the contract app's JSON, only asserted on.
      const body: any = res.status === 200 ? await res.json() : undefined;
      return { status: res.status, body };
    };
    const statuses = (name: string) => events.filter((e) => e.app === name).map((e) => e.status);

    it('has a plain-JSON instance spec: a parsed copy of its JSON is the same spec, and starts the app', async () => {
      const spec = await h.spec('crm', { config: { colour: 'blue', nested: { n: [1, 2] } } });
      const copy = JSON.parse(JSON.stringify(spec)) as InstanceSpec;
      expect(copy).toStrictEqual(spec);
      await adapter.start({ ...copy, data: { ...copy.data, boot: 'migrate' } });
      expect((await visit('crm')).body).toMatchObject({ name: 'crm', config: { colour: 'blue' } });
    });

    it('starts an app (starting → running), routes to it and reports its state', async () => {
      const spec = await h.spec('crm', { boot: 'migrate', config: { createDelayMs: 50 } });
      expect(adapter.status('crm')).toBeUndefined();
      const started = adapter.start(spec);
      expect(adapter.status('crm')?.status).toMatch(/^(starting|upgrading)$/);
      expect(adapter.status('crm')?.deadline).toBeGreaterThan(Date.now());
      await started;
      const state = adapter.status('crm');
      expect(state).toMatchObject({ status: 'running', error: null, specHash: spec.hash, deadline: null });
      expect(state?.startedAt).toBeInstanceOf(Date);
      expect(statuses('crm').at(0)).toBe('starting');
      expect(statuses('crm').at(-1)).toBe('running');
      const answer = await visit('crm', '/api/info?x=1');
      expect(answer.status).toBe(200);
      expect(answer.body).toMatchObject({
        name: 'crm',
        basePath: '/apps/crm',
        url: '/api/info?x=1',
        tokenOk: true,
      });
      expect((await adapter.acquire('crm')).name).toBe('crm');
    });

    it('starts one instance for concurrent starts of one spec, and joins a running one', async () => {
      const spec = await h.spec('crm', { boot: 'migrate', config: { createDelayMs: 100 } });
      const joining = adapter.acquire('crm').catch((err: unknown) => err);
      await Promise.all([adapter.start(spec), adapter.start(spec), adapter.start(spec)]);
      const first = (await visit('crm')).body.instance;
      await adapter.start(spec);
      expect((await visit('crm')).body.instance).toBe(first);
      expect(statuses('crm').filter((s) => s === 'starting')).toHaveLength(1);
      // Nothing was started when acquire was called: it starts nothing itself.
      expect(await joining).toMatchObject({ code: 'APP_ERROR' });
    });

    it('joins a start under way from acquire and ready', async () => {
      const spec = await h.spec('crm', { boot: 'migrate', config: { createDelayMs: 150 } });
      const start = adapter.start(spec);
      const [ready] = await Promise.all([adapter.acquire('crm'), adapter.ready('crm'), start]);
      expect(ready.name).toBe('crm');
      expect(adapter.status('crm')?.status).toBe('running');
    });

    it('replaces an instance of another spec with a fresh start', async () => {
      const one = await h.spec('crm', { boot: 'migrate', config: { v: 1 } });
      await adapter.start(one);
      const before = (await visit('crm')).body.instance;
      const two = { ...one, config: { v: 2 }, hash: `${one.hash}-2` };
      await adapter.start(two);
      const after = (await visit('crm')).body;
      expect(after.instance).not.toBe(before);
      expect(after.config).toEqual({ v: 2 });
      expect(adapter.status('crm')?.specHash).toBe(two.hash);
    });

    it('stops an app: no route, no state; stopping twice or an unknown app is harmless', async () => {
      await adapter.start(await h.spec('crm', { boot: 'migrate' }));
      await adapter.start(await h.spec('desk', { boot: 'migrate' }));
      await adapter.stop('crm');
      expect(adapter.route('crm')).toBeUndefined();
      expect(adapter.status('crm')).toBeUndefined();
      expect((await visit('crm')).status).toBe(404);
      await adapter.stop('crm');
      await adapter.stop('nope');
      await Promise.all([adapter.stop('desk'), adapter.stop('desk')]);
      expect(adapter.status('desk')).toBeUndefined();
      // It can be started again.
      await adapter.start(await h.spec('crm', { boot: 'migrate' }));
      expect((await visit('crm')).status).toBe(200);
    });

    it('reports a failed start: the start rejects, status error, acquire fails fast, never retried by itself', async () => {
      const spec = await h.spec('bad', { boot: 'migrate', config: { fail: true } });
      const err = await errorOf(adapter.start(spec));
      expect(err.code).toBe('APP_ERROR');
      expect(err.message).toContain('create() failed on purpose for bad');
      const state = adapter.status('bad');
      expect(state).toMatchObject({ status: 'error', error: { code: 'APP_ERROR', message: err.message } });
      expect(state?.failedAt).toBeInstanceOf(Date);
      expect(statuses('bad').at(-1)).toBe('error');
      expect(await errorOf(adapter.acquire('bad'))).toMatchObject({
        code: 'APP_ERROR',
        message: err.message,
      });
      expect(adapter.route('bad')).toBeUndefined();
      await new Promise((r) => setTimeout(r, 200));
      expect(statuses('bad').filter((s) => s === 'starting')).toHaveLength(1);
      // Whoever decides starts it again: a fresh start.
      await adapter.start({ ...spec, config: {}, hash: `${spec.hash}-fixed` });
      expect(adapter.status('bad')?.status).toBe('running');
    });

    it('gives up on a start that outlasts the start timeout (APP_START_TIMEOUT)', async () => {
      const spec = await h.spec('stuck', { boot: 'migrate', config: { hang: true } });
      const t0 = Date.now();
      const err = await errorOf(adapter.start(spec));
      expect(err.code).toBe('APP_START_TIMEOUT');
      expect(Date.now() - t0).toBeLessThan(START_TIMEOUT_MS + 1_000);
      expect(adapter.status('stuck')?.status).toBe('error');
    });

    it("boot 'check' only checks the data: an uninstalled database is needs-upgrade, untouched", async () => {
      const spec = await h.spec('held', { boot: 'check' });
      const err = await errorOf(adapter.start(spec));
      expect(err.code).toBe('APP_NEEDS_UPGRADE');
      expect(adapter.status('held')?.status).toBe('needs-upgrade');
      // Nothing was installed: a second check says the same.
      expect((await errorOf(adapter.start(spec))).code).toBe('APP_NEEDS_UPGRADE');
      await adapter.start({ ...spec, data: { ...spec.data, boot: 'migrate' }, hash: `${spec.hash}-m` });
      await adapter.stop('held');
      await adapter.start(spec);
      expect(adapter.status('held')?.status).toBe('running');
    });

    it('abandons a start when stopped during it: the start rejects, nothing stays running', async () => {
      const spec = await h.spec('slow', { boot: 'migrate', config: { createDelayMs: 200 } });
      const start = errorOf(adapter.start(spec));
      await new Promise((r) => setTimeout(r, 20));
      await adapter.stop('slow');
      expect((await start).code).toBeDefined();
      expect(adapter.status('slow')).toBeUndefined();
      expect(adapter.route('slow')).toBeUndefined();
      await new Promise((r) => setTimeout(r, 250));
      expect(adapter.route('slow')).toBeUndefined();
      expect(statuses('slow')).not.toContain('running');
    });

    it('abandons a start whose signal aborts', async () => {
      const spec = await h.spec('slow', { boot: 'migrate', config: { createDelayMs: 200 } });
      const controller = new AbortController();
      const start = errorOf(adapter.start(spec, controller.signal));
      setTimeout(() => controller.abort(new Error('gone')), 20);
      expect(await start).toBeDefined();
      await adapter.settled();
      expect(adapter.route('slow')).toBeUndefined();
    });

    it('closes every instance; settled() waits for starts under way', async () => {
      await adapter.start(await h.spec('crm', { boot: 'migrate' }));
      const slow = adapter.start(await h.spec('slow', { boot: 'migrate', config: { createDelayMs: 100 } }));
      await adapter.settled();
      await slow;
      expect(adapter.status('slow')?.status).toBe('running');
      await adapter.close();
      await adapter.close();
      expect(adapter.route('crm')).toBeUndefined();
      expect(adapter.route('slow')).toBeUndefined();
    });
  });
}
