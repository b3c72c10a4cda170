import http, { type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { AppvisorError, type ErrorCode, type ErrorParams } from '../../src/errors.js';
import { createGateway, type Gateway, type GatewayOptions } from '../../src/gateway/server.js';
import type { GatewayApps, ReadyApp, SupervisorHandler } from '../../src/gateway/types.js';

/** How a fake app behaves. */
export interface FakeAppSpec {
  readonly handler?: ReadyApp['handler'];
  readonly upgrade?: ReadyApp['upgrade'];
  /** Called on every acquire while the app is not running (deliberately not single-flight). */
  readonly start?: () => Promise<void>;
  /** acquire rejects with this. */
  readonly fail?: { readonly code: ErrorCode; readonly params?: ErrorParams } | Error;
  readonly domains?: readonly string[];
}

interface Entry {
  readonly spec: FakeAppSpec;
  readonly ready: ReadyApp;
  running: boolean;
  starts: number;
}

/** Answers with what the app saw, as JSON. */
export function echoHandler(name: string): ReadyApp['handler'] {
  return (req, res) => {
    const body = JSON.stringify({
      app: name,
      url: req.url,
      prefix: req.headers['x-forwarded-prefix'] ?? null,
      rawPrefixes: rawValues(req, 'x-forwarded-prefix'),
    });
    res.writeHead(200, { 'content-type': 'application/json' }).end(body);
  };
}

function rawValues(req: IncomingMessage, name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i]!.toLowerCase() === name) out.push(req.rawHeaders[i + 1]!);
  }
  return out;
}

/** A GatewayApps made of in-memory apps; `main` is always there and running. */
export class FakeApps implements GatewayApps {
  readonly #apps = new Map<string, Entry>();
  readonly #domains = new Map<string, string>();
  readonly requests: Array<{ app: string; status: number; durationMs: number }> = [];
  main: ReadyApp = { name: 'main', handler: echoHandler('main') };

  add(name: string, spec: FakeAppSpec = {}): this {
    const ready: ReadyApp = { name, handler: spec.handler ?? echoHandler(name), upgrade: spec.upgrade };
    this.#apps.set(name, {
      spec,
      ready,
      running: spec.start === undefined && spec.fail === undefined,
      starts: 0,
    });
    for (const domain of spec.domains ?? []) this.#domains.set(domain, name);
    return this;
  }

  starts(name: string): number {
    return this.#apps.get(name)?.starts ?? 0;
  }

  has(name: string): boolean {
    return this.#apps.has(name);
  }

  appForDomain(host: string): string | undefined {
    return this.#domains.get(host);
  }

  ready(name: string): ReadyApp | undefined {
    const entry = this.#apps.get(name);
    return entry?.running ? entry.ready : undefined;
  }

  readyMain(): ReadyApp {
    return this.main;
  }

  async acquire(name: string): Promise<ReadyApp> {
    const entry = this.#apps.get(name);
    if (entry === undefined) throw new AppvisorError('APP_NOT_FOUND', { app: name });
    const fail = entry.spec.fail;
    if (fail instanceof Error) throw fail;
    if (fail !== undefined) throw new AppvisorError(fail.code, { app: name, ...fail.params });
    if (!entry.running) {
      entry.starts++;
      await entry.spec.start?.();
      entry.running = true;
    }
    return entry.ready;
  }

  async acquireMain(): Promise<ReadyApp> {
    return this.main;
  }

  onRequest(app: string, status: number, durationMs: number): void {
    this.requests.push({ app, status, durationMs });
  }
}

/** A promise with its resolve function, for starts and handlers the test releases. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Log lines written through the gateway's logger, parsed. */
export type LogLines = Array<Record<string, unknown>>;

export interface Running {
  readonly gateway: Gateway;
  readonly apps: FakeApps;
  readonly port: number;
  readonly logs: LogLines;
  readonly supervisorCalls: string[];
}

/** A gateway on 127.0.0.1, port 0, over `apps`. */
export async function startGateway(
  apps: FakeApps,
  options: Partial<Omit<GatewayOptions, 'apps' | 'log'>> = {},
): Promise<Running> {
  const logs: LogLines = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line !== '') logs.push(JSON.parse(line));
      done();
    },
  });
  const supervisorCalls: string[] = [];
  const supervisor: SupervisorHandler = (_req, res, path) => {
    supervisorCalls.push(path);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ supervisor: path }));
  };
  const gateway = createGateway({ supervisor, ...options, apps, log: pino({ level: 'warn' }, sink) });
  const address: AddressInfo = await gateway.listen(0, '127.0.0.1');
  return { gateway, apps, port: address.port, logs, supervisorCalls };
}

export interface Answer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
  json<T = Record<string, unknown>>(): T;
}

/** One request with the path sent verbatim (no normalisation of dot segments). */
export function request(
  port: number,
  path: string,
  opts: { headers?: OutgoingHttpHeaders; agent?: http.Agent; method?: string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: opts.method ?? 'GET',
        headers: opts.headers,
        agent: opts.agent,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString();
          resolve({ status: res.statusCode!, headers: res.headers, body, json: () => JSON.parse(body) });
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** Writes a handler that answers once `release` resolves. */
export function slowHandler(release: Promise<void>, onArrive?: () => void): ReadyApp['handler'] {
  return (_req: IncomingMessage, res: ServerResponse) => {
    onArrive?.();
    void release.then(() => res.writeHead(200, { 'content-type': 'text/plain' }).end('slow done'));
  };
}
