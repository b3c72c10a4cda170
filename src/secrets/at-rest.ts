/**
 * The state store's secrets at rest (SPEC §8.5): what a secrets row holds and what the store
 * answers. Every secret in a row (the current one and, during a rotation's grace, the previous
 * one) is sealed under the master key with the app's name as associated data (`main` for the
 * main app). Pure: the SQL is in state/queries.ts.
 */
import { AppvisorError } from '../errors.js';
import { kidOf } from '../runtime/jwt.js';
import type { ResealedRow, SecretRow, SpecRow } from '../state/queries.js';
import type { AppRecord, SecretSet } from '../state/types.js';
import { isSealed, type MasterKey, open, seal, sealedWith } from './envelope.js';

/** The refusal of a store opened without a master key (only `plan`'s reader has none). */
export function noMasterKey(name: string): AppvisorError {
  return new AppvisorError('MASTER_KEY_INVALID', {
    source: 'none',
    detail: `the state store was opened without a master key, so the secret of ${name} cannot be read or written`,
  });
}

/** Opens one stored value: sealed (with this key), or a plaintext one from before sealing. */
function openValue(stored: string, key: MasterKey, name: string): string {
  return isSealed(stored) ? open(stored, key, name) : stored;
}

/**
 * The set a row holds, opened. A previous secret whose grace is over is absent.
 * @throws AppvisorError MASTER_KEY_INVALID (no key, another key, or an altered value)
 */
export function openSecretRow(row: SecretRow, key: MasterKey | undefined, nowMs: number): SecretSet {
  if (!key) throw noMasterKey(row.name);
  const secret = openValue(row.secret, key, row.name);
  const current = { kid: row.kid ?? kidOf(secret), secret };
  if (row.previous_secret === null || row.previous_until === null) return { current };
  if (!(Date.parse(row.previous_until) > nowMs)) return { current };
  const previous = openValue(row.previous_secret, key, row.name);
  return {
    current,
    previous: { kid: row.previous_kid ?? kidOf(previous), secret: previous, until: row.previous_until },
  };
}

/** A new secret for `name`, sealed, with its key id. */
export function sealSecret(
  name: string,
  secret: string,
  key: MasterKey | undefined,
): { readonly sealed: string; readonly kid: string } {
  if (!key) throw noMasterKey(name);
  return { sealed: seal(secret, key, name), kid: kidOf(secret) };
}

/** The ids of the keys that sealed the rows' values, other than `key`'s (none: all open with it). */
export function foreignKeyIds(rows: readonly SecretRow[], key: MasterKey): string[] {
  const ids = new Set<string>();
  for (const row of rows) {
    for (const value of [row.secret, row.previous_secret]) {
      const id = value === null ? undefined : sealedWith(value);
      if (id !== undefined && id !== key.id) ids.add(id);
    }
  }
  return [...ids].sort();
}

/**
 * Refuses rows sealed with another key, naming the key ids (never a key): a replica that
 * generated its own `data/master-key` against a store sealed under another one stops here,
 * before it reads, writes or regenerates anything.
 */
export function refuseForeignKeys(rows: readonly SecretRow[], key: MasterKey): void {
  const ids = foreignKeyIds(rows, key);
  if (ids.length === 0) return;
  throw new AppvisorError('MASTER_KEY_INVALID', {
    source: key.source,
    detail: `the state store's secrets were sealed with key ${ids.join(', ')}, and this key is ${key.id}; give every replica the same key (APPVISOR_MASTER_KEY, or the same data/master-key file)`,
  });
}

/** The rows holding a plaintext secret (a store from before sealing), sealed under `key`. */
export function sealPlaintextRows(rows: readonly SecretRow[], key: MasterKey): ResealedRow[] {
  const out: ResealedRow[] = [];
  for (const row of rows) {
    const plainPrevious = row.previous_secret !== null && !isSealed(row.previous_secret);
    if (isSealed(row.secret) && !plainPrevious) continue;
    const set = openSecretRow(row, key, Number.NEGATIVE_INFINITY);
    out.push(resealed(row, set, key));
  }
  return out;
}

