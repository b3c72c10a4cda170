import type { IncomingMessage, ServerResponse } from 'node:http';
import { AppvisorError } from '../errors.js';
import { sendError } from '../http/errors.js';
import { sendCode, sendJson, sendMethodNotAllowed } from './respond.js';
import type { EventStreams } from './sse.js';
import type { AdminBackend } from './types.js';

/** What the admin API routes need. */
export interface ApiContext {
  readonly backend: AdminBackend;
  readonly streams: EventStreams;
}

interface Route {
  readonly method: 'GET' | 'POST';
  readonly run: () => Promise<void>;
}

/**
 * Serves `/_supervisor/api/<segments…>` for a request already authenticated. Segments are
 * decoded; an app name is whatever one segment holds and is only ever looked up, never used
 * to build a path.
 */
export async function handleApi(
  req: IncomingMessage,
  res: ServerResponse,
  segments: readonly string[],
  ctx: ApiContext,
): Promise<void> {
  const route = match(segments, req, res, ctx);
  if (route === undefined) {
    sendCode(res, 'NOT_FOUND');
    return;
  }
  if (req.method !== route.method) {
    sendMethodNotAllowed(res, [route.method]);
    return;
  }
  await route.run();
}

function match(
  segments: readonly string[],
  req: IncomingMessage,
  res: ServerResponse,
  { backend, streams }: ApiContext,
): Route | undefined {
  const [first, name, action, ...rest] = segments;
  if (rest.length > 0) return undefined;
  if (first === 'plan' && name === undefined) {
    return { method: 'GET', run: async () => sendJson(res, 200, await backend.plan()) };
  }
  if (first === 'replicas' && name === undefined) {
    return { method: 'GET', run: async () => sendJson(res, 200, await backend.listReplicas()) };
  }
  if (first === 'cluster' && name === undefined) {
    return { method: 'GET', run: async () => sendJson(res, 200, await backend.cluster()) };
  }
  if (first === 'events' && name === undefined) {
    return { method: 'GET', run: () => streams.serve(req, res) };
  }
  if (first !== 'apps') return undefined;
  if (name === undefined) {
    return { method: 'GET', run: async () => sendJson(res, 200, await backend.listApps()) };
  }
  if (name === '') return undefined;
  if (action === undefined) {
    return {
      method: 'GET',
      run: async () => {
        const app = await backend.getApp(name);
        if (app === undefined) sendCode(res, 'APP_NOT_FOUND', { app: name });
        else sendJson(res, 200, app);
      },
    };
  }
  if (action === 'history') {
    return {
      method: 'GET',
      run: async () => {
        if ((await backend.getApp(name)) === undefined) sendCode(res, 'APP_NOT_FOUND', { app: name });
        else sendJson(res, 200, await backend.history(name));
      },
    };
  }
  if (action === 'start' || action === 'stop') {
    return {
      method: 'POST',
      run: async () => {
        if ((await backend.getApp(name)) === undefined) {
          sendCode(res, 'APP_NOT_FOUND', { app: name });
          return;
        }
        try {
          const by = actorOf(req);
          const app = action === 'start' ? await backend.start(name, by) : await backend.stop(name, by);
          sendJson(res, 202, app);
        } catch (err) {
          // The app may vanish between the lookup and the call; registry errors carry their status.
          if (err instanceof AppvisorError && err.status !== undefined) sendError(res, err);
          else throw err;
        }
      },
    };
  }
  return undefined;
}

/** The header a client names itself with (the CLI: `appvisor-cli user@host`; the UI: `admin-ui`). */
export const CLIENT_HEADER = 'x-appvisor-client';

/**
 * Who asked, for the record, the log and the APP_STOPPED answer: the token (one admin token
 * today) and the client it came through. The header is the client's word, shown, never trusted.
 */
export function actorOf(req: IncomingMessage): string {
  const raw = req.headers[CLIENT_HEADER];
  const client = (Array.isArray(raw) ? raw[0] : raw)
    ?.replace(/[^\x20-\x7e]/g, '')
    .trim()
    .slice(0, 80);
  return client ? `admin token via ${client}` : 'admin token via the API';
}
