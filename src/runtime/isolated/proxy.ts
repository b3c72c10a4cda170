/**
 * The gateway's side of an isolated app: a ReadyApp whose handler passes each request over the
 * app's Unix socket (keep-alive agent, bodies streamed both ways with backpressure, client aborts
 * propagated) and whose upgrade pipes the raw socket through. The app sees the url, method and
 * headers the gateway rewrote (prefix stripped, X-Forwarded-Prefix), as a shared app does — less
 * the hop-by-hop headers, which belong to each connection. A request the app dies on is answered
 * 503 with the app's code and Retry-After; no proxy error reaches the supervisor.
 */
import { Agent, type IncomingMessage, request, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { type Duplex, pipeline } from 'node:stream';
import { AppvisorError } from '../../errors.js';
import type { ReadyApp } from '../../gateway/types.js';
import { sendError, writeSocketError } from '../../http/errors.js';

/** What the proxy needs of the instance behind it. */
export interface ProxyTarget {
  readonly name: string;
  readonly socketPath: string;
  /** A request began / ended (stop drains them). */
  opened(): void;
  closed(): void;
  /** The instance's failure if it ends now or very soon, else undefined: what a broken request is answered. */
  verdict(): Promise<AppvisorError | undefined>;
}

/** Hop-by-hop headers (RFC 9110 §7.6.1) and `expect` (the gateway answered it): never passed on. */
const HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'expect',
]);
/** `transfer-encoding` does go upstream: it tells node:http how the body it is given is framed. */
const HOP_REQUEST = new Set([...HOP].filter((h) => h !== 'transfer-encoding'));

function withoutHop(raw: readonly string[], hop: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    // Most headers are longer than any hop-by-hop one: skip the lower-casing for them.
    if (name.length <= 17 && hop.has(name.toLowerCase())) continue;
    out.push(name, raw[i + 1]!);
  }
  return out;
}

const RETRY_AFTER = { retryAfterSeconds: 1 } as const;

export class AppProxy implements ReadyApp {
  readonly name: string;
  readonly #target: ProxyTarget;
  readonly #agent = new Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 256, scheduling: 'lifo' });

  constructor(target: ProxyTarget) {
    this.#target = target;
    this.name = target.name;
  }

  /** Closes the pooled connections (the instance is gone or going). */
  close(): void {
    this.#agent.destroy();
  }

  readonly handler = (req: IncomingMessage, res: ServerResponse): void => {
    const target = this.#target;
    target.opened();
    const upstream = request({
      agent: this.#agent,
      socketPath: target.socketPath,
      method: req.method,
      path: req.url,
      headers: withoutHop(req.rawHeaders, HOP_REQUEST),
    });
    upstream.on('response', (answer: IncomingMessage) => {
      if (res.destroyed) {
        answer.destroy();
        return;
      }
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, withoutHop(answer.rawHeaders, HOP));
      // pipe, not pipeline: cheaper per request. A client gone early is handled by 'close' below
      // (the upstream request is destroyed); an app gone mid-body cuts the client's response.
      answer.on('error', () => res.destroy());
      answer.pipe(res);
    });
    upstream.on('error', () => this.#failed(res));
    res.once('close', () => {
      target.closed();
      // The client went away first: the app's request is aborted too.
      if (!res.writableFinished) upstream.destroy();
    });
    const h = req.headers;
    // The request body streams up as it comes (with backpressure); most requests have none.
    if (h['content-length'] === undefined && h['transfer-encoding'] === undefined) upstream.end();
    else pipeline(req, upstream, ignore);
  };

  #failed(res: ServerResponse): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (res.destroyed) return;
    this.#target.verdict().then((failure) => {
      if (res.headersSent || res.destroyed) return;
      sendError(res, failure ?? new AppvisorError('APP_HANDLER_FAILED', { app: this.name }), {
        app: this.name,
        ...RETRY_AFTER,
      });
    }, ignore);
  }

  readonly upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const upstream = connect(this.#target.socketPath);
    upstream.setNoDelay(true);
    let lines = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
    const raw = req.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) lines += `${raw[i]}: ${raw[i + 1]}\r\n`;
    upstream.write(`${lines}\r\n`);
    if (head.length > 0) upstream.write(head);
    upstream.on('error', () => {
      if ((socket as Partial<{ bytesWritten: number }>).bytesWritten !== 0 || socket.destroyed) {
        socket.destroy();
        return;
      }
      this.#target.verdict().then((failure) => {
        if (socket.destroyed) return;
        writeSocketError(socket, failure ?? new AppvisorError('APP_HANDLER_FAILED', { app: this.name }), {
          app: this.name,
          ...RETRY_AFTER,
        });
      }, ignore);
    });
    upstream.on('close', (hadError) => {
      if (hadError && (socket as Partial<{ bytesWritten: number }>).bytesWritten !== 0) socket.destroy();
    });
    socket.on('close', () => upstream.destroy());
    upstream.pipe(socket);
    socket.pipe(upstream);
  };
}

function ignore(): void {}
