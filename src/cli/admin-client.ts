/**
 * The CLI's side of the admin API (`status`, `start`, `stop`): finds the token, calls a running
 * server, and turns every failure into a message that says what to do.
 */

import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ADMIN_TOKEN_ENV, ADMIN_TOKEN_FILE } from '../admin/token.js';
import { AppvisorError, messageOf } from '../errors.js';

export const DEFAULT_URL = 'http://127.0.0.1:13000';

/** APPVISOR_ADMIN_TOKEN, else `<dataDir>/admin-token`. */
export async function readAdminToken(dataDir: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const fromEnv = env[ADMIN_TOKEN_ENV]?.trim();
  if (fromEnv) return fromEnv;
  const file = path.join(dataDir, ADMIN_TOKEN_FILE);
  try {
    const token = (await fs.readFile(file, 'utf8')).trim();
    if (token) return token;
  } catch {
    // Reported below with the fix.
  }
  throw new AppvisorError('CONFIG_INVALID', {
    detail: `no admin token: set ${ADMIN_TOKEN_ENV}, or run this where ${file} exists (appvisor serve writes it on first start)`,
  });
}

/** `appvisor-cli alice@build-7`: the CLI as a client of the admin API. */
function cliClient(): string {
  let user = 'unknown';
  try {
    user = os.userInfo().username;
  } catch {
    // No passwd entry (some containers): the host still says where the command ran.
  }
  return `appvisor-cli ${user}@${os.hostname()}`;
}

/** Calls the admin API; resolves with the parsed JSON body of a 2xx answer. */
export async function adminRequest<T>(
  baseUrl: string,
  token: string,
  method: 'GET' | 'POST',
  route: string,
): Promise<T> {
  const url = new URL(route, baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`);
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        accept: 'application/json',
        // Names who asked in the app's record and log (an operator's stop says who stopped it).
        'x-appvisor-client': cliClient(),
      },
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new AppvisorError('SERVER_UNREACHABLE', {
      url: baseUrl,
      detail: `${cause?.code ?? cause?.message ?? messageOf(err)}; is \`appvisor serve\` running there? (--url sets another address)`,
    });
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  if (res.ok) return body as T;
  const error = (body as { error?: { code?: string; message?: string } } | undefined)?.error;
  if (res.status === 401) {
    throw new AppvisorError(
      'UNAUTHORIZED',
      {},
      {
        message: `the server at ${baseUrl} refused the admin token; use the token from its data/admin-token or ${ADMIN_TOKEN_ENV}`,
      },
    );
  }
  if (error?.code === 'APP_NOT_FOUND')
    throw new AppvisorError('APP_NOT_FOUND', {}, { message: error.message ?? 'no such app' });
  if (body === undefined) {
    throw new AppvisorError('SERVER_UNREACHABLE', {
      url: baseUrl,
      detail: `answered HTTP ${res.status} without JSON; is this an appvisor server?`,
    });
  }
  throw new AppvisorError(
    'APP_ERROR',
    {},
    { message: `${error?.code ?? `HTTP ${res.status}`}: ${error?.message ?? text}` },
  );
}
