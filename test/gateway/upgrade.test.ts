import net from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ReadyApp } from '../../src/gateway/types.js';
import { AppFigures } from '../../src/serve/app-figures.js';
import { deferred, FakeApps, type Running, startGateway } from './fake-apps.js';

let running: Running | undefined;

afterEach(async () => {
  await running?.gateway.close({ graceMs: 100 });
  running = undefined;
});

/** Answers 101 naming what it saw, then echoes every byte back. */
function echoUpgrade(name: string): NonNullable<ReadyApp['upgrade']> {
  return (req, socket, head) => {
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `X-App: ${name}\r\nX-Url: ${req.url}\r\nX-Prefix: ${req.headers['x-forwarded-prefix'] ?? '-'}\r\n\r\n`,
    );
    if (head.length > 0) socket.write(head);
    socket.pipe(socket);
  };
}

interface Exchange {
  readonly head: string;
  readonly status: number;
  readonly body: string;
  readonly socket: net.Socket;
  /** Resolves when the server closed the connection. */
  readonly ended: Promise<void>;
}

/** Writes a raw Upgrade request and reads the response head (and, for errors, the body). */
function upgrade(port: number, path: string, host = 'localhost'): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const ended = new Promise<void>((done) => socket.once('close', () => done()));
    let data = '';
    socket.setEncoding('latin1');
    socket.on('error', reject);
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    const onData = (chunk: string): void => {
      data += chunk;
      const end = data.indexOf('\r\n\r\n');
      if (end === -1) return;
      const head = data.slice(0, end);
      const status = Number(head.split(' ')[1]);
      const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
      const body = data.slice(end + 4);
      if (status !== 101 && body.length < length) return;
      socket.off('data', onData);
      resolve({ head, status, body, socket, ended });
    };
    socket.on('data', onData);
  });
}

function readEcho(socket: net.Socket, text: string): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const onData = (chunk: string): void => {
      got += chunk;
      if (got.length >= text.length) {
        socket.off('data', onData);
        resolve(got);
      }
    };
    socket.on('data', onData);
    socket.write(text);
  });
}

