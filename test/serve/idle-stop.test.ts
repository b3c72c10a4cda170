/**
 * Idle stop in `serve` (SPEC §8.2): an app that served nothing for its idleStop is stopped by
 * the supervisor (status `stopped`, reason `idle`), its next visit starts it again, and an open
 * request or WebSocket keeps it running however long it lasts.
 */
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { CliIO } from '../../src/cli/common.js';
import { main } from '../../src/cli/main.js';
import { ADMIN_TOKEN, manifest, type Serve, startServe, waitFor, writeTestApp } from './harness.js';

const IDLE_MS = 300;
/** Long enough for an idle stop to have happened several times over, had it been allowed. */
const WELL_PAST_IDLE_MS = 4 * IDLE_MS;

const serves: Serve[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const s of serves.splice(0)) await s.close();
  for (const d of dirs.splice(0)) await fs.rm(d, { recursive: true, force: true });
});

async function serveWith(manifests: Record<string, string>, idleStopMs?: number): Promise<Serve> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-idle-'));
  dirs.push(dir);
  const app = await writeTestApp(dir);
  const s = await startServe({
    dir,
    app,
    manifests,
    ...(idleStopMs !== undefined ? { settings: { idleStopMs } } : {}),
  });
  serves.push(s);
  return s;
}

function idleStopped(s: Serve, name: string): Promise<unknown> {
  return waitFor(async () => {
    const v = await s.view(name);
    return v.status === 'stopped' && v.statusReason === 'idle';
  }, `${name} stopped for idleness`);
}

/** `appvisor status` against the server: what it prints. */
async function statusTable(s: Serve): Promise<string> {
  let stdout = '';
  const io: CliIO = {
    stdout: { write: (text: string) => (stdout += text), isTTY: false },
    stderr: { write: () => true, isTTY: false },
    env: { APPVISOR_ADMIN_TOKEN: ADMIN_TOKEN },
    cwd: s.dir,
  };
  expect(await main(['status', '--url', s.sup.url], io)).toBe(0);
  return stdout;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Opens a WebSocket-style upgrade to `urlPath`; resolves once the app answered 101. */
function openUpgrade(url: string, urlPath: string): Promise<net.Socket> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    socket.setEncoding('latin1');
    socket.once('error', reject);
    socket.write(
      `GET ${urlPath} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n`,
    );
    socket.once('data', (chunk: string) => {
      if (chunk.startsWith('HTTP/1.1 101')) resolve(socket);
      else reject(new Error(`upgrade answered ${chunk.split('\r\n')[0]}`));
    });
  });
}

describe('serve: idle stop', () => {
  it('stops a visited app once idle, with reason idle, and its next visit starts it again', async () => {
    const s = await serveWith({ 'crm.yaml': manifest('crm', `idleStop: ${IDLE_MS}ms\n`) });
    expect((await s.request('/apps/crm/api/info')).status).toBe(200);
    expect((await s.view('crm')).status).toBe('running');

    await idleStopped(s, 'crm');
    expect(await statusTable(s)).toMatch(/^crm\s+stopped \(idle\)\s/m);
    const history = await s.admin('/apps/crm/history');
    const stop = JSON.stringify(history.body);
    expect(stop).toContain(`(idleStop ${IDLE_MS}ms)`);

    const again = await s.request('/apps/crm/api/info');
    expect(again.status).toBe(200);
    expect(again.body.name).toBe('crm');
    const view = await s.view('crm');
    expect(view.status).toBe('running');
    expect(view.statusReason).toBeNull();
    // And it goes idle again.
    await idleStopped(s, 'crm');
  });

  it('stops a with-main app by the idleStop setting and leaves it stopped until a visit', async () => {
    const s = await serveWith({ 'crm.yaml': manifest('crm', 'startMode: with-main\n') }, IDLE_MS);
    await idleStopped(s, 'crm');
    // Reconciles go on (a reload), but none restarts it by itself.
    await s.sup.reload();
    s.sup.queue.add('crm');
    await s.sup.queue.onIdle();
    await sleep(WELL_PAST_IDLE_MS);
    expect((await s.view('crm')).statusReason).toBe('idle');
    expect((await s.request('/apps/crm/api/info')).status).toBe(200);
    expect((await s.view('crm')).status).toBe('running');
  });

  it('idleStop: off in the manifest overrides the setting', async () => {
    const s = await serveWith(
      {
        'crm.yaml': manifest('crm', 'idleStop: "off"\n'),
        'desk.yaml': manifest('desk', ''),
      },
      IDLE_MS,
    );
    expect((await s.request('/apps/crm/api/info')).status).toBe(200);
    expect((await s.request('/apps/desk/api/info')).status).toBe(200);
    await idleStopped(s, 'desk');
    await sleep(WELL_PAST_IDLE_MS);
    expect((await s.view('crm')).status).toBe('running');
  });

  it('never stops an app while a request is open, however long it takes', async () => {
    const slowMs = 6 * IDLE_MS;
    const s = await serveWith({
      'crm.yaml': manifest('crm', `idleStop: ${IDLE_MS}ms\nconfig: { slowMs: ${slowMs} }\n`),
    });
    const slow = s.request('/apps/crm/slow');
    await waitFor(async () => (await s.view('crm')).status === 'running', 'crm running');
    await sleep(WELL_PAST_IDLE_MS);
    expect((await s.view('crm')).status).toBe('running');
    const answer = await slow;
    expect(answer.text).toBe('slow done');
    await idleStopped(s, 'crm');
  });

  it('never stops an app while a WebSocket is open', async () => {
    const s = await serveWith({ 'crm.yaml': manifest('crm', `idleStop: ${IDLE_MS}ms\n`) });
    const socket = await openUpgrade(s.sup.url, '/apps/crm/ws');
    await sleep(WELL_PAST_IDLE_MS);
    expect((await s.view('crm')).status).toBe('running');
    // Still the same socket, still answered.
    const echoed = new Promise<string>((resolve) => socket.once('data', (d: string) => resolve(d)));
    socket.write('ping');
    expect(await echoed).toBe('ping');
    socket.destroy();
    await idleStopped(s, 'crm');
  });

  it('an operator stop holds on an idle-stopped app: a visit gets APP_STOPPED', async () => {
    const s = await serveWith({ 'crm.yaml': manifest('crm', `idleStop: ${IDLE_MS}ms\n`) });
    expect((await s.request('/apps/crm/api/info')).status).toBe(200);
    await idleStopped(s, 'crm');
    expect((await s.admin('/apps/crm/stop', 'POST')).status).toBe(202);
    await waitFor(async () => (await s.request('/apps/crm/api/info')).status === 503, 'APP_STOPPED');
    expect((await s.request('/apps/crm/api/info')).body.error.code).toBe('APP_STOPPED');
    expect((await s.view('crm')).statusReason).toBeNull();
    expect((await s.admin('/apps/crm/start', 'POST')).status).toBe(202);
    await waitFor(async () => (await s.view('crm')).status === 'running', 'started by the operator');
  });
});
