import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { AppvisorError } from '../../src/errors.js';
import { type SendErrorOptions, sendError, toHttpError, writeSocketError } from '../../src/http/errors.js';

let server: http.Server | undefined;

afterEach(async () => {
  const s = server;
  server = undefined;
  if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
});

/** Serves one handler on port 0; resolves with its port. */
async function serve(
  handler: (req: http.IncomingMessage, res: http.ServerResponse) => void,
  upgrade?: (socket: Duplex) => void,
): Promise<number> {
  server = http.createServer(handler);
  if (upgrade) server.on('upgrade', (_req, socket) => upgrade(socket));
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

interface Answer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

function get(port: number): Promise<Answer> {
  return new Promise((resolve, reject) => {
    http
      .get({ port, host: '127.0.0.1', path: '/', agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      })
      .on('error', reject);
  });
}

/** Sends an upgrade request and reads the raw answer until the server closes the socket. */
function rawUpgrade(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let raw = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      raw += chunk;
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(raw));
    socket.write('GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
  });
}

async function answerFor(err: unknown, opts?: SendErrorOptions): Promise<Answer> {
  const port = await serve((_req, res) => sendError(res, err, opts));
  return get(port);
}

describe('sendError', () => {
  it.each([
    [
      'a registry error with its status, naming its app',
      new AppvisorError('APP_DISABLED', { app: 'crm' }),
      503,
      { code: 'APP_DISABLED', message: 'app crm is disabled', app: 'crm' },
    ],
    [
      'an error that names no app, without an app field',
      new AppvisorError('UNAUTHORIZED'),
      401,
      { code: 'UNAUTHORIZED', message: 'missing or invalid admin token' },
    ],
    [
      'a registry error without an HTTP status, as 500 with its code',
      new AppvisorError('STATE_STORE_FAILED', { target: 'main', detail: 'gone' }),
      500,
      { code: 'STATE_STORE_FAILED', message: 'state store main: gone' },
    ],
    [
      'a foreign error, as 500 INTERNAL without its details',
      Object.assign(new Error('password=hunter2 leaked'), { code: '42P01' }),
      500,
      { code: 'INTERNAL', message: 'internal error' },
    ],
  ])('answers %s', async (_label, err, status, error) => {
    const answer = await answerFor(err);
    expect(answer.status).toBe(status);
    expect(answer.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(answer.headers['cache-control']).toBe('no-store');
    expect(answer.headers['retry-after']).toBeUndefined();
    expect(Number(answer.headers['content-length'])).toBe(Buffer.byteLength(answer.body));
    expect(JSON.parse(answer.body)).toEqual({ error });
  });

  it('names the app given in the options over the error params', async () => {
    const answer = await answerFor(new AppvisorError('APP_HANDLER_FAILED', { app: 'crm' }), { app: 'main' });
    expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'APP_HANDLER_FAILED', app: 'main' } });
  });

  it.each([
    ['APP_STARTING', new AppvisorError('APP_STARTING', { app: 'crm' })],
    ['APP_START_TIMEOUT', new AppvisorError('APP_START_TIMEOUT', { app: 'crm', ms: 30_000 })],
  ])('sends Retry-After with %s (1 s unless told)', async (_code, err) => {
    expect((await answerFor(err)).headers['retry-after']).toBe('1');
    expect((await answerFor(err, { retryAfterSeconds: 7 })).headers['retry-after']).toBe('7');
  });

  it("replaces a failed handler's headers and adds the extra ones", async () => {
    const port = await serve((_req, res) => {
      res.setHeader('x-leak', 'yes');
      res.setHeader('content-type', 'text/html');
      sendError(res, new AppvisorError('METHOD_NOT_ALLOWED', { allow: 'GET' }), {
        headers: { allow: 'GET' },
      });
    });
    const answer = await get(port);
    expect(answer.status).toBe(405);
    expect(answer.headers['x-leak']).toBeUndefined();
    expect(answer.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(answer.headers.allow).toBe('GET');
    expect(JSON.parse(answer.body)).toEqual({
      error: { code: 'METHOD_NOT_ALLOWED', message: 'allowed methods: GET' },
    });
  });
});

describe('toHttpError', () => {
  it('keeps a registry error that has an HTTP status', () => {
    const err = new AppvisorError('APP_NEEDS_UPGRADE', { app: 'crm', dataVersion: 1, codeVersion: 2 });
    expect(toHttpError(err, 'APP_ERROR', { app: 'crm' })).toBe(err);
  });

  it.each([
    ['a driver error', Object.assign(new Error('relation "notes" does not exist'), { code: '42P01' })],
    ['a registry error that is no HTTP answer', new AppvisorError('DB_UNREACHABLE', { detail: 'x' })],
  ])('turns %s into the fallback, keeping its message', (_label, err) => {
    const http = toHttpError(err, 'APP_ERROR', { app: 'crm' });
    expect(http.code).toBe('APP_ERROR');
    expect(http.status).toBe(503);
    expect(http.message).toBe(`app crm failed: ${err.message}`);
    expect(http.cause).toBe(err);
  });
});

describe('writeSocketError', () => {
  it('writes the same JSON answer on an upgrade socket, with Retry-After, and closes it', async () => {
    const port = await serve(
      () => undefined,
      (socket) =>
        writeSocketError(socket, new AppvisorError('APP_STARTING', { app: 'chat' }), {
          retryAfterSeconds: 3,
        }),
    );
    const raw = await rawUpgrade(port);
    const [head, body] = raw.split('\r\n\r\n') as [string, string];
    expect(head).toMatch(/^HTTP\/1\.1 503 Service Unavailable\r\n/);
    expect(head).toMatch(/\r\nConnection: close(\r\n|$)/);
    expect(head).toMatch(/\r\nRetry-After: 3(\r\n|$)/);
    expect(head).toMatch(/\r\nContent-Type: application\/json; charset=utf-8(\r\n|$)/);
    expect(head).toContain(`\r\nContent-Length: ${Buffer.byteLength(body)}`);
    expect(JSON.parse(body)).toEqual({
      error: { code: 'APP_STARTING', message: 'app chat is starting; retry shortly', app: 'chat' },
    });
  });

  it('answers a foreign error as 500 INTERNAL', async () => {
    const port = await serve(
      () => undefined,
      (socket) => writeSocketError(socket, new Error('secret detail')),
    );
    const raw = await rawUpgrade(port);
    expect(raw).toMatch(/^HTTP\/1\.1 500 /);
    expect(raw).not.toContain('secret detail');
    expect(raw).not.toMatch(/Retry-After/i);
    expect(JSON.parse(raw.split('\r\n\r\n')[1]!)).toEqual({
      error: { code: 'INTERNAL', message: 'internal error' },
    });
  });
});
