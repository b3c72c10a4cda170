/**
 * The registered dialects, and the one way from a URL or scheme to the module that knows its
 * dialect. A new dialect is a folder beside these, added to `dialects`.
 */
import { AppvisorError } from '../errors.js';
import type { Dialect, SqlClient } from '../providers/provider.js';
import { mysql } from './mysql/index.js';
import { postgres } from './postgres/index.js';
import { sqlite } from './sqlite/index.js';
import type { DialectModule, OpenOptions } from './types.js';
import { type DatabaseUrl, redactUrl } from './url.js';

/** Every dialect appvisor speaks, in the order messages list them. */
export const dialects: readonly DialectModule[] = Object.freeze([sqlite, postgres, mysql]);

/** Every accepted scheme as written in a URL (`sqlite://`, `postgres://`, …). */
export const SUPPORTED_SCHEMES: readonly string[] = dialects.flatMap((d) => d.schemes.map((s) => `${s}//`));

/** `a, b or c`. */
export function orList(items: readonly string[]): string {
  return items.length <= 1 ? items.join('') : `${items.slice(0, -1).join(', ')} or ${items.at(-1)}`;
}

/** The scheme of `url`, lower case with its colon (`postgres:`), if it has one. */
export function schemeOf(url: string): string | undefined {
  return /^[a-z][a-z0-9+.-]*:/i.exec(url)?.[0]?.toLowerCase();
}

/** The dialect a scheme (`postgresql:` or `postgresql`) selects, if any. */
export function dialectForScheme(scheme: string): DialectModule | undefined {
  const s = (scheme.endsWith(':') ? scheme : `${scheme}:`).toLowerCase();
  return dialects.find((d) => d.schemes.includes(s));
}

/** The module of a dialect by name. */
export function dialectNamed(name: Dialect): DialectModule {
  const found = dialects.find((d) => d.name === name);
  if (!found) throw new TypeError(`no dialect module named ${name}`);
  return found;
}

function unsupported(url: string): AppvisorError {
  return new AppvisorError('CONFIG_INVALID', {
    detail: `database URL ${redactUrl(url)} has an unsupported scheme; use ${orList(dialects.map((d) => d.urlForm))}`,
  });
}

/**
 * The dialect of a parsed URL, a URL or a scheme. Throws CONFIG_INVALID naming the accepted
 * schemes when none matches.
 */
export function dialectFor(urlOrScheme: string | DatabaseUrl): DialectModule {
  if (typeof urlOrScheme !== 'string') return dialectNamed(urlOrScheme.dialect);
  const scheme = schemeOf(urlOrScheme) ?? (/^[a-z]+$/i.test(urlOrScheme) ? urlOrScheme : undefined);
  const found = scheme === undefined ? undefined : dialectForScheme(scheme);
  if (!found) throw unsupported(urlOrScheme);
  return found;
}

/**
 * Parses a database URL. `sqlite:` paths are resolved against `cwd` (`sqlite:data/main.sqlite`,
 * `sqlite:/abs/file.sqlite`, `sqlite::memory:`).
 */
export function parseDatabaseUrl(url: string, cwd = process.cwd()): DatabaseUrl {
  const scheme = schemeOf(url);
  const dialect = scheme === undefined ? undefined : dialectForScheme(scheme);
  if (scheme === undefined || dialect === undefined) throw unsupported(url);
  return dialect.parseUrl(url, scheme, cwd);
}

/** Whether `url` is one of a registered dialect: `scheme://…` for servers, `scheme:…` for files. */
export function isDatabaseUrl(url: string): boolean {
  const scheme = schemeOf(url);
  const dialect = scheme === undefined ? undefined : dialectForScheme(scheme);
  if (scheme === undefined || dialect === undefined) return false;
  return (dialect.remote ? /^\/\/\S+$/ : /^.+$/).test(url.slice(scheme.length));
}

/** A file URL made absolute against `cwd` (`sqlite:data/x.sqlite` → `sqlite:/abs/data/x.sqlite`); server URLs as they are. */
export function resolveDatabaseUrl(url: string, cwd: string): string {
  const scheme = schemeOf(url);
  return (scheme && dialectForScheme(scheme)?.resolveUrl(url, cwd)) ?? url;
}

/** Opens a SqlClient for a database URL (`sqlite:FILE`, `postgres://…`, `mysql://…`). */
export function openSqlClient(url: string | DatabaseUrl, options: OpenOptions = {}): SqlClient {
  const parsed = typeof url === 'string' ? parseDatabaseUrl(url) : url;
  return dialectFor(parsed).openClient(parsed, options);
}
