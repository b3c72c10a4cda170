/**
 * The CLI's side of the admin API (`status`, `start`, `stop`): finds the server and the token
 * from the same settings as `serve`, calls it, and turns every failure into a message that says
 * what to do.
 */

import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { ADMIN_TOKEN_ENV, ADMIN_TOKEN_FILE } from '../admin/token.js';
import type { Settings } from '../config/types.js';
import { AppvisorError, isErrorCode, messageOf } from '../errors.js';
import { normaliseHost } from '../gateway/route.js';
import { urlUnder } from '../http/url-under.js';
import { byteCounter, type OnTransferProgress } from '../ops/byte-count.js';

/** `--url`'s help. */
export const URL_OPTION_HELP =
  "the server (default: serve's listen address from the settings, http://127.0.0.1:13000 unless changed)";

/** What the client commands' help says about finding the server and the token. */
export const CLIENT_HELP = [
  'Finds the server as serve listens: listen.host and listen.port from --config or ./appvisor.yaml,',
  'APPVISOR_HOST and APPVISOR_PORT winning (0.0.0.0 or :: is reached on 127.0.0.1 or [::1]); --url wins over all.',
  'Reads the admin token from APPVISOR_ADMIN_TOKEN or <dataDir>/admin-token (APPVISOR_DATA_DIR or dataDir; default data).',
].join('\n');

/** How long one call may take. */
const TIMEOUT_MS = 10_000;

/** Where a client reaches a running server. */
export interface ServerTarget {
  /** The server, e.g. `http://127.0.0.1:13000`; messages name it. */
  readonly url: string;
  /**
   * The Host header to send instead of the URL's: the first `admin.hosts` entry when the
   * address connected to is not one of them (the supervisor answers only there).
   */
  readonly host?: string;
  /** `--url`, or the listen address of the settings. */
  readonly from: 'flag' | 'settings';
}

/**
 * The server a client command talks to: `--url` when given, else `serve`'s listen address from
 * the same settings (`--config`, appvisor.yaml, APPVISOR_HOST, APPVISOR_PORT). A wildcard listen
 * host (0.0.0.0, ::) is reached on the loopback address of its family.
 */
export function serverTarget(settings: Settings, url?: string): ServerTarget {
  if (url !== undefined) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(url);
    } catch {
      parsed = undefined;
    }
    if (parsed === undefined || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
      throw new AppvisorError('CONFIG_INVALID', {
        detail: `--url must be an http:// or https:// URL, got '${url}'`,
      });
    }
    return { url, from: 'flag' };
  }
  const { port } = settings.listen;
  if (port === 0) {
    throw new AppvisorError('CONFIG_INVALID', {
      detail:
        'the settings say listen.port 0 (serve picks a free port), so the server cannot be found from them; pass --url with the address serve logged',
    });
  }
  const host = connectHost(settings.listen.host);
  const target = { url: `http://${host}:${port}`, from: 'settings' as const };
  const adminHosts = settings.admin?.hosts;
  if (adminHosts === undefined || adminHosts.some((h) => normaliseHost(h) === normaliseHost(host))) {
    return target;
  }
  return { ...target, host: `${adminHosts[0]}:${port}` };
}

/** The address to connect to for a listen host; IPv6 literals in brackets. */
function connectHost(listen: string): string {
  const bare = listen.startsWith('[') && listen.endsWith(']') ? listen.slice(1, -1) : listen;
  if (bare === '0.0.0.0') return '127.0.0.1';
  if (bare.includes(':')) return /^[0:]+$/.test(bare) ? '[::1]' : `[${bare}]`;
  return bare;
}

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
    detail: `no admin token: set ${ADMIN_TOKEN_ENV}, or run this where ${file} exists (appvisor serve writes it on first start; APPVISOR_DATA_DIR or dataDir moves it)`,
  });
}

