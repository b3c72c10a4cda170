/**
 * The leader's work asked of another replica (a backup, restore, clone or rotation through a
 * load balancer lands on any of them): the request is passed on to the leader's admin API as it
 * came — method, path, token, client, body streamed both ways — and its answer passed back. A
 * forwarded request is marked, and a replica never forwards one again (a leader that changed
 * meanwhile answers LOCK_HELD itself).
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import { pipeline } from 'node:stream/promises';
import { AppvisorError, messageOf } from '../errors.js';
import { sendError } from '../http/errors.js';

/** Set on a request one replica passes on to the leader. */
export const FORWARDED_HEADER = 'x-appvisor-forwarded';

/** The request headers passed on: what the leader's route reads, nothing hop-by-hop. */
const PASSED_ON = ['authorization', 'content-type', 'content-length', 'x-appvisor-client', 'accept'];
/** The answer's headers passed back. */
const PASSED_BACK = ['content-type', 'content-length', 'content-disposition', 'cache-control', 'retry-after'];

/** Whether the request was passed on by another replica already. */
export function forwarded(req: IncomingMessage): boolean {
  return req.headers[FORWARDED_HEADER] !== undefined;
}

/** Passes `req` on to the leader's admin API and its answer back to `res`. */
export async function forwardToLeader(
  req: IncomingMessage,
  res: ServerResponse,
  leader: { readonly id: string; readonly url: string },
): Promise<void> {
  const target = new URL(req.url ?? '/', leader.url);
  const headers: http.OutgoingHttpHeaders = { [FORWARDED_HEADER]: '1' };
  for (const name of PASSED_ON) {
    const value = req.headers[name];
    if (value !== undefined) headers[name] = value;
  }
  const client = target.protocol === 'https:' ? https : http;
  try {
    const answer = await new Promise<IncomingMessage>((resolve, reject) => {
      const upstream = client.request(target, { method: req.method, headers }, resolve);
      upstream.on('error', reject);
      pipeline(req, upstream).catch(reject);
    });
    const back: http.OutgoingHttpHeaders = {};
    for (const name of PASSED_BACK) {
      const value = answer.headers[name];
      if (value !== undefined) back[name] = value;
    }
    res.writeHead(answer.statusCode ?? 502, back);
    await pipeline(answer, res).catch(() => undefined);
  } catch (err) {
    sendError(
      res,
      new AppvisorError('SERVER_UNREACHABLE', {
        url: leader.url,
        detail: `the leader ${leader.id} does the backups, restores, clones and rotations, and did not answer (${messageOf(err)})`,
      }),
    );
  }
}
