import path from 'node:path';
import { AppvisorError } from '../errors.js';
import type { Dialect } from './provider.js';

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

const SCHEMES: Readonly<Record<string, Dialect>> = {
  'sqlite:': 'sqlite',
  'postgres:': 'postgres',
  'postgresql:': 'postgres',
  'mysql:': 'mysql',
  'mariadb:': 'mysql',
};

export const SUPPORTED_SCHEMES = Object.keys(SCHEMES).map((s) => `${s}//`);

/**
 * Parses a database URL. `sqlite:` paths are resolved against `cwd` (`sqlite:data/main.sqlite`,
 * `sqlite:/abs/file.sqlite`, `sqlite::memory:`).
 */
export function parseDatabaseUrl(url: string, cwd = process.cwd()): DatabaseUrl {
  const scheme = /^[a-z]+:/i.exec(url)?.[0]?.toLowerCase();
  const dialect = scheme ? SCHEMES[scheme] : undefined;
  if (!scheme || !dialect) {
    throw new AppvisorError('CONFIG_INVALID', {
      detail: `database URL ${redactUrl(url)} has an unsupported scheme; use sqlite:FILE, postgres://… or mysql://…`,
    });
  }
  if (dialect === 'sqlite') {
    let file = url.slice(scheme.length);
    if (file.startsWith('//')) file = file.slice(2);
    if (file === '')
      throw new AppvisorError('CONFIG_INVALID', { detail: `database URL ${url} names no file` });
    const filename = file === ':memory:' ? file : path.resolve(cwd, file);
    return { dialect, url, redacted: `sqlite:${filename}`, filename };
  }
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
    port: parsed.port ? Number(parsed.port) : dialect === 'postgres' ? 5432 : 3306,
    ...(parsed.username ? { user: decodeURIComponent(parsed.username) } : {}),
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    ...(database ? { database } : {}),
  };
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
