/**
 * The built-in sample app (SPEC §7): users with hashed passwords, JWT sign-in and per-user notes,
 * on SQLite, PostgreSQL (database or schema) and MySQL/MariaDB. No default credentials: every
 * user signs up.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { messageOf } from '../errors.js';
import { isUnreachable } from '../providers/errors.js';
import type { AppContext, AppInstance, Application } from '../runtime/contract.js';
import { HttpError, pathOf, sendError } from './http.js';
import { migrations } from './migrations.js';
import { createRouter } from './routes.js';
import { Store } from './store.js';

const VERSION = 2;
/** What a client is told to wait when the database is away (about one connection timeout). */
const RETRY_AFTER_SECONDS = 5;

function create(ctx: AppContext): AppInstance {
  const router = createRouter({ ctx, version: VERSION, store: new Store(ctx.database.client) });

  const dispatch = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    try {
      const match = router.match(req.method, pathOf(req.url));
      if (match.kind === 'not-found') throw new HttpError(404, 'NOT_FOUND', 'no such route');
      if (match.kind === 'method-not-allowed') {
        throw new HttpError(405, 'METHOD_NOT_ALLOWED', `use ${match.allow.join(', ')}`, {
          Allow: match.allow.join(', '),
        });
      }
      await match.handler(req, res, match.params);
    } catch (err) {
      if (res.headersSent) {
        ctx.log.error({ err }, 'request failed after the response started');
        res.destroy();
        return;
      }
      if (err instanceof HttpError) {
        sendError(res, err, ctx.name);
        return;
      }
      if (isUnreachable(err, ctx.database.dialect)) {
        // An outage, not a bug: say so, and when to try again.
        ctx.log.warn({ err: messageOf(err), method: req.method, url: req.url }, 'database unreachable');
        const message = `the ${ctx.database.dialect} database of app ${ctx.name} cannot be reached; retry shortly`;
        sendError(
          res,
          new HttpError(503, 'DB_UNREACHABLE', message, { 'Retry-After': String(RETRY_AFTER_SECONDS) }),
          ctx.name,
        );
        return;
      }
      ctx.log.error({ err, method: req.method, url: req.url }, 'request failed');
      sendError(res, new HttpError(500, 'INTERNAL_ERROR', 'internal error'), ctx.name);
    }
  };

  return {
    handler: (req, res) => {
      void dispatch(req, res);
    },
  };
}

const sampleApp: Application = {
  name: 'appvisor-sample',
  version: VERSION,
  migrations,
  create,
};

export default sampleApp;
