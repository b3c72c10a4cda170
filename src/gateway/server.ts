import { createServer, type IncomingMessage, type Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { AppvisorError, type ErrorCode } from '../errors.js';
import { sendError, toHttpError, writeSocketError, writeSocketResponse } from '../http/errors.js';
import { Acquirer, MAIN } from './acquire.js';
import { contain, forwardAs } from './forward.js';
import { normaliseHost, type RouteOptions, resolveRoute } from './route.js';
import type { GatewayApps, ReadyApp, SupervisorHandler, TrafficObserver } from './types.js';

/** Server timeouts, in milliseconds. */
export interface GatewayTimeouts {
  /** Time to receive a request's headers (slowloris guard). @default 30000 */
  readonly headersMs?: number;
  /** Time to receive a whole request, body included. @default 120000 */
  readonly requestMs?: number;
  /** How long an idle keep-alive connection stays open. @default 10000 */
  readonly keepAliveMs?: number;
}

/** Options of `createGateway`. */
export interface GatewayOptions {
  readonly apps: GatewayApps;
  readonly supervisor: SupervisorHandler;
  readonly log: Logger;
  /** How long a request waits for its app to start before 503 APP_STARTING. @default 30000 */
  readonly startTimeoutMs?: number;
  /** `Retry-After` sent with APP_STARTING, in seconds. @default 1 */
  readonly retryAfterSeconds?: number;
  readonly timeouts?: GatewayTimeouts;
  /**
   * Host names on which `/_supervisor/…` answers (case-insensitive, any port); on other hosts
   * those paths go to the main app. An app's domain never serves them.
   * @default every host that is not an app's domain
   */
  readonly supervisorHosts?: readonly string[] | undefined;
  /** Told of each request and upgraded socket per app as it opens and ends (live figures). */
  readonly traffic?: TrafficObserver | undefined;
}

/** The HTTP front of appvisor (SPEC §6). */
export interface Gateway {
  readonly server: Server;
  /** Listens and resolves with the bound address (port 0 picks a free port). */
  listen(port: number, host?: string): Promise<AddressInfo>;
  /**
   * Stops accepting, lets in-flight requests finish for up to `graceMs`, then destroys what is
   * left (upgraded sockets included). Safe to call more than once: every call gets the same promise.
   */
  close(opts?: { readonly graceMs?: number }): Promise<void>;
  /** Requests received and not yet answered (or abandoned). */
  readonly inFlight: number;
}

/** Creates the gateway; it serves nothing until `listen`. */
export function createGateway(options: GatewayOptions): Gateway {
  return new HttpGateway(options);
}

const SUPERVISOR_NAME = '_supervisor';

/** What the gateway is told when a response it tracks closes or emits 'error'. */
interface ResponseHooks {
  closed(res: TrackedResponse): void;
  failed(res: TrackedResponse, err: unknown): void;
}

/**
 * The gateway's responses. Per-request state lives in fields of the response itself, and the
 * gateway hears of 'close' and 'error' through `emit` rather than through two listeners added
 * to every response (adding them cost more than routing the request).
 */
class TrackedResponse extends ServerResponse {
  /** Set when the gateway starts tracking the response: the server's one set, shared by its responses. */
  hooks: ResponseHooks | undefined = undefined;
  /** Counted until 'close' (finished or abandoned). */
  tracked = false;
  /** Handed to an app: an 'error' on it answers APP_HANDLER_FAILED. */
  dispatched = false;
  /** The app name counted for metrics and named in logs; undefined for gateway answers. */
  app: string | undefined = undefined;
  started = 0;
  /** The traffic observer's token for this request, until it is handed back. */
  traffic: object | undefined = undefined;

  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'close') {
      if (this.tracked) {
        this.tracked = false;
        this.hooks!.closed(this);
      }
    } else if (event === 'error' && this.dispatched) {
      this.hooks!.failed(this, args[0]);
      // As a listener of its own: the app's listeners, if any, hear of it too; none is no crash.
      if (this.listenerCount('error') === 0) return true;
    }
    return super.emit(event, ...args);
  }
}

function destroyOnError(this: Duplex): void {
  this.destroy();
}

class HttpGateway implements Gateway {
  readonly server: Server;
  readonly #apps: GatewayApps;
  readonly #supervisor: SupervisorHandler;
  readonly #log: Logger;
  readonly #acquirer: Acquirer;
  readonly #retryAfter: number;
  readonly #routing: RouteOptions;
  readonly #traffic: TrafficObserver | undefined;
  readonly #upgrades = new Set<Duplex>();
  #inFlight = 0;
  #closing = false;
  #closed: Promise<void> | undefined;

