/**
 * The one HTTP error writer, for the gateway and the admin API alike (SPEC §6): every error is
 * answered as `{"error":{"code","message","app"?}}` with the registry's status, and with
 * `Retry-After` where the registry marks the code so (a start still under way).
 */
import { type ServerResponse, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  AppvisorError,
  ERRORS,
  type ErrorCode,
  type ErrorDefinition,
  type ErrorParams,
  toAppvisorError,
  wrapError,
} from '../errors.js';

/** Headers every JSON answer of appvisor carries. */
export const JSON_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-type': 'application/json; charset=utf-8',
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
});

/** The registry codes that have an HTTP status. */
export type HttpErrorCode = {
  [K in ErrorCode]: (typeof ERRORS)[K] extends { readonly status: number } ? K : never;
}[ErrorCode];

export interface SendErrorOptions {
  /** The app the body names. @default the error's `app` param, when it has one */
  readonly app?: string;
  /** `Retry-After`, in seconds, for the codes the registry marks `retryAfter`. @default 1 */
  readonly retryAfterSeconds?: number;
  /** Extra headers, e.g. `www-authenticate` or `allow`. */
  readonly headers?: Readonly<Record<string, string>>;
}

/** A complete error answer: status, headers (lower-case names) and the JSON body. */
export interface ErrorResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/**
 * The error an HTTP client sees for `err`: an AppvisorError that has an HTTP status is kept;
 * anything else (a foreign error, or a registry error that is not an HTTP answer, such as
 * DB_UNREACHABLE) becomes `fallback` with `params` and the original message as `detail`.
 */
export function toHttpError(err: unknown, fallback: HttpErrorCode, params: ErrorParams = {}): AppvisorError {
  return err instanceof AppvisorError && err.status !== undefined ? err : wrapError(err, fallback, params);
}

/**
 * The answer for any error: registry errors with their status (500 when the code has none),
 * anything else as 500 INTERNAL, whose message shows nothing of the original (that goes to the log).
 */
export function errorResponse(err: unknown, opts: SendErrorOptions = {}): ErrorResponse {
  const error = toAppvisorError(err, 'INTERNAL');
  const named = opts.app ?? error.params.app;
  const app = typeof named === 'string' ? named : undefined;
  const body = JSON.stringify({
    error: { code: error.code, message: error.message, ...(app === undefined ? {} : { app }) },
  });
  const def: ErrorDefinition = ERRORS[error.code];
  return {
    status: error.status ?? 500,
    headers: {
      ...JSON_HEADERS,
      ...(def.retryAfter ? { 'retry-after': String(opts.retryAfterSeconds ?? 1) } : {}),
      ...opts.headers,
    },
    body,
  };
}

/**
 * Answers `err` (see {@link errorResponse}), replacing whatever headers a handler had set, so
 * nothing of a failed handler's answer leaks into the error. A response whose headers are gone
 * already cannot carry an error any more: it is cut instead.
 */
export function sendError(res: ServerResponse, err: unknown, opts: SendErrorOptions = {}): void {
  if (res.headersSent) {
    if (!res.writableFinished) res.destroy();
    return;
  }
  const answer = errorResponse(err, opts);
  // A closing server's `connection: close` stays: it is the server's, not the handler's.
  const closing = res.getHeader('connection') === 'close';
  for (const name of res.getHeaderNames()) res.removeHeader(name);
  res.writeHead(answer.status, {
    ...answer.headers,
    ...(closing ? { connection: 'close' } : {}),
    'content-length': Buffer.byteLength(answer.body),
  });
  res.end(answer.body);
}

/** The same answer written raw on an upgrade socket, which is then closed. */
export function writeSocketError(socket: Duplex, err: unknown, opts: SendErrorOptions = {}): void {
  const answer = errorResponse(err, opts);
  writeSocketResponse(
    socket,
    answer.status,
    Object.entries(answer.headers).map(([name, value]) => `${headerCase(name)}: ${value}`),
    answer.body,
  );
}

/** `retry-after` → `Retry-After`: raw responses are written in the usual casing. */
function headerCase(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_, dash: string, letter: string) => dash + letter.toUpperCase());
}

/**
 * Writes a complete HTTP/1.1 response with `Connection: close` on a raw socket and closes it.
 * `headers` are whole header lines (`Name: value`); a body is sent as JSON.
 */
export function writeSocketResponse(
  socket: Duplex,
  status: number,
  headers: readonly string[],
  body = '',
): void {
  if (socket.destroyed) return;
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const hasType = headers.some((h) => /^content-type:/i.test(h));
  const head = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`,
    'Connection: close',
    ...(body === '' || hasType ? [] : [`Content-Type: ${JSON_HEADERS['content-type']}`]),
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...headers,
  ];
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`, () => socket.destroy());
}
