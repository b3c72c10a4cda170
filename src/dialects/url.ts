import { AppvisorError } from '../errors.js';
import type { Dialect } from '../providers/provider.js';
import type { DialectModule } from './types.js';

/** A parsed database URL. `sqlite:` URLs carry a file name; the others host, port and credentials. */
export interface DatabaseUrl {
  readonly dialect: Dialect;
  /** The URL as given (may contain a password: never log it; use `redacted`). */
  readonly url: string;
  /** The URL without its password, for messages and logs. */
  readonly redacted: string;
  readonly host?: string;
  readonly port?: number;
  readonly user?: string;
  readonly password?: string;
  /** Database named in the URL path, if any. */
  readonly database?: string;
  /** Absolute file path for sqlite. */
  readonly filename?: string;
}

/** Parses a `scheme://user:password@host:port/database` URL of a database server. */
export function parseServerUrl(url: string, dialect: Dialect, defaultPort: number): DatabaseUrl {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new AppvisorError('CONFIG_INVALID', {
      detail: `database URL ${redactUrl(url)} is not a valid URL`,
    });
  }
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, '')) || undefined;
  return {
    dialect,
    url,
    redacted: redactUrl(url),
    host: parsed.hostname || '127.0.0.1',
    port: parsed.port ? Number(parsed.port) : defaultPort,
    ...(parsed.username ? { user: decodeURIComponent(parsed.username) } : {}),
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    ...(database ? { database } : {}),
  };
}

/** `postgres://app@db.example:5432`: a server by dialect, user, host and port (no password, no database). */
export function serverOf(url: DatabaseUrl): string {
  return `${url.dialect}://${url.user ? `${url.user}@` : ''}${url.host}:${url.port}`;
}

/** The URL with any password replaced by `***` (works on strings that are not valid URLs too). */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*):[^@/]*@/i, '$1:***@');
}

/** Returns the same server URL pointing at another database (path replaced). */
export function withDatabase(url: DatabaseUrl, database: string): string {
  const u = new URL(url.url);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}

/** How a dialect whose databases live on a server (`scheme://user@host:port/db`) reads its URLs. */
export function serverUrls(
  dialect: Dialect,
  defaultPort: number,
): Pick<DialectModule, 'remote' | 'parseUrl' | 'resolveUrl' | 'serverIdentity'> {
  return {
    remote: true,
    parseUrl: (url) => parseServerUrl(url, dialect, defaultPort),
    resolveUrl: (url) => url,
    serverIdentity: (url) => serverOf(url),
  };
}
