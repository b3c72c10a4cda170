import { type ServerResponse, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { AppvisorError, messageOf } from '../errors.js';

/**
 * The error an HTTP client sees for a failure while reaching `app`: AppvisorErrors keep their
 * code; anything else becomes 503 APP_ERROR with its message.
 */
export function toAppError(err: unknown, app: string): AppvisorError {
  if (err instanceof AppvisorError && err.status !== undefined) return err;
  return new AppvisorError('APP_ERROR', { app, detail: messageOf(err) }, { cause: err });
}

function bodyOf(err: AppvisorError, app: string): string {
  return JSON.stringify({ error: { code: err.code, message: err.message, app } });
}

function retryAfterOf(err: AppvisorError): boolean {
  return err.code === 'APP_STARTING' || err.code === 'APP_START_TIMEOUT';
}

/**
 * Answers `{"error":{"code","message","app"}}` with the registry status, replacing whatever
 * headers a handler may have set; APP_STARTING gets `Retry-After`.
 */
export function sendError(
  res: ServerResponse,
  err: AppvisorError,
  app: string,
  retryAfterSeconds: number,
): void {
  const body = bodyOf(err, app);
  for (const name of res.getHeaderNames()) res.removeHeader(name);
  res.statusCode = err.status ?? 500;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(body));
  res.setHeader('cache-control', 'no-store');
  if (retryAfterOf(err)) res.setHeader('retry-after', String(retryAfterSeconds));
  res.end(body);
}

/** The same answer written raw on an upgrade socket, which is then closed. */
export function writeSocketError(
  socket: Duplex,
  err: AppvisorError,
  app: string,
  retryAfterSeconds: number,
): void {
  writeSocketResponse(
    socket,
    err.status ?? 500,
    retryAfterOf(err) ? [`Retry-After: ${retryAfterSeconds}`] : [],
    bodyOf(err, app),
  );
}

/** Writes a complete HTTP/1.1 response with `Connection: close` on a raw socket and closes it. */
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
  const head = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`,
    'Connection: close',
    ...(body === '' ? [] : ['Content-Type: application/json; charset=utf-8', 'Cache-Control: no-store']),
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...headers,
  ];
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`, () => socket.destroy());
}
