import type { PositionedProblem, Spots } from './check-file.js';
import { defaultDatabaseName } from './defaults.js';
import type { Position } from './source.js';
import type { AppManifest } from './types.js';

/** One file as the cross-file checks see it. */
export interface CrossCheckEntry {
  readonly file: string;
  /** The app name the file yields, valid or not. */
  readonly name: string | undefined;
  /** Set when the file is valid on its own. */
  readonly manifest: AppManifest | undefined;
  readonly spots: Spots;
}

interface Claim {
  readonly entry: CrossCheckEntry;
  readonly at: Position;
}

/**
 * Checks across files; every conflict is reported on each file involved, at the node that
 * conflicts: the same app name; names equal once `-` is read as `_` (they share a default
 * database name); the same database, connection database or schema; the same domain.
 */
export function crossCheck(entries: readonly CrossCheckEntry[]): Map<string, PositionedProblem[]> {
  const problems = new Map<string, PositionedProblem[]>();
  const report = (claim: Claim, message: string): void => {
    push(problems, claim.entry.file, { ...claim.at, message });
  };

  const byName = new Map<string, Claim[]>();
  const byDefaultDb = new Map<string, Claim[]>();
  for (const entry of entries) {
    if (entry.name === undefined) continue;
    const claim = { entry, at: entry.spots.name };
    push(byName, entry.name, claim);
    push(byDefaultDb, defaultDatabaseName(entry.name), claim);
  }
  // Nearly every group holds one file's own claim: those are skipped before anything is built.
  for (const [name, claims] of byName) {
    if (claims.length < 2) continue;
    for (const claim of others(claims))
      report(claim.self, `app name '${name}' is also used by ${claim.files}`);
  }
  for (const [dbName, claims] of byDefaultDb) {
    if (claims.length < 2 || new Set(claims.map((c) => c.entry.name)).size < 2) continue;
    for (const claim of claims) {
      const rivals = claims
        .filter((c) => c.entry.name !== claim.entry.name)
        .map((c) => `'${c.entry.name}' (${c.entry.file})`);
      report(
        claim,
        `app name '${claim.entry.name}' and ${rivals.join(', ')} both map to the database name '${dbName}'; ` +
          "choose names that differ in more than '-' and '_'",
      );
    }
  }

  const targets = new Map<string, Claim[]>();
  const targetLabels = new Map<string, string>();
  const domains = new Map<string, Claim[]>();
  for (const entry of entries) {
    const manifest = entry.manifest;
    if (!manifest) continue;
    const { key, label } = databaseTarget(manifest);
    push(targets, key, { entry, at: entry.spots.database });
    targetLabels.set(key, label);
    manifest.domains.forEach((domain, index) => {
      push(domains, domain.toLowerCase(), { entry, at: entry.spots.domains[index] ?? entry.spots.name });
    });
  }
  for (const [key, claims] of targets) {
    if (claims.length < 2 || explainedByNames(claims)) continue;
    for (const claim of others(claims))
      report(claim.self, `${targetLabels.get(key)} is also used by ${claim.files}`);
  }
  for (const [domain, claims] of domains) {
    if (claims.length < 2) continue;
    for (const claim of others(claims))
      report(claim.self, `domain '${domain}' is also used by ${claim.files}`);
  }
  return problems;
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** For each claim in a group of two or more files, the other files of the group. */
function* others(claims: readonly Claim[]): Generator<{ self: Claim; files: string }> {
  const files = [...new Set(claims.map((c) => c.entry.file))].sort();
  if (files.length < 2) return;
  for (const self of claims) {
    yield { self, files: files.filter((file) => file !== self.entry.file).join(', ') };
  }
}

function databaseTarget(manifest: AppManifest): { key: string; label: string } {
  const db = manifest.database;
  switch (db.mode) {
    case 'new-schema': {
      const schema = db.schema ?? manifest.name;
      return { key: `schema\0${schema.toLowerCase()}`, label: `schema '${schema}'` };
    }
    case 'new-connection': {
      const url = db.connection?.url ?? '';
      return {
        key: `connection\0${url}\0${db.name.toLowerCase()}`,
        label: `database '${db.name}' on ${redactUrl(url)}`,
      };
    }
    default:
      return { key: `database\0${db.name.toLowerCase()}`, label: `database '${db.name}'` };
  }
}

/**
 * True when every claim takes its database from its app name and the names already
 * conflict (same name, or equal once '-' is '_'): that error is reported once, by name.
 */
function explainedByNames(claims: readonly Claim[]): boolean {
  const derived = claims.every(({ entry }) => {
    const m = entry.manifest!;
    return m.database.mode === 'new-schema'
      ? m.database.schema === m.name
      : m.database.name === defaultDatabaseName(m.name);
  });
  return derived && new Set(claims.map(({ entry }) => defaultDatabaseName(entry.manifest!.name))).size === 1;
}

/** `postgres://host:5432` (no user, no password). */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}`;
  } catch {
    return 'the connection URL';
  }
}
