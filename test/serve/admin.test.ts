/**
 * The admin API's start/stop against a running `serve`, and a graceful shutdown that drains
 * requests and hands the data dir (and its reconcile lock) on.
 */
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { acquireReconcileLock } from '../../src/reconcile/lock.js';
import {
  ADMIN_TOKEN,
  manifest,
  type Serve,
  startServe,
  testAppProbe,
  waitFor,
  writeTestApp,
} from './harness.js';

const serves: Serve[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const s of serves.splice(0)) await s.close();
  for (const d of dirs.splice(0)) await fs.rm(d, { recursive: true, force: true });
});

async function start(options: Parameters<typeof startServe>[0]): Promise<Serve> {
  const s = await startServe(options);
  serves.push(s);
  return s;
}

function refused(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
  });
}

describe('serve: admin start and stop', () => {
  it('keeps a with-main app stopped by hand across reconciles until started again', async () => {
    const text = manifest('crm', 'startMode: with-main\n');
    const s = await start({ manifests: { 'crm.yaml': text, 'desk.yaml': manifest('desk') } });
    expect((await s.view('crm')).status).toBe('running');

    const stop = await s.admin('/apps/crm/stop', 'POST');
    expect(stop.status).toBe(202);
    expect(stop.body.name).toBe('crm');
    await waitFor(async () => (await s.view('crm')).status === 'stopped', 'crm stopped');

    // A reconcile of every app (as the resync does) and a rewrite of the same file: still stopped.
    await s.sup.reload();
    s.sup.queue.addAll(['crm', 'desk']);
    await s.sup.queue.onIdle();
    await s.write('crm.yaml', text);
    await s.sup.reload();
    await s.sup.queue.onIdle();
    expect((await s.view('crm')).status).toBe('stopped');

    const startAnswer = await s.admin('/apps/crm/start', 'POST');
    expect(startAnswer.status).toBe(202);
    await waitFor(async () => (await s.view('crm')).status === 'running', 'crm running');
    expect((await s.request('/apps/crm/api/info')).status).toBe(200);
  });

  it("keeps an operator's stop through a manifest change: only a start ends it", async () => {
    const s = await start({ manifests: { 'crm.yaml': manifest('crm', 'startMode: with-main\n') } });
    expect((await s.admin('/apps/crm/stop', 'POST')).status).toBe(202);
    await waitFor(async () => (await s.view('crm')).status === 'stopped', 'crm stopped');
    await s.write('crm.yaml', manifest('crm', 'startMode: with-main\nconfig: {banner: back}\n'));
    await s.sup.reload();
    await s.sup.queue.onIdle();
    expect((await s.view('crm')).status).toBe('stopped');
    expect((await s.request('/apps/crm/api/info')).body.error.code).toBe('APP_STOPPED');
    expect((await s.admin('/apps/crm/start', 'POST')).status).toBe(202);
    await waitFor(async () => (await s.view('crm')).status === 'running', 'crm running after start', 5_000);
  });

  it('retries a failed app at once when an operator starts it, without waiting out its backoff', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-serve-'));
    dirs.push(dir);
    const app = await writeTestApp(dir);
    const flag = path.join(dir, 'fail');
    await fs.writeFile(flag, '');
    const s = await start({
      dir,
      app,
      manifests: {
        'bad.yaml': manifest(
          'bad',
          `startMode: with-main\nconfig: {failWhileExists: ${JSON.stringify(flag)}}\n`,
        ),
      },
      // Long enough that only the operator's start can explain a quick recovery.
      supervisor: { backoff: { baseMs: 60_000, maxMs: 60_000 } },
    });
    expect((await s.view('bad')).status).toBe('error');
    await fs.rm(flag);
    expect((await s.admin('/apps/bad/start', 'POST')).status).toBe(202);
    await waitFor(async () => (await s.view('bad')).status === 'running', 'bad running', 5_000);
  });

  it('answers a visit to an app stopped by hand with 503 APP_STOPPED (who, when, how to start), across a restart', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-serve-'));
    dirs.push(dir);
    const first = await start({ dir, manifests: { 'desk.yaml': manifest('desk') } });
    expect((await first.request('/apps/desk/api/info')).status).toBe(200);
    const stop = await first.request('/_supervisor/api/apps/desk/stop', {
      method: 'POST',
      token: ADMIN_TOKEN,
      headers: { 'x-appvisor-client': 'appvisor-cli alice@box' },
    });
    expect(stop.status).toBe(202);
    await waitFor(async () => (await first.view('desk')).status === 'stopped', 'desk stopped');
    const visit = await first.request('/apps/desk/api/info');
    expect(visit.status).toBe(503);
    expect(visit.body.error).toMatchObject({ code: 'APP_STOPPED', app: 'desk' });
    expect(visit.body.error.message).toMatch(
      /^app desk was stopped by token APPVISOR_ADMIN_TOKEN via appvisor-cli alice@box at \d{4}-\d\d-\d\dT.*; .*`appvisor start desk`/,
    );
    expect((await first.view('desk')).status).toBe('stopped');
    expect((await first.view('desk')).intent).toMatchObject({
      action: 'stop',
      by: 'token APPVISOR_ADMIN_TOKEN via appvisor-cli alice@box',
    });

    // Intent lives in the state store: a restarted supervisor keeps the app stopped.
    await first.close();
    serves.splice(serves.indexOf(first), 1);
    const second = await start({ dir, manifests: { 'desk.yaml': manifest('desk') } });
    expect((await second.request('/apps/desk/api/info')).body.error.code).toBe('APP_STOPPED');
    expect((await second.admin('/apps/desk/start', 'POST')).status).toBe(202);
    await waitFor(async () => (await second.view('desk')).status === 'running', 'desk started');
    expect((await second.request('/apps/desk/api/info')).status).toBe(200);
  });

  it('reports the status of a visit that starts an app again while it is still stopping', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-serve-'));
    dirs.push(dir);
    const app = await writeTestApp(dir);
    const s = await start({
      dir,
      app,
      manifests: { 'desk.yaml': manifest('desk', 'config: {closeDelayMs: 300}\n') },
    });
    expect((await s.request('/apps/desk/api/info')).status).toBe(200);
    const events: string[] = [];
    s.sup.events.on('status', (e) => {
      if (e.app === 'desk') events.push(e.status);
    });
    const closes = testAppProbe().closes.desk ?? 0;
    // What a stop step does, with the promise kept to know when the stop is over.
    const stopping = s.sup.runtime.stop('desk');
    // The old instance takes 300 ms to close; this visit starts a new one meanwhile.
    expect((await s.request('/apps/desk/api/info')).status).toBe(200);
    expect(testAppProbe().closes.desk ?? 0).toBe(closes);
    await stopping;
    expect(testAppProbe().closes.desk).toBe(closes + 1);
    expect(events.at(-1)).toBe('running');
    expect((await s.view('desk')).status).toBe('running');
  });

  it('answers 404 APP_NOT_FOUND for an unknown app, and 401 without the token', async () => {
    const s = await start({ manifests: { 'desk.yaml': manifest('desk') } });
    for (const action of ['start', 'stop']) {
      const answer = await s.admin(`/apps/nope/${action}`, 'POST');
      expect(answer.status).toBe(404);
      expect(answer.body.error.code).toBe('APP_NOT_FOUND');
    }
    expect((await s.admin('/apps/nope')).status).toBe(404);
    // A disabled app is refused, not accepted and then left stopped.
    await s.write('desk.yaml', manifest('desk', 'enabled: false\n'));
    await waitFor(async () => (await s.view('desk')).status === 'disabled', 'desk disabled');
    const refusedStart = await s.admin('/apps/desk/start', 'POST');
    expect(refusedStart.status).toBe(503);
    expect(refusedStart.body.error.code).toBe('APP_DISABLED');
    await s.write('desk.yaml', manifest('desk'));
    await waitFor(async () => (await s.view('desk')).status === 'stopped', 'desk enabled again');
    const anonymous = await s.request('/_supervisor/api/apps/desk/stop', { method: 'POST' });
    expect(anonymous.status).toBe(401);
    expect(anonymous.text).not.toContain('desk');
    expect((await s.view('desk')).status).toBe('stopped');
  });
});