/** `appvisor-cli alice@build-7`: the CLI as a client of the admin API. */
export function cliClient(): string {
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
  target: ServerTarget,
  token: string,
  method: 'GET' | 'POST',
  route: string,
  payload?: unknown,
): Promise<T> {
  const baseUrl = target.url;
  let res: { status: number; text: string };
  try {
    res = await send(target, token, method, route, payload);
  } catch (err) {
    const e = err as { code?: string; name?: string };
    const reason =
      e.name === 'AbortError' ? `no answer within ${TIMEOUT_MS / 1000} s` : (e.code ?? messageOf(err));
    const hint =
      target.from === 'flag'
        ? '--url sets another address'
        : 'the address is listen.host and listen.port of the settings: APPVISOR_HOST, APPVISOR_PORT, appvisor.yaml or --config; --url sets another';
    throw new AppvisorError('SERVER_UNREACHABLE', {
      url: baseUrl,
      detail: `${reason}; is \`appvisor serve\` running there? (${hint})`,
    });
  }
  let body: unknown;
  try {
    body = res.text ? JSON.parse(res.text) : undefined;
  } catch {
    body = undefined;
  }
  if (res.status >= 200 && res.status < 300) return body as T;
  const error = (body as { error?: { code?: string; message?: string } } | undefined)?.error;
  if (res.status === 401) {
    throw new AppvisorError(
      'UNAUTHORIZED',
      {},
      {
        message: `the server at ${baseUrl} refused the admin token; use the token from its <dataDir>/admin-token or ${ADMIN_TOKEN_ENV}`,
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
    { message: `${error?.code ?? `HTTP ${res.status}`}: ${error?.message ?? res.text}` },
  );
}

/** One request with node:http(s): fetch() cannot send a Host header of its own choosing. */
function send(
  target: ServerTarget,
  token: string,
  method: string,
  route: string,
  body?: unknown,
): Promise<{ status: number; text: string }> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const url = urlUnder(target.url, route);
  const client = url.protocol === 'https:' ? https : http;
  const headers: http.OutgoingHttpHeaders = {
    authorization: `Bearer ${token}`,
    accept: 'application/json',
    // Names who asked in the app's record and log (an operator's stop says who stopped it).
    'x-appvisor-client': cliClient(),
  };
  if (target.host !== undefined) headers.host = target.host;
  if (payload !== undefined) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = Buffer.byteLength(payload);
  }
  return new Promise((resolve, reject) => {
    const req = client.request(url, { method, headers, signal: AbortSignal.timeout(TIMEOUT_MS) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
      );
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/**
 * `call` on the running server, or undefined when there is none to ask — no admin token here
 * (no server was ever started with this data folder) or nothing answers at the settings'
 * address — so the command works on the state store instead. With `--url` a server is meant:
 * its absence is an error.
 */
export async function whenServerAnswers<T>(
  settings: Settings,
  env: NodeJS.ProcessEnv,
  url: string | undefined,
  call: (target: ServerTarget, token: string) => Promise<T>,
): Promise<T | undefined> {
  const target = serverTarget(settings, url);
  let token: string;
  try {
    token = await readAdminToken(settings.dataDir, env);
  } catch (err) {
    if (url !== undefined) throw err;
    return undefined;
  }
  try {
    return await call(target, token);
  } catch (err) {
    if (err instanceof AppvisorError && err.code === 'SERVER_UNREACHABLE' && url === undefined)
      return undefined;
    throw err;
  }
}

/**
 * A call of the admin API that moves an archive: `upload` (a file) is streamed as the body,
 * and a 2xx answer is streamed into `download` (written under a temporary name and renamed
 * once complete), else parsed as JSON. No overall time limit: an archive may be large. A
 * refusal keeps the server's error code (ARCHIVE_INVALID, FORBIDDEN, LOCK_HELD, …).
 */
export async function adminTransfer(
  target: ServerTarget,
  token: string,
  route: string,
  opts: {
    readonly upload?: string;
    readonly download?: string;
    readonly json?: unknown;
    /** Told of the archive's bytes as they are sent (`read`) or received (`archive`). */
    readonly onProgress?: OnTransferProgress;
  },
): Promise<unknown> {
  const url = urlUnder(target.url, route);
  const client = url.protocol === 'https:' ? https : http;
  const headers: http.OutgoingHttpHeaders = {
    authorization: `Bearer ${token}`,
    'x-appvisor-client': cliClient(),
  };
  if (target.host !== undefined) headers.host = target.host;
  let payload: string | undefined;
  if (opts.upload !== undefined) {
    headers['content-type'] = 'application/gzip';
    headers['content-length'] = (await fs.stat(opts.upload)).size;
  } else if (opts.json !== undefined) {
    payload = JSON.stringify(opts.json);
    headers['content-type'] = 'application/json';
    headers['content-length'] = Buffer.byteLength(payload);
  }
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const req = client.request(url, { method: 'POST', headers }, resolve);
    req.on('error', (err: NodeJS.ErrnoException) =>
      reject(
        new AppvisorError('SERVER_UNREACHABLE', {
          url: target.url,
          detail: `${err.code ?? messageOf(err)}; is \`appvisor serve\` running there?`,
        }),
      ),
    );
    if (opts.upload !== undefined) {
      pipeline(createReadStream(opts.upload), byteCounter('read', opts.onProgress), req).catch(reject);
    } else req.end(payload);
  });
  const status = res.statusCode ?? 0;
  if (status >= 200 && status < 300 && opts.download !== undefined) {
    const partial = `${opts.download}.${process.pid}.part`;
    try {
      await pipeline(
        res,
        byteCounter('archive', opts.onProgress),
        createWriteStream(partial, { mode: 0o600 }),
      );
      await fs.rename(partial, opts.download);
    } finally {
      await fs.rm(partial, { force: true });
    }
    return undefined;
  }
  const chunks: Buffer[] = [];
  for await (const chunk of res as AsyncIterable<Buffer>) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString('utf8');
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  if (status >= 200 && status < 300) return body;
  const error = (body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  const message = typeof error?.message === 'string' ? error.message : `the server answered HTTP ${status}`;
  if (status === 401) {
    throw new AppvisorError(
      'UNAUTHORIZED',
      {},
      {
        message: `the server at ${target.url} refused the admin token; use the token from its <dataDir>/admin-token or ${ADMIN_TOKEN_ENV}`,
      },
    );
  }
  throw new AppvisorError(isErrorCode(error?.code) ? error.code : 'APP_ERROR', {}, { message });
}
