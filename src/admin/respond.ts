import type { ServerResponse } from 'node:http';
import { AppvisorError, type ErrorCode } from '../errors.js';

/** Headers every JSON answer of the supervisor carries. */
const JSON_HEADERS = {
  'content-type': 'application/json; charset=utf-8',
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
} as const;

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

/**
 * Answers a registry error as `{"error":{"code","message","app"?}}` with its HTTP status
 * (500 for codes that have none).
 */
export function sendError(
  res: ServerResponse,
  error: AppvisorError,
  headers: Readonly<Record<string, string>> = {},
): void {
  const app = error.params.app;
  const body = {
    error: { code: error.code, message: error.message, ...(typeof app === 'string' ? { app } : {}) },
  };
  sendJson(res, error.status ?? 500, body, headers);
}

/** Shorthand for `sendError(res, new AppvisorError(code, params))`. */
export function sendCode(
  res: ServerResponse,
  code: ErrorCode,
  params: Record<string, string> = {},
  headers: Readonly<Record<string, string>> = {},
): void {
  sendError(res, new AppvisorError(code, params), headers);
}

/**
 * 405 with the methods the route accepts. `METHOD_NOT_ALLOWED` and `INTERNAL` are not registry
 * codes yet (the registry is shared); the lead may move them there.
 */
export function sendMethodNotAllowed(res: ServerResponse, allow: readonly string[]): void {
  sendJson(
    res,
    405,
    { error: { code: 'METHOD_NOT_ALLOWED', message: `allowed methods: ${allow.join(', ')}` } },
    { allow: allow.join(', ') },
  );
}

/** Answers an unexpected failure without leaking its details (they go to the log). */
export function sendInternal(res: ServerResponse, err: unknown): void {
  if (err instanceof AppvisorError) {
    sendError(res, err);
    return;
  }
  sendJson(res, 500, { error: { code: 'INTERNAL', message: 'internal error' } });
}