describe('serve: graceful shutdown', () => {
  it('drains an in-flight request, refuses new connections, and releases the data dir', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-serve-'));
    dirs.push(dir);
    const app = await writeTestApp(dir);
    const manifests = { 'slow.yaml': manifest('slow', 'startMode: with-main\nconfig: {slowMs: 300}\n') };
    const s = await startServe({ dir, app, manifests });
    const port = s.sup.address.port;

    const arrived = testAppProbe().slowArrived;
    const inFlight = fetch(`${s.sup.url}/apps/slow/slow`).then(async (r) => ({
      status: r.status,
      text: await r.text(),
    }));
    await waitFor(() => testAppProbe().slowArrived > arrived, 'the slow request to reach the app');
    const t0 = Date.now();
    const closing = s.sup.close({ graceMs: 3_000 });
    await expect(inFlight).resolves.toEqual({ status: 200, text: 'slow done' });
    await closing;
    expect(Date.now() - t0).toBeLessThan(3_000);
    expect(await refused(port)).toBe('ECONNREFUSED');
    expect(s.sup.close()).toBe(closing);

    // The next supervisor on the same data dir boots and reconciles right away (the lock is free).
    const next = await start({ dir, app, manifests, supervisor: { lockWaitMs: 1_000 } });
    expect((await next.request('/_supervisor/readyz')).status).toBe(200);
    expect((await next.view('slow')).status).toBe('running');
  });

  it('closes within its grace even when a request never finishes', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-serve-'));
    dirs.push(dir);
    const app = await writeTestApp(dir);
    const s = await startServe({
      dir,
      app,
      manifests: { 'slow.yaml': manifest('slow', 'startMode: with-main\nconfig: {slowMs: 60000}\n') },
    });
    const arrived = testAppProbe().slowArrived;
    const stuck = fetch(`${s.sup.url}/apps/slow/slow`).then(
      (r) => r.status,
      () => 'cut',
    );
    await waitFor(() => testAppProbe().slowArrived > arrived, 'the slow request to reach the app');
    const t0 = Date.now();
    await s.sup.close({ graceMs: 300 });
    expect(Date.now() - t0).toBeLessThan(2_500);
    expect(await stuck).toBe('cut');
  });

  it('closes within its grace while an app hangs in create()', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-serve-'));
    dirs.push(dir);
    const app = await writeTestApp(dir);
    const s = await startServe({
      dir,
      app,
      manifests: { 'stuck.yaml': manifest('stuck', 'config: {hang: true}\n') },
      supervisor: { startTimeoutMs: 30_000 },
    });
    const visit = fetch(`${s.sup.url}/apps/stuck/api/info`).then(
      (r) => r.status,
      () => 'cut',
    );
    await waitFor(async () => (await s.view('stuck')).status === 'starting', 'stuck to be starting');
    const t0 = Date.now();
    await s.sup.close({ graceMs: 500 });
    expect(Date.now() - t0).toBeLessThan(2_500);
    expect(await visit).toBe('cut');
  });

  it('releases the reconcile lock when closed in the middle of a reconcile', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-serve-'));
    dirs.push(dir);
    const app = await writeTestApp(dir);
    const s = await startServe({
      dir,
      app,
      manifests: { 'crm.yaml': manifest('crm', 'startMode: with-main\nconfig: {closeDelayMs: 1000}\n') },
    });
    // A config change restarts crm, and the running instance's close() takes a second: the
    // reconcile (which waits for the stop) holds the lock meanwhile.
    await s.write('crm.yaml', manifest('crm', 'startMode: with-main\nconfig: {closeDelayMs: 1001}\n'));
    await waitFor(() => s.sup.queue.running.includes('crm'), 'the reconcile of crm to run', 5_000, 5);
    await s.sup.close({ graceMs: 2_000 });
    const lock = await acquireReconcileLock(s.settings.database.url, { waitMs: 0 });
    expect(lock.held).toBe(true);
    await lock.release();
  });
});
