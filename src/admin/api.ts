import type { IncomingMessage, ServerResponse } from 'node:http';
import { AppvisorError } from '../errors.js';
import { sendError } from '../http/errors.js';
import { parseGrace } from '../secrets/rotate.js';
import type { TokenScope } from '../state/types.js';
import type { AdminCaller } from './auth.js';
import { asRequestError, readJsonBody } from './body.js';
import { answerBulk } from './bulk-api.js';
import { answerAppFigures, answerFigures, figureReplicasFor } from './figures-api.js';
import { forwarded, forwardToLeader } from './forward.js';
import type { LogStreams } from './logs-api.js';
import { logFanoutFor } from './logs-fanout.js';
import { answerBackup, answerClone, answerRestore } from './operations-api.js';
import { sendCode, sendJson, sendMethodNotAllowed } from './respond.js';
import type { EventStreams } from './sse.js';
import {
  checkTokenName,
  checkTokenScope,
  createNamedToken,
  listNamedTokens,
  revokeNamedToken,
  type TokenStore,
} from './token.js';
import type { AdminBackend } from './types.js';

/** What the admin API routes need. */
export interface ApiContext {
  readonly backend: AdminBackend;
  readonly streams: EventStreams;
  /** Open `logs?follow=1` streams. */
  readonly logStreams: LogStreams;
  /** Whose token the request carries (already checked). */
  readonly caller: AdminCaller;
  /** The state store's named tokens, for `/tokens` (absent: those routes are not found). */
  readonly tokens?: TokenStore;
  /** Called after a token was made or revoked here, before the answer (this replica's check reads them again). */
  readonly tokensChanged?: () => Promise<void>;
  /** Where token changes are noted (who made or revoked which; never a token). */
  readonly log?: { info(obj: object, msg: string): void; error(obj: object, msg: string): void };
}

interface Route {
  readonly method: 'GET' | 'POST' | 'DELETE';
  /** Every method the path takes, for a 405's Allow (default: `method`). */
  readonly allow?: readonly string[];
  /** The least scope that may call it (SPEC §8.7): `read` sees, `operate` acts, `admin` everything. */
  readonly needs: TokenScope;
  /** What it does, for the FORBIDDEN message (`stop an app`). */
  readonly does: string;
  /** The leader's work: another replica passes the request on to the leader (see forward.ts). */
  readonly leader?: true;
  readonly run: () => Promise<void>;
}

/** Scopes from least to most: each allows what the ones before it do. */
const SCOPE_RANK: Readonly<Record<TokenScope, number>> = { read: 0, operate: 1, admin: 2 };

/** Whether `scope` allows what `needs` asks for. */
export function scopeAllows(scope: TokenScope, needs: TokenScope): boolean {
  return SCOPE_RANK[scope] >= SCOPE_RANK[needs];
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
    sendMethodNotAllowed(res, route.allow ?? [route.method]);
    return;
  }
  const { caller } = ctx;
  if (!scopeAllows(caller.scope, route.needs)) {
    sendCode(res, 'FORBIDDEN', {
      token: caller.name,
      scope: caller.scope,
      action: route.does,
      needs: route.needs,
    });
    return;
  }
  if (route.leader && !forwarded(req)) {
    const leader = await ctx.backend.leaderElsewhere?.();
    if (leader) {
      await forwardToLeader(req, res, leader);
      return;
    }
  }
  await route.run();
}

