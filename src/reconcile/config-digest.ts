import { createHash } from 'node:crypto';

/**
 * An app's `config` as a state export keeps it: one digest of the whole object, never its
 * values (a manifest may fill config with `${VAR}` secrets). An offline plan digests the
 * manifests' config the same way, so a change of any value still shows as a config change.
 * The digest is of canonical JSON (keys sorted at every level), as the planner compares config
 * regardless of key order.
 */
export function configDigest(config: Readonly<Record<string, unknown>>): Readonly<Record<string, unknown>> {
  const hash = createHash('sha256').update('appvisor config v1\0').update(canonicalJson(config));
  return { sha256: hash.digest('hex') };
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
