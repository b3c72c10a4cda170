import type { IncomingMessage, ServerResponse } from 'node:http';
import { AppvisorError } from '../errors.js';
import { sendError } from '../http/errors.js';
import { type FigureReplicas, figuresOfAll, summaryOfAll } from './figures-fanout.js';
import { forwarded } from './forward.js';
import { peerRequestsFor } from './peer-requests.js';
import { sendJson } from './respond.js';
import type { AdminBackend, AppFigureSource } from './types.js';

const NO_STORE = { 'cache-control': 'no-store' };

/** The most apps one `GET /figures?apps=…` answers for (a screenful of a list, and then some). */
export const MAX_FIGURE_APPS = 200;

/** An app name as manifests allow it (schema/app.schema.json), `main` included. */
const APP_NAME = /^[a-z][a-z0-9_-]{0,39}$/;

/**
 * `GET /_supervisor/api/apps/<name>/figures` (the app is known to exist): `{app, stepSeconds,
 * points, replicas, unreachable}` over the last hour of every live replica, oldest first, the
 * slot under way last. Another replica asking (a forwarded request) gets this replica's raw
 * slots, to merge with its own.
 */
export async function answerAppFigures(
  req: IncomingMessage,
  res: ServerResponse,
  app: string,
  from: FigureReplicas,
): Promise<void> {
  const body = forwarded(req) ? from.local.raw(app) : await figuresOfAll(app, from);
  sendJson(res, 200, body, NO_STORE);
}

/**
 * `GET /_supervisor/api/figures?apps=a,b,c`: `{stepSeconds, apps: {<name>: {rps, p95Ms,
 * errorRate}}, replicas, unreachable}` of every live replica, for a list's small charts. Names
 * are not looked up (an app without traffic, or none of that name, has zeros): a list asks for
 * the apps it shows. At most MAX_FIGURE_APPS. A forwarded request gets the raw slots.
 */
export async function answerFigures(
  req: IncomingMessage,
  res: ServerResponse,
  from: FigureReplicas,
): Promise<void> {
  let apps: string[];
  try {
    apps = parseApps(req.url ?? '');
  } catch (err) {
    sendError(res, err);
    return;
  }
  const body = forwarded(req) ? from.local.rawSummary(apps) : await summaryOfAll(apps, from);
  sendJson(res, 200, body, NO_STORE);
}

/** Where the figures routes of `req` read: this replica's, and the other live replicas unless it was forwarded. */
export function figureReplicasFor(
  req: IncomingMessage,
  local: AppFigureSource,
  backend: Pick<AdminBackend, 'livePeers' | 'replicaId'>,
): FigureReplicas {
  return { local, self: backend.replicaId ?? 'local', peers: peerRequestsFor(req, backend) };
}

function parseApps(url: string): string[] {
  const raw = new URL(url, 'http://x').searchParams.get('apps');
  const invalid = (detail: string) => new AppvisorError('REQUEST_INVALID', { detail });
  if (raw === null || raw.trim() === '') {
    throw invalid('name the apps: figures?apps=blog,shop (comma-separated app names)');
  }
  const names = [...new Set(raw.split(',').map((name) => name.trim()))].filter((name) => name !== '');
  if (names.length > MAX_FIGURE_APPS) {
    throw invalid(
      `figures answers for at most ${MAX_FIGURE_APPS} apps at once, got ${names.length}: ask in batches of ${MAX_FIGURE_APPS}`,
    );
  }
  const bad = names.find((name) => !APP_NAME.test(name));
  if (bad !== undefined) {
    throw invalid(
      `${JSON.stringify(bad.slice(0, 60))} is not an app name (1-40 lower-case letters, digits, '-' or '_', starting with a letter)`,
    );
  }
  return names;
}
