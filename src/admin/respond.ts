import type { ServerResponse } from 'node:http';
import { AppvisorError, type ErrorCode } from '../errors.js';
import { JSON_HEADERS, sendError } from '../http/errors.js';

/** Answers `body` as JSON with `status` (and any extra headers). */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...JSON_HEADERS, ...headers, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Answers the registry error `code` (see `sendError` in src/http/errors.ts). */
export function sendCode(
  res: ServerResponse,
  code: ErrorCode,
  params: Record<string, string> = {},
  headers: Readonly<Record<string, string>> = {},
): void {
  sendError(res, new AppvisorError(code, params), { headers });
}

/** 405 METHOD_NOT_ALLOWED with the methods the route accepts, also in `Allow`. */
export function sendMethodNotAllowed(res: ServerResponse, allow: readonly string[]): void {
  const methods = allow.join(', ');
  sendCode(res, 'METHOD_NOT_ALLOWED', { allow: methods }, { allow: methods });
}
