/**
 * The executor's start step is a step with an outcome: a start done within the wait is
 * `updated`, one still under way is `in-progress` with a requeue at its deadline, and a failed
 * one fails the step (and the run), its error recorded. Real SQLite state store, fake runtime.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AppvisorError, isTerminal } from '../../src/errors.js';
import { ProviderSet } from '../../src/providers/set.js';
import { executeApp, type RuntimeControl } from '../../src/reconcile/executor.js';
import type { DatabaseTarget, Step } from '../../src/reconcile/model.js';
import { openStateStore } from '../../src/state/store.js';
import type { StateStore } from '../../src/state/types.js';
import { loaded, manifest } from './fixtures.js';

const log = pino({ level: 'silent' });
let dir: string;
let store: StateStore;
let providers: ProviderSet;

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-start-step-'));
  const url = `sqlite:${path.join(dir, 'main.sqlite')}`;
  store = await openStateStore(url, { log });
  providers = new ProviderSet(url, { dataDir: dir });
});

afterEach(async () => {
  await providers.close();
  await store.close();
  await fs.rm(dir, { recursive: true, force: true });
});

const TARGET: DatabaseTarget = {
  dialect: 'sqlite',
  server: 'sqlite:data',
  serverRef: 'main',
  kind: 'database',
  database: 'crm',
};

/** A runtime whose start does what `start` says; it records the calls. */
function fakeRuntime(start: () => Promise<void>, deadline = Date.now() + 30_000) {
  const calls: string[] = [];
  const runtime: RuntimeControl = {
    route: () => calls.push('route') && undefined,
    unroute: async () => {
      calls.push('unroute');
    },
    start: async (name) => {
      calls.push(`start ${name}`);
      await start();
    },
    startDeadline: () => deadline,
    stop: async (name) => {
      calls.push(`stop ${name}`);
    },
  };
  return { runtime, calls };
}

const settlesAfter = (ms: number, fail?: AppvisorError) => () =>
  new Promise<void>((resolve, reject) => setTimeout(() => (fail ? reject(fail) : resolve()), ms));

async function run(
  runtime: RuntimeControl,
  action: Step['action'] = 'start',
  startWaitMs = 200,
  signal?: AbortSignal,
) {
  const m = loaded(manifest('crm', { startMode: 'with-main' }));
  return executeApp(
    {
      name: 'crm',
      steps: [{ app: 'crm', action, detail: 'startMode: with-main' }],
      loaded: m,
      actual: { hasSecret: true },
      target: TARGET,
      reconcileId: 'r1',
      ...(signal ? { signal } : {}),
    },
    { store, fence: await store.beginTerm(), providers, log, runtime, startWaitMs },
  );
}

describe('executor: the start step', () => {
  it('awaits a start that is done within the wait: updated, nothing pending', async () => {
    const { runtime, calls } = fakeRuntime(settlesAfter(20));
    const result = await run(runtime);
    expect(result.outcomes.map((o) => o.result)).toEqual(['updated']);
    expect(result.startPendingUntil).toBeUndefined();
    expect(calls).toEqual(['route', 'start crm', 'route']);
  });

  it('leaves a slower start running: in-progress, and a requeue just after its deadline', async () => {
    const deadline = Date.now() + 5_000;
    const { runtime } = fakeRuntime(settlesAfter(1_000), deadline);
    const t0 = Date.now();
    const result = await run(runtime, 'start', 50);
    expect(Date.now() - t0).toBeLessThan(900);
    expect(result.outcomes.map((o) => o.result)).toEqual(['in-progress']);
    expect(result.startPendingUntil).toBeGreaterThanOrEqual(deadline);
    expect(result.startPendingUntil).toBeLessThan(deadline + 1_000);
    // Not a failure: the run is recorded as done.
    expect((await store.getRecord('crm'))?.lastError).toBeUndefined();
  });

  it('fails the step (and the run) when the start fails, and records the error', async () => {
    const error = new AppvisorError('APP_ERROR', { app: 'crm', detail: 'create() threw' });
    const { runtime } = fakeRuntime(settlesAfter(10, error));
    await expect(run(runtime)).rejects.toBe(error);
    expect(isTerminal(error)).toBe(false);
    const record = await store.getRecord('crm');
    expect(record?.lastError).toMatchObject({ code: 'APP_ERROR', message: error.message });
    const [entry] = await store.listHistory('crm');
    expect(entry?.outcome).toBe('failed');
    expect(entry?.steps).toMatchObject([{ action: 'start', result: 'failed' }]);
  });

  it('fails terminally when the data must be upgraded first (retrying cannot help)', async () => {
    const error = new AppvisorError('APP_NEEDS_UPGRADE', { app: 'crm', dataVersion: 1, codeVersion: 2 });
    const { runtime } = fakeRuntime(settlesAfter(10, error));
    const err = await run(runtime).catch((e: unknown) => e);
    expect(err).toBe(error);
    expect(isTerminal(err)).toBe(true);
  });

  it('stops waiting when the run is called off (a lost lock): rejects at once, writes nothing', async () => {
    const { runtime } = fakeRuntime(settlesAfter(1_000));
    const controller = new AbortController();
    setTimeout(() => controller.abort(new AppvisorError('LOCK_LOST', { detail: 'test' })), 30);
    const t0 = Date.now();
    await expect(run(runtime, 'start', 5_000, controller.signal)).rejects.toMatchObject({
      code: 'LOCK_LOST',
    });
    expect(Date.now() - t0).toBeLessThan(900);
    expect(await store.listHistory('crm')).toEqual([]);
  });

  it('restarts as a stop, then a start with an outcome', async () => {
    const { runtime, calls } = fakeRuntime(settlesAfter(10));
    const result = await run(runtime, 'restart');
    expect(result.outcomes.map((o) => o.result)).toEqual(['updated']);
    expect(calls).toEqual(['route', 'stop crm', 'start crm', 'route']);
  });
});
