/**
 * Faulty applications under `serve`: a create() that throws, one that never returns, and a
 * thousand visitors racing for one cold app. Each fault stays inside its app.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { StatusEvent } from '../../src/runtime/view.js';
import { manifest, type Serve, startServe, testAppProbe, waitFor, writeTestApp } from './harness.js';

let serve: Serve | undefined;
let dir: string;

async function withTestApp(
  manifests: Record<string, string>,
  supervisor: Parameters<typeof startServe>[0] extends infer O
    ? O extends { supervisor?: infer S }
      ? S
      : never
    : never = {},
): Promise<Serve> {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-serve-'));
  const app = await writeTestApp(dir);
  serve = await startServe({ dir, app, manifests, supervisor });
  return serve;
}

afterEach(async () => {
  await serve?.close();
  serve = undefined;
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('serve: faulty apps', () => {
  it('puts an app whose create() throws in error, answers 503 APP_ERROR, retries with backoff once fixed', async () => {
    const flag = path.join(os.tmpdir(), `appvisor-fail-${process.pid}-${Date.now()}`);
    await fs.writeFile(flag, '');
    try {
      const s = await withTestApp({
        'bad.yaml': manifest(
          'bad',
          `startMode: with-main\nconfig: {failWhileExists: ${JSON.stringify(flag)}}\n`,
        ),
        'lazy.yaml': manifest('lazy', `config: {failWhileExists: ${JSON.stringify(flag)}}\n`),
        'good.yaml': manifest('good', 'startMode: with-main\n'),
      });
      const bad = await s.view('bad');
      expect(bad.status).toBe('error');
      expect(bad.error).toMatchObject({ code: 'APP_ERROR' });
      expect(bad.error?.message).toContain('create() failed on purpose for bad');
      // readyz is not held hostage by one broken app.
      expect((await s.request('/_supervisor/readyz')).status).toBe(200);

      const visit = await s.request('/apps/bad/api/info');
      expect(visit.status).toBe(503);
      expect(visit.body.error).toMatchObject({ code: 'APP_ERROR', app: 'bad' });
      expect(visit.body.error.message).toBe(bad.error?.message);

      const lazy = await s.request('/apps/lazy/api/info');
      expect(lazy.status).toBe(503);
      expect(lazy.body.error.code).toBe('APP_ERROR');
      expect((await s.view('lazy')).status).toBe('error');

      // Other apps are unaffected.
      expect((await s.request('/apps/good/api/info')).status).toBe(200);
      expect((await s.request('/api/info')).status).toBe(200);

      // It retries by itself, with growing delays, while it keeps failing.
      const failedBefore = testAppProbe().creates.bad ?? 0;
      await waitFor(() => (testAppProbe().creates.bad ?? 0) >= failedBefore + 2, 'two more attempts', 10_000);
      expect((await s.view('bad')).status).toBe('error');

      // Fixed: the with-main app comes back on its own, without restarting appvisor.
      await fs.rm(flag);
      await waitFor(async () => (await s.view('bad')).status === 'running', 'bad to recover', 15_000);
      expect((await s.request('/apps/bad/api/info')).status).toBe(200);
      // The on-first-visit one on a visit once its backoff has passed.
      await waitFor(
        async () => (await s.request('/apps/lazy/api/info')).status === 200,
        'lazy to recover',
        15_000,
      );
    } finally {
      await fs.rm(flag, { force: true });
    }
  });

  it('keeps retrying a failed with-main app however its retry timers fall', async () => {
    const flag = path.join(os.tmpdir(), `appvisor-fail-${process.pid}-${Date.now()}`);
    await fs.writeFile(flag, '');
    try {
      // Many retries with tiny delays: now and then a timer fires a millisecond before Date.now()
      // reaches the retry time it was set for, and such a retry must not end the retries.
      const s = await withTestApp(
        {
          'flaky.yaml': manifest(
            'flaky',
            `startMode: with-main\nconfig: {failWhileExists: ${JSON.stringify(flag)}}\n`,
          ),
        },
        { backoff: { baseMs: 1, maxMs: 2 } },
      );
      await waitFor(() => (testAppProbe().creates.flaky ?? 0) >= 600, '600 attempts', 15_000);
      await fs.rm(flag);
      await waitFor(async () => (await s.view('flaky')).status === 'running', 'flaky running');
    } finally {
      await fs.rm(flag, { force: true });
    }
  });

  it('recovers an app whose create() throws as soon as its manifest is touched', async () => {
    const flag = path.join(os.tmpdir(), `appvisor-fail-${process.pid}-${Date.now()}`);
    await fs.writeFile(flag, '');
    try {
      const text = manifest(
        'bad',
        `startMode: with-main\nconfig: {failWhileExists: ${JSON.stringify(flag)}}\n`,
      );
      const s = await withTestApp({ 'bad.yaml': text });
      expect((await s.view('bad')).status).toBe('error');
      await fs.rm(flag);
      await s.write('bad.yaml', `${text}displayName: Bad no more\n`);
      await waitFor(async () => (await s.view('bad')).status === 'running', 'bad to run', 5_000);
    } finally {
      await fs.rm(flag, { force: true });
    }
  });

  it('gives up on a create() that hangs after the start timeout; other apps are unaffected', async () => {
    const s = await withTestApp(
      {
        'stuck.yaml': manifest('stuck', 'config: {hang: true}\n'),
        'good.yaml': manifest('good'),
      },
      { startTimeoutMs: 500 },
    );
    const started = Date.now();
    const first = await s.request('/apps/stuck/api/info');
    expect(first.status).toBe(503);
    expect(['APP_STARTING', 'APP_START_TIMEOUT']).toContain(first.body.error.code);
    expect(first.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(Date.now() - started).toBeLessThan(3_000);
    expect((await s.request('/apps/good/api/info')).status).toBe(200);

    const view = await waitFor(async () => {
      const v = await s.view('stuck');
      return v.status === 'error' ? v : undefined;
    }, 'stuck in error');
    expect(view.error?.code).toBe('APP_START_TIMEOUT');
    const again = await s.request('/apps/stuck/api/info');
    expect(again.status).toBe(503);
    expect((await s.request('/apps/good/api/info')).status).toBe(200);
    expect((await s.request('/_supervisor/healthz')).status).toBe(200);
  });

  it('a with-main app hanging in create() holds up neither other reconciles nor their apps', async () => {
    const s = await withTestApp({ 'good.yaml': manifest('good') }, { startTimeoutMs: 20_000 });
    await s.write('stuck.yaml', manifest('stuck', 'startMode: with-main\nconfig: {hang: true}\n'));
    await waitFor(async () => (await s.view('stuck')).status === 'starting', 'stuck starting');
    // While stuck's start hangs, a new app is provisioned and served, and edits still apply.
    await s.write('late.yaml', manifest('late'));
    await waitFor(async () => (await s.request('/apps/late/api/info')).status === 200, 'late served', 5_000);
    await s.write('good.yaml', manifest('good', 'enabled: false\n'));
    await waitFor(
      async () => (await s.request('/apps/good/api/info')).body?.error?.code === 'APP_DISABLED',
      'good disabled',
      5_000,
    );
    expect((await s.view('stuck')).status).toBe('starting');
  });

  it('starts a cold app once for 1,000 concurrent first requests, and answers all of them', async () => {
    const s = await withTestApp({ 'cold.yaml': manifest('cold', 'config: {createDelayMs: 100}\n') });
    const starting: StatusEvent[] = [];
    s.sup.events.on('status', (e) => {
      if (e.app === 'cold' && e.status === 'starting') starting.push(e);
    });
    const before = testAppProbe().creates.cold ?? 0;
    expect(before).toBe(0);
    const answers = await Promise.all(
      Array.from({ length: 1000 }, () =>
        fetch(`${s.sup.url}/apps/cold/api/info`).then(async (r) => ({
          status: r.status,
          body: (await r.json()) as { name: string },
        })),
      ),
    );
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    expect(answers.every((a) => a.body.name === 'cold')).toBe(true);
    expect(testAppProbe().creates.cold).toBe(1);
    expect(starting).toHaveLength(1);
  });
});