describe('WebSocket upgrades', () => {
  it('routes an upgrade to its app with the prefix stripped, then carries bytes both ways', async () => {
    const apps = new FakeApps()
      .add('chat', { upgrade: echoUpgrade('chat') })
      .add('other', { upgrade: echoUpgrade('other') });
    running = await startGateway(apps);
    const exchange = await upgrade(running.port, '/apps/chat/ws?room=1');
    expect(exchange.status).toBe(101);
    expect(exchange.head).toContain('X-App: chat');
    expect(exchange.head).toContain('X-Url: /ws?room=1');
    expect(exchange.head).toContain('X-Prefix: /apps/chat');
    expect(await readEcho(exchange.socket, 'ping')).toBe('ping');
    exchange.socket.destroy();
  });

  it('counts an upgraded socket as an open connection of its app until it closes', async () => {
    const figures = new AppFigures();
    running = await startGateway(new FakeApps().add('chat', { upgrade: echoUpgrade('chat') }), {
      traffic: figures,
    });
    const open = () => [...figures.current()].find((c) => c.app === 'chat')?.openConnections;
    const exchange = await upgrade(running.port, '/apps/chat/ws');
    expect(exchange.status).toBe(101);
    expect(open()).toBe(1);
    exchange.socket.destroy();
    await vi.waitFor(() => expect(open()).toBe(0));
    expect(figures.series('chat').points.at(-1)!.openConnections).toBe(1);
  });

  it('routes by exact domain and starts a lazy app first', async () => {
    const gate = deferred();
    const apps = new FakeApps().add('chat', {
      upgrade: echoUpgrade('chat'),
      domains: ['chat.example.com'],
      start: () => gate.promise,
    });
    running = await startGateway(apps);
    const pending = upgrade(running.port, '/ws', 'chat.example.com:443');
    gate.resolve();
    const exchange = await pending;
    expect(exchange.status).toBe(101);
    expect(exchange.head).toContain('X-Url: /ws');
    expect(exchange.head).toContain('X-Prefix: -');
    expect(apps.starts('chat')).toBe(1);
    exchange.socket.destroy();
  });

  it.each([
    ['an unknown app', '/apps/nope/ws', 404, 'APP_NOT_FOUND'],
    ['a traversal attempt', '/apps/%2e%2e/_supervisor/ws', 404, 'APP_NOT_FOUND'],
    ['the supervisor', '/_supervisor/ws', 404, 'NOT_FOUND'],
    ['an app without an upgrade handler', '/apps/plain/ws', 404, 'NOT_FOUND'],
    ['a disabled app', '/apps/off/ws', 503, 'APP_DISABLED'],
    ['an app whose upgrade handler throws', '/apps/bad/ws', 500, 'APP_HANDLER_FAILED'],
  ])('refuses %s with an HTTP error and closes the socket', async (_label, path, status, code) => {
    const apps = new FakeApps()
      .add('plain')
      .add('off', { fail: { code: 'APP_DISABLED' } })
      .add('bad', {
        upgrade: () => {
          throw new Error('upgrade boom');
        },
      });
    running = await startGateway(apps);
    const exchange = await upgrade(running.port, path);
    expect(exchange.status).toBe(status);
    expect(exchange.head).toMatch(/\r\nConnection: close\r\n/i);
    expect(JSON.parse(exchange.body)).toMatchObject({ error: { code } });
    await exchange.ended;
  });

  it("gives an upgrade to /_supervisor/ on an app's domain to that app, and on a non-admin host to the main app", async () => {
    const apps = new FakeApps().add('chat', { upgrade: echoUpgrade('chat'), domains: ['chat.example.com'] });
    apps.main = { name: 'main', handler: () => undefined, upgrade: echoUpgrade('main') };
    running = await startGateway(apps, { supervisorHosts: ['admin.example.com'] });
    const onDomain = await upgrade(running.port, '/_supervisor/ws', 'Chat.Example.com:443');
    expect(onDomain.status).toBe(101);
    expect(onDomain.head).toContain('X-App: chat');
    expect(onDomain.head).toContain('X-Url: /_supervisor/ws');
    onDomain.socket.destroy();
    const elsewhere = await upgrade(running.port, '/_supervisor/ws', 'www.example.com');
    expect(elsewhere.status).toBe(101);
    expect(elsewhere.head).toContain('X-App: main');
    elsewhere.socket.destroy();
    const admin = await upgrade(running.port, '/_supervisor/ws', 'admin.example.com');
    expect(admin.status).toBe(404);
    expect(JSON.parse(admin.body)).toMatchObject({ error: { code: 'NOT_FOUND' } });
    await admin.ended;
  });

  it('answers APP_STARTING with Retry-After when the start outlasts the timeout', async () => {
    const apps = new FakeApps().add('chat', {
      upgrade: echoUpgrade('chat'),
      start: () => new Promise(() => {}),
    });
    running = await startGateway(apps, { startTimeoutMs: 100 });
    const exchange = await upgrade(running.port, '/apps/chat/ws');
    expect(exchange.status).toBe(503);
    expect(exchange.head).toMatch(/\r\nRetry-After: 1(\r\n|$)/);
    expect(JSON.parse(exchange.body)).toMatchObject({ error: { code: 'APP_STARTING', app: 'chat' } });
    await exchange.ended;
  });

  it('survives a client that resets while the app is starting', async () => {
    const gate = deferred();
    const apps = new FakeApps().add('chat', { upgrade: echoUpgrade('chat'), start: () => gate.promise });
    running = await startGateway(apps);
    const socket = net.connect(running.port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(
      'GET /apps/chat/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
    );
    await new Promise((resolve) => setImmediate(resolve));
    socket.resetAndDestroy();
    gate.resolve();
    const exchange = await upgrade(running.port, '/apps/chat/ws');
    expect(exchange.status).toBe(101);
    exchange.socket.destroy();
  });
});
