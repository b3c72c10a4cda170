/**
 * A route of an admin API reached at `base`: resolved under the base's own path, so an admin URL
 * behind a path prefix (`https://ops.example.com/appvisor`) keeps it, whether or not it ends in `/`.
 */
export function urlUnder(base: string, route: string): URL {
  return new URL(route, base.endsWith('/') ? base : `${base}/`);
}
