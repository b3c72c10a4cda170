import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendCode } from './respond.js';

/** A check of a request's `Authorization: Bearer <token>` header. */
export type BearerCheck = (req: IncomingMessage) => boolean;

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/**
 * Builds the admin token check. Both sides are hashed first so the comparison is
 * constant-time whatever the presented token's length is.
 */
export function createBearerCheck(token: string): BearerCheck {
  const expected = digest(token);
  return (req) => {
    const header = req.headers.authorization;
    if (header === undefined) return false;
    const match = BEARER.exec(header);
    if (match === null) return false;
    return timingSafeEqual(digest(match[1]!), expected);
  };
}

/** The one 401 answer: same body whatever the route, the app, or what was wrong. */
export function sendUnauthorized(res: ServerResponse): void {
  sendCode(res, 'UNAUTHORIZED', {}, { 'www-authenticate': 'Bearer' });
}
