import { hash } from 'node:crypto';
import type { AppManifest } from './types.js';

/** JSON with object keys sorted at every level, so equal values always give equal text. */
export function stableStringify(value: unknown): string {
  // Plain data (all a manifest holds) is written directly, which is several times faster than
  // a replacer; anything else takes JSON.stringify, so the text is the same either way.
  return writePlain(value) ?? JSON.stringify(value, sortKeys) ?? 'null';
}

function sortKeys(_key: string, value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  // No prototype: a key named __proto__ stays an ordinary key.
  const sorted: Record<string, unknown> = Object.create(null);
  for (const key of Object.keys(value).sort()) sorted[key] = (value as Record<string, unknown>)[key];
  return sorted;
}

const INDEX_KEY = /^(?:0|[1-9][0-9]*)$/;
/** What JSON.stringify escapes in a string (lone surrogates too): text without them is quoted as is. */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

function quoted(text: string): string {
  return NEEDS_ESCAPE.test(text) ? JSON.stringify(text) : `"${text}"`;
}

/**
 * What `JSON.stringify(value, sortKeys)` gives, for JSON-like data: strings, finite numbers,
 * booleans, null, arrays and plain objects. Undefined for anything else anywhere inside.
 */
function writePlain(value: unknown): string | undefined {
  switch (typeof value) {
    case 'string':
      return quoted(value);
    case 'number':
      return Number.isFinite(value) ? String(value) : undefined;
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) {
          const item = writePlain(value[i]);
          if (item === undefined) return undefined;
          out += i === 0 ? item : `,${item}`;
        }
        return `${out}]`;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) return undefined;
      if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return undefined;
      const keys = Object.keys(value).sort();
      let out = '{';
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i]!;
        // An object puts keys like "10" first, in numeric order: the replacer's output does too.
        if (isDigit(key.charCodeAt(0)) && INDEX_KEY.test(key)) return undefined;
        const item = writePlain((value as Record<string, unknown>)[key]);
        if (item === undefined) return undefined;
        out += `${i === 0 ? '' : ','}${quoted(key)}:${item}`;
      }
      return `${out}}`;
    }
    default:
      return undefined;
  }
}

function isDigit(code: number): boolean {
  return code >= 0x30 && code <= 0x39;
}

/** sha256 (hex) of the manifest after defaults: formatting, comments and key order do not change it. */
export function manifestHash(manifest: AppManifest): string {
  return hash('sha256', stableStringify(manifest));
}
