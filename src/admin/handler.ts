import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SupervisorHandler } from '../gateway/types.js';
import { sendError } from '../http/errors.js';
import { handleApi } from './api.js';
import { createBearerCheck, type StoredTokens, sendUnauthorized } from './auth.js';
import { LogStreams } from './logs-api.js';
import type { Metrics } from './metrics.js';
import { sendCode, sendJson, sendMethodNotAllowed } from './respond.js';
import { type EventStreamOptions, EventStreams } from './sse.js';
import { defaultUiDir, StaticFiles } from './static.js';
import type { TokenStore } from './token.js';
import type { AdminBackend } from './types.js';
import { VendorFiles } from './vendor.js';

/** The prefix of every supervisor route. */
export const SUPERVISOR_PREFIX = '/_supervisor';

/** The little of a logger the handler uses (pino's Logger fits). */
export interface HandlerLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface SupervisorHandlerOptions {
  readonly backend: AdminBackend;
  /** A token accepted besides the stored ones: `APPVISOR_ADMIN_TOKEN` (see `resolveAdminToken`). */
  readonly token?: string;
  /**
   * The state store's admin tokens, accepted on every replica (see `createBearerCheck`), and
   * managed through `/_supervisor/api/tokens`.
   */
  readonly tokens?: StoredTokens & TokenStore;
  readonly metrics: Pick<Metrics, 'render'>;
  readonly log: HandlerLog;
  /** Folder of the admin UI's static files. @default `src/admin/ui` (see `defaultUiDir`) */
  readonly uiDir?: string;
  /** Settings of the SSE stream. */
  readonly events?: EventStreamOptions;
}

/** The handler, plus what a graceful shutdown needs. */
export interface SupervisorRoutes extends SupervisorHandler {
  /** Ends the open SSE streams, so the server can close, and stops reading the stored tokens. */
  close(): void;
}

const READ_METHODS = ['GET', 'HEAD'] as const;

/**
 * Routes `/_supervisor…` (SPEC §6): health, readiness and metrics without auth; the admin UI's
 * static files without auth (the page holds no data, it asks the API); `/_supervisor/api/…`
 * behind the Bearer token, checked before anything else so an unauthenticated caller learns
 * nothing, not even whether a route or an app exists.
 *
 * `path` is the request path starting with `/_supervisor`, raw or already decoded; a query
 * string, if still attached, is ignored.
 */
export function createSupervisorHandler(options: SupervisorHandlerOptions): SupervisorRoutes {
  const { backend, metrics, log } = options;
  const authorized = createBearerCheck({
    ...(options.token !== undefined ? { token: options.token } : {}),
    ...(options.tokens ? { store: options.tokens } : {}),
    log,
  });
  const streams = new EventStreams(backend, options.events);
  const logStreams = new LogStreams(options.events);
  const files = new StaticFiles(options.uiDir ?? defaultUiDir());
  const vendor = new VendorFiles();

  const route = async (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> => {
    const pathname = path.split(/[?#]/, 1)[0]!;
    if (pathname === SUPERVISOR_PREFIX) {
      res.writeHead(308, { location: `${SUPERVISOR_PREFIX}/`, 'content-length': 0 });
      res.end();
      return;
    }
    if (!pathname.startsWith(`${SUPERVISOR_PREFIX}/`)) {
      sendCode(res, 'NOT_FOUND');
      return;
    }
    const segments = pathname
      .slice(SUPERVISOR_PREFIX.length + 1)
      .split('/')
      .map(decodeSegment);

    if (segments[0] === 'api') {
      const caller = await authorized(req);
      if (caller === undefined) {
        sendUnauthorized(res);
        return;
      }
      if (segments.includes(undefined)) sendCode(res, 'NOT_FOUND');
      else
        await handleApi(req, res, segments.slice(1) as string[], {
          backend,
          streams,
          logStreams,
          caller,
          log,
          ...(options.tokens ? { tokens: options.tokens, tokensChanged: () => authorized.refresh() } : {}),
        });
      return;
    }

    if (segments.includes(undefined)) {
      sendCode(res, 'NOT_FOUND');
      return;
    }
    const only = segments.length === 1 ? segments[0] : undefined;
    const fixed = only === 'healthz' || only === 'readyz' || only === 'metrics' || only === '';
    if (fixed && !isRead(req)) {
      sendMethodNotAllowed(res, READ_METHODS);
      return;
    }
    switch (only) {
      case 'healthz':
        sendJson(res, 200, { status: 'ok' });
        return;
      case 'readyz':
        {
          const waiting = backend.ready() ? backend.waitingFor?.() : undefined;
          if (!backend.ready()) sendJson(res, 503, { status: 'starting' });
          else if (waiting !== undefined) sendJson(res, 503, { status: 'waiting', detail: waiting });
          else sendJson(res, 200, { status: 'ready' });
        }
        return;
      case 'metrics': {
        const { contentType, body } = await metrics.render();
        res.writeHead(200, {
          'content-type': contentType,
          'cache-control': 'no-store',
          'content-length': Buffer.byteLength(body),
        });
        res.end(body);
        return;
      }
      case '':
        await files.serve(req, res, ['index.html']);
        return;
      default:
        if (segments[0] === 'vendor') {
          const rest = (segments as string[]).slice(1);
          if (!(await vendor.has(rest))) sendCode(res, 'NOT_FOUND');
          else if (!isRead(req)) sendMethodNotAllowed(res, READ_METHODS);
          else await vendor.serve(req, res, rest);
        } else if (!(await files.has(segments as string[]))) sendCode(res, 'NOT_FOUND');
        else if (!isRead(req)) sendMethodNotAllowed(res, READ_METHODS);
        else await files.serve(req, res, segments as string[]);
    }
  };

  const handler = ((req, res, path) => {
    route(req, res, path).catch((err: unknown) => {
      log.error({ err, path: path.split(/[?#]/, 1)[0] }, 'supervisor route failed');
      // A registry error as itself, anything else as 500 INTERNAL without its details (logged).
      if (!res.headersSent) sendError(res, err);
      else res.destroy();
    });
  }) as SupervisorRoutes;
  handler.close = () => {
    authorized.close();
    streams.closeAll();
    logStreams.closeAll();
  };
  return handler;
}

function isRead(req: IncomingMessage): boolean {
  return (READ_METHODS as readonly string[]).includes(req.method ?? 'GET');
}

/** Percent-decodes one path segment; undefined when it is malformed. */
function decodeSegment(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}
