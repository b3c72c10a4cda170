/**
 * The admin API client. The token travels only in the `Authorization` header, never in a URL.
 */

/** The API's root, next to this module (so the UI works wherever `/_supervisor/` is served). */
export const API_ROOT = new URL('api/', import.meta.url);

/** A refused or failed API call, with the server's error code and message. */
export class ApiError extends Error {
  /**
   * @param {number} status HTTP status; 0 when the server could not be reached
   * @param {string} code
   * @param {string} message
   */
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

/**
 * Calls `method path` (relative to the API root) with `token`; resolves with the JSON body of
 * a 2xx answer, rejects with an ApiError otherwise.
 *
 * @param {string} token
 * @param {'GET' | 'POST' | 'DELETE'} method
 * @param {string} path e.g. `apps/blog/start` (segments already encoded)
 * @param {unknown} [body] sent as JSON
 * @returns {Promise<any>}
 */
export async function apiRequest(token, method, path, body) {
  let res;
  try {
    res = await fetch(new URL(path, API_ROOT), {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        accept: 'application/json',
        'x-appvisor-client': 'admin-ui',
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch {
    throw new ApiError(0, 'UNREACHABLE', 'Cannot reach the server. Is appvisor serve still running?');
  }
  let answer;
  try {
    answer = await res.json();
  } catch {
    answer = undefined;
  }
  if (res.ok) return answer;
  const error = answer?.error;
  throw new ApiError(
    res.status,
    typeof error?.code === 'string' ? error.code : `HTTP_${res.status}`,
    typeof error?.message === 'string' ? error.message : `The server answered HTTP ${res.status}.`,
  );
}

/**
 * `apps/<name>/<action>` with the name encoded as one path segment.
 *
 * @param {string} name
 * @param {string} [action]
 */
export function appPath(name, action) {
  const base = `apps/${encodeURIComponent(name)}`;
  return action ? `${base}/${action}` : base;
}

/**
 * `POST path` answered with a file (a backup archive): resolves with its bytes and the file name
 * the server gave it; rejects with an ApiError like {@link apiRequest}.
 *
 * @param {string} token
 * @param {string} path
 * @returns {Promise<{blob: Blob, filename: string}>}
 */
export async function apiDownload(token, path) {
  let res;
  try {
    res = await fetch(new URL(path, API_ROOT), {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'x-appvisor-client': 'admin-ui' },
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch {
    throw new ApiError(0, 'UNREACHABLE', 'Cannot reach the server. Is appvisor serve still running?');
  }
  if (!res.ok) {
    let error;
    try {
      error = (await res.json())?.error;
    } catch {
      error = undefined;
    }
    throw new ApiError(
      res.status,
      typeof error?.code === 'string' ? error.code : `HTTP_${res.status}`,
      typeof error?.message === 'string' ? error.message : `The server answered HTTP ${res.status}.`,
    );
  }
  const disposition = res.headers.get('content-disposition') ?? '';
  const filename = /filename="([^"]+)"/.exec(disposition)?.[1] ?? 'backup.tar.gz';
  return { blob: await res.blob(), filename };
}
