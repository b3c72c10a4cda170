import type { GatewayApps } from './types.js';

/** Where one request goes (SPEC §6). */
export type Route =
  /** `/_supervisor` and below, on a supervisor host. `path` is below the prefix, without the query ('' for exactly `/_supervisor`). */
  | { readonly kind: 'supervisor'; readonly path: string }
  /** Exactly `/apps/<name>` (308 to `/apps/<name>/`, query kept). */
  | { readonly kind: 'redirect'; readonly location: string }
  /** A sub-app: `prefix` is `/apps/<name>` or '' (custom domain); `path` is what the app sees, query kept. */
  | { readonly kind: 'app'; readonly name: string; readonly prefix: string; readonly path: string }
  /** `/apps/<segment>/…` naming no routable app; `name` is the segment, decoded once where possible. */
  | { readonly kind: 'not-found'; readonly name: string }
  /** Everything else: the main app, with the original path. */
  | { readonly kind: 'main'; readonly path: string };

const SUPERVISOR = '/_supervisor';
const APPS = '/apps/';
const SLASH = 47;
const BRACKET = 91;

/**
 * True for a valid sub-app name (`^[a-z][a-z0-9_-]{0,39}$`, not the reserved 'main'). Read
 * character by character: it runs on every request, and a loop costs a fraction of the regex.
 */
export function isAppName(name: string): boolean {
  const length = name.length;
  if (length === 0 || length > 40 || !isLower(name.charCodeAt(0))) return false;
  for (let i = 1; i < length; i++) {
    const c = name.charCodeAt(i);
    if (!isLower(c) && !(c >= 0x30 && c <= 0x39) && c !== 0x5f /* _ */ && c !== 0x2d /* - */) return false;
  }
  return name !== 'main';
}

function isLower(code: number): boolean {
  return code >= 0x61 && code <= 0x7a;
}

/** A Host header as routing compares it: lower-cased, port and one trailing dot removed. */
export function normaliseHost(host: string): string {
  let end = host.length;
  if (host.charCodeAt(0) === BRACKET) {
    const close = host.indexOf(']');
    if (close !== -1) end = close + 1;
  } else {
    const colon = host.indexOf(':');
    if (colon !== -1) end = colon;
  }
  if (end > 0 && host.charCodeAt(end - 1) === 46) end--;
  return (end === host.length ? host : host.slice(0, end)).toLowerCase();
}

// Most requests repeat the previous Host; remembering one saves a lower-casing per request.
let lastHost = '';
let lastNormalised = '';

function decodeOnce(segment: string): string | undefined {
  if (!segment.includes('%')) return segment;
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

/** What routing needs besides the apps. */
export interface RouteOptions {
  /**
   * Normalised hosts (see {@link normaliseHost}) on which `/_supervisor` answers; undefined:
   * every host that is not an app's domain.
   */
  readonly supervisorHosts?: ReadonlySet<string> | undefined;
}

/**
 * Routes one request by its raw URL and Host only (no other header, no query parameter).
 * Pure: no I/O, nothing but `has` and `appForDomain` is asked of `apps`.
 *
 * Dot segments are never resolved: the segment after `/apps/` is decoded once and must be a
 * valid, known app name, so `/apps/../_supervisor`, `/apps/%2e%2e/` or `/apps/a%2F..%2F/`
 * end as `not-found`, and whatever follows a valid name stays inside that app.
 * Precedence: a custom domain (the whole host belongs to that app, `/_supervisor` included),
 * then the supervisor (on a supervisor host only), then `/apps/<name>`, then the main app.
 */
export function resolveRoute(
  host: string | undefined,
  rawUrl: string,
  apps: Pick<GatewayApps, 'has' | 'appForDomain'>,
  options: RouteOptions = {},
): Route {
  const query = rawUrl.indexOf('?');
  const pathEnd = query === -1 ? rawUrl.length : query;

  let normalised: string | undefined;
  if (host !== undefined && host !== '') {
    if (host !== lastHost) {
      lastNormalised = normaliseHost(host);
      lastHost = host;
    }
    normalised = lastNormalised;
    const name = apps.appForDomain(normalised);
    if (name !== undefined) return { kind: 'app', name, prefix: '', path: rawUrl };
  }

  if (
    rawUrl.startsWith(SUPERVISOR) &&
    (pathEnd === SUPERVISOR.length || rawUrl.charCodeAt(SUPERVISOR.length) === SLASH)
  ) {
    const hosts = options.supervisorHosts;
    if (hosts === undefined || (normalised !== undefined && hosts.has(normalised))) {
      return { kind: 'supervisor', path: rawUrl.slice(SUPERVISOR.length, pathEnd) };
    }
  }

  if (rawUrl.startsWith(APPS)) {
    const slash = rawUrl.indexOf('/', APPS.length);
    const segmentEnd = slash === -1 || slash > pathEnd ? pathEnd : slash;
    const segment = rawUrl.slice(APPS.length, segmentEnd);
    const name = decodeOnce(segment);
    if (name === undefined || !isAppName(name) || !apps.has(name)) {
      return { kind: 'not-found', name: name ?? segment };
    }
    if (segmentEnd === pathEnd) {
      return { kind: 'redirect', location: `${APPS}${name}/${rawUrl.slice(pathEnd)}` };
    }
    return { kind: 'app', name, prefix: `/apps/${name}`, path: rawUrl.slice(segmentEnd) };
  }

  return { kind: 'main', path: rawUrl };
}