  constructor(options: GatewayOptions) {
    this.#apps = options.apps;
    this.#supervisor = options.supervisor;
    this.#log = options.log;
    this.#acquirer = new Acquirer(options.apps, options.startTimeoutMs ?? 30_000);
    this.#retryAfter = options.retryAfterSeconds ?? 1;
    this.#traffic = options.traffic;
    const hosts = options.supervisorHosts;
    this.#routing = Object.freeze({
      supervisorHosts: hosts === undefined ? undefined : new Set(hosts.map(normaliseHost)),
    });
    const timeouts = options.timeouts ?? {};
    this.server = createServer(
      {
        requestTimeout: timeouts.requestMs ?? 120_000,
        headersTimeout: timeouts.headersMs ?? 30_000,
        // Typed as the plain class so `server` keeps its public type; every response is a TrackedResponse.
        ServerResponse: TrackedResponse as unknown as typeof ServerResponse,
      },
      this.#onRequest,
    );
    this.server.keepAliveTimeout = timeouts.keepAliveMs ?? 10_000;
    this.server.on('upgrade', this.#onUpgrade);
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  listen(port: number, host?: string): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  close(opts: { readonly graceMs?: number } = {}): Promise<void> {
    this.#closed ??= new Promise<void>((resolve) => {
      this.#closing = true;
      const graceMs = opts.graceMs ?? 10_000;
      const timer = setTimeout(() => {
        if (this.#inFlight > 0 || this.#upgrades.size > 0) {
          this.#log.warn(
            { inFlight: this.#inFlight, upgraded: this.#upgrades.size, graceMs },
            'closing remaining connections',
          );
        }
        this.server.closeAllConnections();
        for (const socket of this.#upgrades) socket.destroy();
      }, graceMs);
      this.server.close(() => {
        clearTimeout(timer);
        resolve();
      });
      this.server.closeIdleConnections();
    });
    return this.#closed;
  }

  readonly #onRequest = (req: IncomingMessage, response: ServerResponse): void => {
    const res = response as TrackedResponse;
    this.#inFlight++;
    if (this.#closing) res.setHeader('connection', 'close');
    let route: ReturnType<typeof resolveRoute>;
    try {
      route = resolveRoute(req.headers.host, req.url ?? '/', this.#apps, this.#routing);
    } catch (err) {
      this.#track(res, undefined);
      this.#failed(SUPERVISOR_NAME, res, err);
      return;
    }
    switch (route.kind) {
      case 'app': {
        this.#track(res, route.name);
        this.#apps.opened?.(route.name);
        forwardAs(req, route.path, route.prefix);
        const ready = this.#apps.ready?.(route.name);
        if (ready !== undefined) this.#dispatch(ready, req, res);
        else this.#acquire(route.name, req, res);
        return;
      }
      case 'main': {
        this.#track(res, MAIN);
        forwardAs(req, route.path, '');
        const ready = this.#apps.readyMain?.();
        if (ready !== undefined) this.#dispatch(ready, req, res);
        else this.#acquire(MAIN, req, res);
        return;
      }
      case 'supervisor':
        this.#track(res, undefined);
        contain(this.#supervisor, req, res, route.path, this.#handlerFailed);
        return;
      case 'redirect':
        this.#track(res, undefined);
        res.writeHead(308, { location: route.location, 'content-length': 0 }).end();
        return;
      case 'not-found':
        this.#track(res, undefined);
        this.#sendCode(res, this.#notFoundCode(), route.name);
        return;
    }
  };

  /** An unknown app before the first reconcile may be one not routed yet: retry (elsewhere). */
  #notFoundCode(): 'APP_NOT_FOUND' | 'APP_STARTING' {
    return this.#apps.routed?.() === false ? 'APP_STARTING' : 'APP_NOT_FOUND';
  }

  /** Counts the request until its response closes (finished or abandoned). */
  #track(res: TrackedResponse, app: string | undefined): void {
    res.hooks = this.#hooks;
    res.tracked = true;
    res.app = app;
    if (app === undefined) {
      res.started = 0;
      return;
    }
    const traffic = this.#traffic;
    res.traffic = traffic === undefined ? undefined : this.#opened(traffic, app);
    res.started = this.#apps.onRequest !== undefined || res.traffic !== undefined ? performance.now() : 0;
  }

  /** The observer's token for `app`; an observer that throws is logged and skipped. */
  #opened(traffic: TrafficObserver, app: string): object | undefined {
    try {
      return traffic.opened(app);
    } catch (err) {
      this.#log.error({ err }, 'traffic observer failed');
      return undefined;
    }
  }

  readonly #hooks: ResponseHooks = {
    closed: (res) => {
      this.#inFlight--;
      const app = res.app;
      // Every sub-app request was counted as opened (the main app's and the gateway's own were not).
      if (app !== undefined && app !== MAIN) this.#apps.closed?.(app);
      const onRequest = this.#apps.onRequest;
      const token = res.traffic;
      if (app !== undefined && (onRequest !== undefined || token !== undefined)) {
        const status = res.writableFinished ? res.statusCode : 499;
        const ms = performance.now() - res.started;
        try {
          onRequest?.call(this.#apps, app, status, ms);
        } catch (err) {
          this.#log.error({ err }, 'onRequest failed');
        }
        if (token !== undefined) {
          res.traffic = undefined;
          try {
            this.#traffic!.answered(token, status, ms);
          } catch (err) {
            this.#log.error({ err }, 'traffic observer failed');
          }
        }
      }
      if (this.#closing) this.server.closeIdleConnections();
    },
    failed: (res, err) => this.#failed(res.app ?? SUPERVISOR_NAME, res, err),
  };

  readonly #handlerFailed = (err: unknown, res: TrackedResponse): void => {
    this.#failed(res.app ?? SUPERVISOR_NAME, res, err);
  };

  #acquire(name: string, req: IncomingMessage, res: TrackedResponse): void {
    this.#acquirer.acquire(name).then(
      (app) => {
        if (!res.destroyed) this.#dispatch(app, req, res);
      },
      (err: unknown) => {
        if (res.destroyed || res.headersSent) return;
        const error = toHttpError(err, 'APP_ERROR', { app: name });
        if (error.code === 'APP_ERROR') this.#log.warn({ app: name, err }, 'app cannot take requests');
        sendError(res, error, { app: name, retryAfterSeconds: this.#retryAfter });
      },
    );
  }

  #dispatch(app: ReadyApp, req: IncomingMessage, res: TrackedResponse): void {
    res.dispatched = true;
    contain(app.handler, req, res, undefined, this.#handlerFailed);
  }

  /** A handler failed: 500 if nothing was sent yet, else cut the connection; never rethrown. */
  #failed(app: string, res: ServerResponse, err: unknown): void {
    this.#log.error({ app, err }, 'app handler failed');
    if (!res.headersSent) {
      if (!res.destroyed) this.#sendCode(res, 'APP_HANDLER_FAILED', app);
    } else if (!res.writableFinished) {
      res.destroy();
    }
  }

  #sendCode(res: ServerResponse, code: ErrorCode, app: string): void {
    sendError(res, new AppvisorError(code, { app }), { app, retryAfterSeconds: this.#retryAfter });
  }

  readonly #onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    // After 'upgrade' node:http no longer listens for socket errors; an unhandled one would crash.
    socket.on('error', destroyOnError);
    this.#upgrades.add(socket);
    socket.once('close', () => this.#upgrades.delete(socket));
    if (this.#closing) {
      writeSocketResponse(socket, 503, []);
      return;
    }
    let route: ReturnType<typeof resolveRoute>;
    try {
      route = resolveRoute(req.headers.host, req.url ?? '/', this.#apps, this.#routing);
    } catch (err) {
      this.#log.error({ err }, 'routing an upgrade failed');
      socket.destroy();
      return;
    }
    switch (route.kind) {
      case 'app':
      case 'main': {
        const name = route.kind === 'app' ? route.name : MAIN;
        if (route.kind === 'app') {
          // Busy until the socket closes, whether the app takes it or it is answered with an error.
          this.#apps.opened?.(name);
          socket.once('close', () => this.#apps.closed?.(name));
        }
        const traffic = this.#traffic;
        const token = traffic === undefined ? undefined : this.#opened(traffic, name);
        if (token !== undefined) {
          socket.once('close', () => {
            try {
              traffic!.released(token);
            } catch (err) {
              this.#log.error({ err }, 'traffic observer failed');
            }
          });
        }
        forwardAs(req, route.path, route.kind === 'app' ? route.prefix : '');
        const ready = name === MAIN ? this.#apps.readyMain?.() : this.#apps.ready?.(name);
        if (ready !== undefined) {
          this.#upgradeTo(ready, req, socket, head);
          return;
        }
        this.#acquirer.acquire(name).then(
          (app) => this.#upgradeTo(app, req, socket, head),
          (err: unknown) =>
            writeSocketError(socket, toHttpError(err, 'APP_ERROR', { app: name }), {
              app: name,
              retryAfterSeconds: this.#retryAfter,
            }),
        );
        return;
      }
      case 'redirect':
        writeSocketResponse(socket, 308, [`Location: ${route.location}`]);
        return;
      case 'not-found':
        writeSocketError(socket, new AppvisorError(this.#notFoundCode(), { app: route.name }), {
          app: route.name,
        });
        return;
      case 'supervisor':
        writeSocketError(socket, new AppvisorError('NOT_FOUND'), { app: SUPERVISOR_NAME });
        return;
    }
  };

  #upgradeTo(app: ReadyApp, req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (socket.destroyed) return;
    if (app.upgrade === undefined) {
      writeSocketError(socket, new AppvisorError('NOT_FOUND'), { app: app.name });
      return;
    }
    contain(app.upgrade, req, socket, head, (err: unknown) => {
      this.#log.error({ app: app.name, err }, 'app upgrade handler failed');
      if ((socket as Partial<Socket>).bytesWritten === 0) {
        writeSocketError(socket, new AppvisorError('APP_HANDLER_FAILED', { app: app.name }), {
          app: app.name,
        });
      } else {
        socket.destroy();
      }
    });
  }
}
