/**
 * `POST /_supervisor/api/bulk/start` and `/bulk/stop` with `{"apps": ["blog", …]}`: an operator's
 * start or stop of many apps in one request (the admin UI's "Stop all shown…"). Each app is
 * what `POST apps/<name>/<action>` does for one, intent on its record and its reconcile queued,
 * so the reconcile loop still takes every decision; one request saves the browser thousands of
 * round trips (it holds at most six connections to a host). An app that is refused does not
 * stop the others: the answer lists who was refused and why.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import PQueue from 'p-queue';
import { AppvisorError, messageOf } from '../errors.js';
import { sendError } from '../http/errors.js';
import { readJsonBody } from './body.js';
import { sendJson } from './respond.js';
import type { AdminBackend } from './types.js';

/** The most apps one request names: a page of the UI's batches, well inside the body limit. */
export const MAX_BULK_APPS = 500;
/** A body naming MAX_BULK_APPS names of the longest kind (40 characters) fits. */
const BULK_BODY_LIMIT = 64 * 1024;
/** Apps recorded at once: each is a state-store write; more at once only queues at the pool. */
const CONCURRENCY = 8;

/** The answer: the apps whose intent was recorded, and the refused ones with the API's error. */
export interface BulkAnswer {
  readonly action: 'start' | 'stop';
  readonly accepted: string[];
  readonly refused: {
    readonly app: string;
    readonly error: { readonly code: string; readonly message: string };
  }[];
}

export async function answerBulk(
  req: IncomingMessage,
  res: ServerResponse,
  action: 'start' | 'stop',
  backend: Pick<AdminBackend, 'getApp' | 'start' | 'stop'>,
  by: string,
  log: { error(obj: object, msg: string): void } | undefined,
): Promise<void> {
  let apps: string[];
  try {
    apps = bulkApps(await readJsonBody(req, undefined, BULK_BODY_LIMIT));
  } catch (err) {
    sendError(res, err);
    return;
  }
  type Refusal = BulkAnswer['refused'][number];
  const one = async (name: string): Promise<Refusal | undefined> => {
    try {
      if ((await backend.getApp(name)) === undefined) throw new AppvisorError('APP_NOT_FOUND', { app: name });
      await (action === 'start' ? backend.start(name, by) : backend.stop(name, by));
      return undefined;
    } catch (err) {
      // A registry error says what to fix; anything else is logged and answered as INTERNAL.
      if (err instanceof AppvisorError && err.status !== undefined) {
        return { app: name, error: { code: err.code, message: err.message } };
      }
      log?.error({ err, app: name, action }, 'bulk action failed for an app');
      return { app: name, error: { code: 'INTERNAL', message: messageOf(err) } };
    }
  };
  // In the order asked (addAll answers so), whatever order the runs finished in.
  const outcomes = await new PQueue({ concurrency: CONCURRENCY }).addAll(apps.map((name) => () => one(name)));
  const answer: BulkAnswer = {
    action,
    accepted: apps.filter((_, i) => outcomes[i] === undefined),
    refused: outcomes.filter((o): o is Refusal => o !== undefined),
  };
  sendJson(res, 200, answer);
}

/** `{"apps": [...]}`: 1 to MAX_BULK_APPS distinct names, else 400 saying what to send. */
function bulkApps(body: unknown): string[] {
  const invalid = (detail: string) => new AppvisorError('REQUEST_INVALID', { detail });
  const apps = (body as { apps?: unknown } | undefined)?.apps;
  if (!Array.isArray(apps) || apps.length === 0 || !apps.every((a) => typeof a === 'string' && a !== '')) {
    throw invalid('send {"apps": ["blog", "shop"]}: a non-empty list of app names');
  }
  const names = [...new Set(apps as string[])];
  if (names.length > MAX_BULK_APPS) {
    throw invalid(`at most ${MAX_BULK_APPS} apps per request, got ${names.length}: send them in batches`);
  }
  return names;
}
