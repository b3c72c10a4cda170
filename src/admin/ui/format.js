/** Formatting of API values for display. Pure functions, no DOM. */

/** The placeholder for an empty value. */
export const NONE = '—';

/** How long the list shows an error before "show more". */
export const ERROR_PREVIEW = 60;

/**
 * A local date and time for an ISO timestamp, or the placeholder.
 *
 * @param {string | null | undefined} iso
 * @param {string} [empty]
 */
export function formatTime(iso, empty = NONE) {
  if (!iso) return empty;
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
}

/**
 * Where an app's data lives: `sqlite · app_blog`, `postgres · main/blog` for a schema.
 *
 * @param {{dialect: string | null, name: string, schema: string | null}} db
 */
export function formatTarget(db) {
  const target = db.schema ? `${db.name}/${db.schema}` : db.name;
  return `${db.dialect ?? 'main dialect'} · ${target}`;
}

/**
 * `crm-app v2 (crm)`: the application an app runs, with the settings key that picks it
 * (`default` for the default application); `—` when the server does not say.
 *
 * @param {{application?: {key: string | null, name: string, version: number}}} app
 */
export function formatApplication(app) {
  const a = app.application;
  if (!a) return NONE;
  return `${a.name} v${a.version} (${a.key ?? 'default'})`;
}

/**
 * `CODE: message`, the way errors read everywhere in the UI.
 *
 * @param {{code: string, message: string} | null | undefined} error
 */
export function formatError(error) {
  if (!error) return '';
  return error.code ? `${error.code}: ${error.message}` : error.message;
}

/**
 * What an operator must know beyond the status: a scheduled drop of the app's data, or an
 * operator's stop (who and when). Empty when there is nothing.
 *
 * @param {{dropAt?: string | null, intent?: {action: string, by: string, at: string} | null}} app
 */
export function formatNotice(app) {
  if (app.dropAt) return `Data drop scheduled for ${app.dropAt}; put the manifest back to cancel it`;
  if (app.intent && app.intent.action === 'stop') return `Stopped by ${app.intent.by} at ${app.intent.at}`;
  return '';
}

/**
 * `text` cut to `max` characters (on a word boundary when one is close) with an ellipsis.
 *
 * @param {string} text
 * @param {number} max
 */
export function truncate(text, max) {
  if (text.length <= max) return text;
  const cut = text.slice(0, max);
  const space = cut.lastIndexOf(' ');
  return `${(space > max * 0.6 ? cut.slice(0, space) : cut).trimEnd()}…`;
}

/**
 * `file:line:col: message`, as `appvisor validate` prints it.
 *
 * @param {{file: string, line: number, column: number, message: string}} error
 */
export function formatManifestError(error) {
  return `${error.file}:${error.line}:${error.column}: ${error.message}`;
}

/**
 * Where the Visit button goes: the app's first domain at the root of its admin (keeping this
 * page's protocol and port), else its path prefix on this host.
 *
 * @param {{name: string, domains: readonly string[]}} app
 * @param {{protocol: string, port: string}} here
 */
export function visitHref(app, here) {
  const domain = app.domains[0];
  if (domain) {
    try {
      const port = here.port ? `:${here.port}` : '';
      const url = new URL(`${here.protocol}//${domain}${port}/admin/`);
      // A domain that would smuggle a path, credentials or a query is not a domain.
      if (url.pathname === '/admin/' && !url.username && !url.password && !url.search && !url.hash) {
        return url.href;
      }
    } catch {
      // Not a host name: fall back to the path below.
    }
  }
  return `/apps/${encodeURIComponent(app.name)}/admin/`;
}
