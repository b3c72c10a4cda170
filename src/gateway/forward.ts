import type { IncomingMessage } from 'node:http';

const PREFIX = 'x-forwarded-prefix';

/**
 * Calls `fn(a, b, c)`; a synchronous throw or a rejected returned promise goes to
 * `fail(err, b)` (so callers can pass one function made once, not a closure per call).
 */
export function contain<A, B, C>(
  fn: (a: A, b: B, c: C) => unknown,
  a: A,
  b: B,
  c: C,
  fail: (err: unknown, b: B) => void,
): void {
  let result: unknown;
  try {
    result = fn(a, b, c);
  } catch (err) {
    fail(err, b);
    return;
  }
  if (
    result !== null &&
    typeof result === 'object' &&
    typeof (result as PromiseLike<unknown>).then === 'function'
  ) {
    (result as PromiseLike<unknown>).then(undefined, (err: unknown) => fail(err, b));
  }
}

/**
 * Rewrites the request as the app must see it: `req.url` without the prefix, and
 * `X-Forwarded-Prefix` set to `prefix` — or removed when `prefix` is '' (custom domain, main
 * app), so a client can never supply its own. Both `headers` and `rawHeaders` are kept in step,
 * since adapters differ in which one they read.
 */
export function forwardAs(req: IncomingMessage, path: string, prefix: string): void {
  if (req.url !== path) req.url = path;
  const headers = req.headers;
  if (headers[PREFIX] !== undefined) {
    const raw = req.rawHeaders;
    for (let i = raw.length - 2; i >= 0; i -= 2) {
      if (raw[i]!.length === PREFIX.length && raw[i]!.toLowerCase() === PREFIX) raw.splice(i, 2);
    }
    if (prefix === '') delete headers[PREFIX];
  }
  if (prefix !== '') {
    headers[PREFIX] = prefix;
    req.rawHeaders.push('X-Forwarded-Prefix', prefix);
  }
}
