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

/**
 * What `JSON.stringify(value, sortKeys)` gives, for JSON-like data: strings, finite numbers,
 * booleans, null, arrays and plain objects. Undefined for anything else anywhere inside.
 * The pieces go into one list joined once: hashing thousands of manifests then allocates a
 * fraction of what concatenating each piece did.
 */
function writePlain(value: unknown): string | undefined {
  const parts: string[] = [];
  return write(value, parts) ? parts.join('') : undefined;
}

function write(value: unknown, parts: string[]): boolean {
  switch (typeof value) {
    case 'string':
      if (NEEDS_ESCAPE.test(value)) parts.push(JSON.stringify(value));
      else parts.push('"', value, '"');
      return true;
    case 'number':
      if (!Number.isFinite(value)) return false;
      parts.push(String(value));
      return true;
    case 'boolean':
      parts.push(value ? 'true' : 'false');
      return true;
    case 'object':
      if (value === null) {
        parts.push('null');
        return true;
      }
      return Array.isArray(value) ? writeArray(value, parts) : writeObject(value, parts);
    default:
      return false;
  }
}

function writeArray(value: readonly unknown[], parts: string[]): boolean {
  parts.push('[');
  for (let i = 0; i < value.length; i++) {
    if (i > 0) parts.push(',');
    if (!write(value[i], parts)) return false;
  }
  parts.push(']');
  return true;
}

function writeObject(value: object, parts: string[]): boolean {
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return false;
  const keys = sortedKeys(value);
  parts.push('{');
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    // An object puts keys like "10" first, in numeric order: the replacer's output does too.
    if (isDigit(key.charCodeAt(0)) && INDEX_KEY.test(key)) return false;
    if (NEEDS_ESCAPE.test(key)) parts.push(i === 0 ? '' : ',', JSON.stringify(key), ':');
    else parts.push(i === 0 ? '"' : ',"', key, '":');
    if (!write((value as Record<string, unknown>)[key], parts)) return false;
  }
  parts.push('}');
  return true;
}

/**
 * The own keys in the order Array#sort gives them (by UTF-16 code units), sorted in place by
 * insertion: an object has few keys, often already in order, and sort() allocates far more.
 */
function sortedKeys(value: object): string[] {
  const keys = Object.keys(value);
  for (let i = 1; i < keys.length; i++) {
    const key = keys[i]!;
    let j = i - 1;
    while (j >= 0 && keys[j]! > key) {
      keys[j + 1] = keys[j]!;
      j--;
    }
    keys[j + 1] = key;
  }
  return keys;
}

function isDigit(code: number): boolean {
  return code >= 0x30 && code <= 0x39;
}

/** sha256 (hex) of the manifest after defaults: formatting, comments and key order do not change it. */
export function manifestHash(manifest: AppManifest): string {
  return hash('sha256', stableStringify(manifest));
}