/**
 * Every row re-sealed from `from` to `to` (rekey). A previous secret whose grace is over is
 * dropped on the way.
 * @throws AppvisorError MASTER_KEY_INVALID when a row does not open with `from`
 */
export function resealRows(
  rows: readonly SecretRow[],
  from: MasterKey,
  to: MasterKey,
  nowMs: number,
): ResealedRow[] {
  refuseForeignKeys(rows, from);
  return rows.map((row) => resealed(row, openSecretRow(row, from, nowMs), to));
}

function resealed(row: SecretRow, set: SecretSet, to: MasterKey): ResealedRow {
  return {
    name: row.name,
    was: row.secret,
    secret: seal(set.current.secret, to, row.name),
    kid: set.current.kid,
    previous: set.previous && {
      secret: seal(set.previous.secret, to, row.name),
      kid: set.previous.kid,
      until: set.previous.until,
    },
  };
}

/** Where a record's sealed connection URL belongs: its app, and the field. */
function urlAad(name: string): string {
  return `${name}:database.connection.url`;
}

/** Whether a connection URL carries a password (one that cannot be parsed is taken to). */
function hasPassword(url: string): boolean {
  try {
    return new URL(url).password !== '';
  } catch {
    return url.includes('@');
  }
}

function withUrl(record: AppRecord, url: string): AppRecord {
  const { database } = record.spec;
  return { ...record, spec: { ...record.spec, database: { ...database, connection: { url } } } };
}

/**
 * The record as the store writes it: a `new-connection` URL with a password in it (as it was
 * after `${VAR}` interpolation) sealed under the master key. Without a key it is written as is
 * (only a store opened without one, which no command that writes records does).
 */
export function sealRecord(record: AppRecord, key: MasterKey | undefined): AppRecord {
  const url = record.spec.database.connection?.url;
  if (url === undefined || key === undefined || isSealed(url) || !hasPassword(url)) return record;
  return withUrl(record, seal(url, key, urlAad(record.name)));
}

/**
 * The record as read: its sealed connection URL opened. Without a key (`plan`'s reader when no
 * key is at hand) the URL stays sealed: the password is never shown, and such an app may show a
 * database change in the plan.
 * @throws AppvisorError MASTER_KEY_INVALID when another key sealed it
 */
export function openRecord(record: AppRecord, key: MasterKey | undefined): AppRecord {
  const url = record.spec.database.connection?.url;
  if (url === undefined || key === undefined || !isSealed(url)) return record;
  return withUrl(record, open(url, key, urlAad(record.name)));
}

/**
 * Stored specs rewritten by `change` (a record as far as its name and spec go); a spec that does
 * not parse, or that `change` leaves as it is, is skipped.
 */
export function rewriteSpecs(specs: readonly SpecRow[], change: (record: AppRecord) => AppRecord): SpecRow[] {
  const out: SpecRow[] = [];
  for (const row of specs) {
    let spec: AppRecord['spec'];
    try {
      spec = JSON.parse(row.spec) as AppRecord['spec'];
    } catch {
      continue;
    }
    if (typeof spec?.database !== 'object' || spec.database === null) continue;
    const record = { name: row.name, spec } as AppRecord;
    const changed = change(record);
    if (changed !== record) out.push({ ...row, spec: JSON.stringify(changed.spec) });
  }
  return out;
}

/** The spec rows whose plaintext connection URL is to be sealed under `key` (a store from before sealing). */
export function sealPlaintextSpecs(specs: readonly SpecRow[], key: MasterKey): SpecRow[] {
  return rewriteSpecs(specs, (r) => sealRecord(r, key));
}

/** The spec rows whose sealed connection URL is re-sealed from `from` to `to` (rekey). */
export function resealSpecs(specs: readonly SpecRow[], from: MasterKey, to: MasterKey): SpecRow[] {
  return rewriteSpecs(specs, (r) => {
    const url = r.spec.database.connection?.url;
    return url === undefined || !isSealed(url) ? r : sealRecord(openRecord(r, from), to);
  });
}