function match(
  segments: readonly string[],
  req: IncomingMessage,
  res: ServerResponse,
  ctx: ApiContext,
): Route | undefined {
  const { backend, streams, caller } = ctx;
  const [first, name, action, ...rest] = segments;
  if (rest.length > 0) return undefined;
  if (first === 'whoami' && name === undefined) {
    return {
      method: 'GET',
      needs: 'read',
      does: 'say whose token it is',
      run: async () => sendJson(res, 200, { name: caller.name, scope: caller.scope }),
    };
  }
  if (first === 'tokens') return action === undefined ? tokenRoute(name, req, res, ctx) : undefined;
  if (first === 'plan' && name === undefined) {
    return {
      method: 'GET',
      needs: 'read',
      does: 'read the plan',
      run: async () => sendJson(res, 200, await backend.plan()),
    };
  }
  if (first === 'replicas' && name === undefined) {
    return {
      method: 'GET',
      needs: 'read',
      does: 'list the replicas',
      run: async () => sendJson(res, 200, await backend.listReplicas()),
    };
  }
  if (first === 'cluster' && name === undefined) {
    return {
      method: 'GET',
      needs: 'read',
      does: 'read the cluster',
      run: async () => sendJson(res, 200, await backend.cluster()),
    };
  }
  const figures = backend.figures;
  if (first === 'figures' && name === undefined && figures) {
    return {
      method: 'GET',
      needs: 'read',
      does: "read the apps' figures",
      run: () => answerFigures(req, res, figureReplicasFor(req, figures, backend)),
    };
  }
  if (first === 'events' && name === undefined) {
    return { method: 'GET', needs: 'read', does: 'follow events', run: () => streams.serve(req, res) };
  }
  if (first === 'bulk' && (name === 'start' || name === 'stop') && action === undefined) {
    return {
      method: 'POST',
      needs: 'operate',
      does: `${name} apps`,
      run: () => answerBulk(req, res, name, backend, actorOf(req, caller), ctx.log),
    };
  }
  if (first !== 'apps') return undefined;
  if (name === undefined) {
    return {
      method: 'GET',
      needs: 'read',
      does: 'list apps',
      run: async () => sendJson(res, 200, await backend.listApps()),
    };
  }
  if (name === '') return undefined;
  if (action === undefined) {
    return {
      method: 'GET',
      needs: 'read',
      does: 'read an app',
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
      needs: 'read',
      does: "read an app's history",
      run: async () => {
        if ((await backend.getApp(name)) === undefined) sendCode(res, 'APP_NOT_FOUND', { app: name });
        else sendJson(res, 200, await backend.history(name));
      },
    };
  }
  const logs = backend.logs;
  if (action === 'logs' && logs) {
    return {
      method: 'GET',
      needs: 'read',
      does: "read an app's logs",
      run: async () => {
        if ((await backend.getApp(name)) === undefined) sendCode(res, 'APP_NOT_FOUND', { app: name });
        else await ctx.logStreams.answer(req, res, name, logs, logFanoutFor(req, backend));
      },
    };
  }
  if (action === 'figures' && figures) {
    return {
      method: 'GET',
      needs: 'read',
      does: "read an app's figures",
      run: async () => {
        if ((await backend.getApp(name)) === undefined) sendCode(res, 'APP_NOT_FOUND', { app: name });
        else await answerAppFigures(req, res, name, figureReplicasFor(req, figures, backend));
      },
    };
  }
  const ops = backend.operations;
  if (action === 'backup' && ops) {
    return {
      method: 'POST',
      needs: 'operate',
      does: 'back up an app',
      leader: true,
      run: () => answerBackup(ops, name, actorOf(req, caller), res),
    };
  }
  if (action === 'restore' && ops) {
    return {
      method: 'POST',
      needs: 'admin',
      does: 'restore an app',
      leader: true,
      run: () => answerRestore(ops, name, actorOf(req, caller), req, res),
    };
  }
  if (action === 'clone' && ops) {
    return {
      method: 'POST',
      needs: 'admin',
      does: 'clone an app',
      leader: true,
      run: () => answerClone(ops, name, actorOf(req, caller), req, res),
    };
  }
  if (action === 'rotate-secret') {
    return {
      method: 'POST',
      needs: 'admin',
      does: "rotate an app's secret",
      leader: true,
      run: async () => {
        if (!backend.rotateSecret) {
          sendCode(res, 'NOT_FOUND');
          return;
        }
        try {
          const body = await readJsonBody(req);
          const grace = (body as { grace?: unknown } | undefined)?.grace;
          if (grace !== undefined && typeof grace !== 'string') {
            throw new AppvisorError('REQUEST_INVALID', {
              detail: 'grace must be a duration string such as "1h"',
            });
          }
          // `main` has no record nor view, yet has a secret: the store decides what exists.
          sendJson(res, 200, await backend.rotateSecret(name, parseGrace(grace), actorOf(req, caller)));
        } catch (err) {
          // Registry errors with their status and message (APP_NOT_FOUND 404, LOCK_HELD naming the leader).
          sendError(res, asRequestError(err));
        }
      },
    };
  }
  if (action === 'start' || action === 'stop') {
    return {
      method: 'POST',
      needs: 'operate',
      does: `${action} an app`,
      run: async () => {
        if ((await backend.getApp(name)) === undefined) {
          sendCode(res, 'APP_NOT_FOUND', { app: name });
          return;
        }
        try {
          const by = actorOf(req, caller);
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

/**
 * `/tokens` (list, create) and `/tokens/<name>` (revoke): admin only. A new token is answered
 * once (201), the store keeps its hash; revoked tokens stay listed with `revokedAt`.
 */
function tokenRoute(
  name: string | undefined,
  req: IncomingMessage,
  res: ServerResponse,
  { tokens, caller, log, tokensChanged }: ApiContext,
): Route | undefined {
  if (tokens === undefined || name === '') return undefined;
  const by = actorOf(req, caller);
  if (name === undefined) {
    const allow = ['GET', 'POST'];
    if (req.method === 'POST') {
      return {
        method: 'POST',
        allow,
        needs: 'admin',
        does: 'make an admin token',
        run: answering(res, async () => {
          const body = await readTokenBody(req);
          const made = await createNamedToken(tokens, checkTokenName(body.name), checkTokenScope(body.scope));
          log?.info({ token: made.view.name, scope: made.view.scope, by }, 'admin token made');
          await tokensChanged?.();
          sendJson(res, 201, { ...made.view, token: made.token });
        }),
      };
    }
    return {
      method: 'GET',
      allow,
      needs: 'admin',
      does: 'list the admin tokens',
      run: async () => sendJson(res, 200, await listNamedTokens(tokens)),
    };
  }
  return {
    method: 'DELETE',
    needs: 'admin',
    does: 'revoke an admin token',
    run: answering(res, async () => {
      const { view, already } = await revokeNamedToken(tokens, name);
      if (!already) log?.info({ token: view.name, by }, 'admin token revoked');
      await tokensChanged?.();
      sendJson(res, 200, view);
    }),
  };
}

/**
 * `run`, with the caller's mistakes (registry errors that carry a status: a bad name, a taken
 * one, an unknown one) answered as themselves; anything else goes on to the handler (logged, 500).
 */
function answering(res: ServerResponse, run: () => Promise<void>): () => Promise<void> {
  return async () => {
    try {
      await run();
    } catch (err) {
      if (err instanceof AppvisorError && err.status !== undefined && err.status < 500) sendError(res, err);
      else throw err;
    }
  };
}

/** The request's JSON object body; TOKEN_INVALID (400) for anything else, before anything is changed. */
async function readTokenBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const invalid = (detail: string) => new AppvisorError('TOKEN_INVALID', { detail });
  const parsed = await readJsonBody(req, invalid);
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw invalid('the request body must be a JSON object {"name": "…", "scope": "read|operate|admin"}');
  }
  return parsed as Record<string, unknown>;
}

/** The header a client names itself with (the CLI: `appvisor-cli user@host`; the UI: `admin-ui`). */
export const CLIENT_HEADER = 'x-appvisor-client';

/**
 * Who asked, for the record, the log and the APP_STOPPED answer: the token's name (checked) and
 * the client it came through (the header is the client's word, shown, never trusted).
 */
export function actorOf(req: IncomingMessage, caller: Pick<AdminCaller, 'name'>): string {
  const raw = req.headers[CLIENT_HEADER];
  const client = (Array.isArray(raw) ? raw[0] : raw)
    ?.replace(/[^\x20-\x7e]/g, '')
    .trim()
    .slice(0, 80);
  return `token ${caller.name} via ${client || 'the API'}`;
}
