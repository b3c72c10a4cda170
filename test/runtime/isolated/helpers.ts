/** What the isolation tests share: the fixture, manifests, raw HTTP, WebSocket and load helpers. */
import crypto from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { readFrame, textFrame } from '../../fixtures/isolation-app.js';
import { manifest } from '../../serve/harness.js';

export const FIXTURE = fileURLToPath(new URL('../../fixtures/isolation-app.ts', import.meta.url));
export const ROOT = path.resolve(path.dirname(FIXTURE), '../..');

/** A manifest with `isolation` (shared: none), `extra` lines after it. */
export function isolated(
  name: string,
  mode: 'shared' | 'worker' | 'process',
  extra = '',
  limits = '',
): string {
  if (mode === 'shared') return manifest(name, extra);
  return manifest(name, `isolation:\n  mode: ${mode}\n${limits}${extra}`);
}

export interface RawAnswer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

/** A request with node:http (own agent, so nothing is pooled across tests), body streamed as given. */
export function raw(
  base: string,
  urlPath: string,
  opts: {
    method?: string;
    headers?: Record<string, string>;
    body?: Buffer | (() => AsyncIterable<Buffer>);
  } = {},
): Promise<RawAnswer> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        path: urlPath,
        method: opts.method ?? 'GET',
        headers: opts.headers,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    const body = opts.body;
    if (body === undefined) req.end();
    else if (Buffer.isBuffer(body)) req.end(body);
    else
      void (async () => {
        for await (const chunk of body())
          if (!req.write(chunk)) await new Promise((r) => req.once('drain', r));
        req.end();
      })();
  });
}

export function json(answer: RawAnswer): Record<string, unknown> & { error?: { code: string } } {
  return JSON.parse(answer.body.toString('utf8')) as Record<string, unknown> & { error?: { code: string } };
}

/** Opens a WebSocket through the gateway; resolves with the 101's headers and a `send` that waits for the echo. */
export function openWebSocket(
  base: string,
  urlPath: string,
  headers: Record<string, string> = {},
): Promise<{ headers: http.IncomingHttpHeaders; send(text: string): Promise<string>; close(): void }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: url.hostname,
      port: url.port,
      path: urlPath,
      agent: false,
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': crypto.randomBytes(16).toString('base64'),
        ...headers,
      },
    });
    req.on('response', (res) => reject(new Error(`no upgrade: ${res.statusCode}`)));
    req.on('error', reject);
    req.on('upgrade', (res, socket: Duplex, head: Buffer) => {
      let buffered = head;
      let waiting: ((text: string) => void) | undefined;
      socket.on('data', (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        const frame = readFrame(buffered);
        if (frame && waiting) {
          buffered = buffered.subarray(frame.length);
          const w = waiting;
          waiting = undefined;
          w(frame.text);
        }
      });
      resolve({
        headers: res.headers,
        send: (text) =>
          new Promise<string>((done) => {
            waiting = done;
            socket.write(textFrame(text, true));
          }),
        close: () => socket.destroy(),
      });
    });
    req.end();
  });
}

/** Latencies of sequential-ish requests to `urlPath` (a few at once) until `stop()`; failures counted. */
export function load(base: string, urlPath: string, concurrency = 4) {
  const latencies: number[] = [];
  const failures: { status: number; code?: string }[] = [];
  let running = true;
  const agent = new http.Agent({ keepAlive: true });
  const url = new URL(base);
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const started = performance.now();
      const req = http.get({ host: url.hostname, port: url.port, path: urlPath, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          latencies.push(performance.now() - started);
          if (res.statusCode !== 200) {
            let code: string | undefined;
            try {
              code = (JSON.parse(Buffer.concat(chunks).toString()) as { error?: { code?: string } }).error
                ?.code;
            } catch {}
            failures.push({ status: res.statusCode ?? 0, ...(code ? { code } : {}) });
          }
          resolve();
        });
      });
      req.on('error', () => {
        failures.push({ status: 0 });
        resolve();
      });
    });
  const workers = Array.from({ length: concurrency }, async () => {
    while (running) await one();
  });
  return {
    latencies,
    failures,
    async stop(): Promise<void> {
      running = false;
      await Promise.all(workers);
      agent.destroy();
    },
  };
}

export function p99(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] ?? 0;
}
