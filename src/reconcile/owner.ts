/**
 * Ownership markers: what appvisor writes on a database or schema it creates, so a later run
 * (possibly after a crash between the CREATE and the record update) can tell its own objects
 * from foreign ones. The store id keeps two appvisor installations on one server apart.
 */

const PREFIX = 'appvisor:';

/** The marker for objects appvisor (state store `storeId`) creates for `app`. */
export function ownerMarker(storeId: string, app: string): string {
  return `${PREFIX}${storeId}:${app}`;
}

/** The parts of a marker, or undefined when `marker` is not one of appvisor's. */
export function parseOwner(
  marker: string | undefined,
): { readonly storeId: string; readonly app: string } | undefined {
  if (marker === undefined || !marker.startsWith(PREFIX)) return undefined;
  const rest = marker.slice(PREFIX.length);
  const colon = rest.indexOf(':');
  if (colon <= 0 || colon === rest.length - 1) return undefined;
  const app = rest.slice(colon + 1);
  if (app.includes(':')) return undefined;
  return { storeId: rest.slice(0, colon), app };
}
