import { createHash } from 'node:crypto';
import type { AppManifest } from './types.js';

/** JSON with object keys sorted at every level, so equal values always give equal text. */
export function stableStringify(value: unknown): string {
  return JSON.stringify(value, sortKeys) ?? 'null';
}

function sortKeys(_key: string, value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  // No prototype: a key named __proto__ stays an ordinary key.
  const sorted: Record<string, unknown> = Object.create(null);
  for (const key of Object.keys(value).sort()) sorted[key] = (value as Record<string, unknown>)[key];
  return sorted;
}

/** sha256 (hex) of the manifest after defaults: formatting, comments and key order do not change it. */
export function manifestHash(manifest: AppManifest): string {
  return createHash('sha256').update(stableStringify(manifest)).digest('hex');
}
