/**
 * The document `appvisor state export` prints and `plan --state FILE` reads (SPEC §8.7): what
 * the planner needs, without a single secret. The applied records (connection URLs with their
 * password as `***`, never sealed; secrets only as "has one"), and what an online plan would
 * observe on the database servers, so a plan made from it offline is the online plan.
 */
import { AppvisorError, type ErrorSummary, isErrorCode } from '../errors.js';
import type { CatalogEntry, Dialect, Leftover } from '../providers/provider.js';
import type { AppRecord } from './types.js';

export const STATE_EXPORT_FORMAT = 'appvisor-state';
export const STATE_EXPORT_VERSION = 1;

/** What one database server held when the export was made. */
export interface ExportedServer {
  readonly dialect: Dialect;
  /** Redacted, as targets and inventory items name it. */
  readonly server: string;
  /** Its databases (SQLite: the files in the data folder), each with its ownership marker. */
  readonly databases?: readonly CatalogEntry[];
  /** PostgreSQL main server: the schemas of the main database. */
  readonly schemas?: readonly CatalogEntry[];
  /** The leftovers of interrupted creates that carry this store's marker. */
  readonly leftovers?: readonly Leftover[];
  /** Set instead of the above when the server could not be read: an online plan meets it too. */
  readonly error?: ErrorSummary;
}

/** Whether an app's data was empty (asked online only when its owning application changes). */
export interface ExportedDataEmpty {
  readonly dialect: Dialect;
  readonly server: string;
  readonly kind: 'database' | 'schema';
  readonly database: string;
  readonly schema?: string;
  readonly empty: boolean;
}

export interface StateExport {
  readonly format: typeof STATE_EXPORT_FORMAT;
  readonly version: typeof STATE_EXPORT_VERSION;
  /** ISO time. */
  readonly exportedAt: string;
  /** The state store's id (null: no store yet, a fresh main database). */
  readonly storeId: string | null;
  /** The main database as the planner names it (dialect, redacted server, database). */
  readonly main: { readonly dialect: Dialect; readonly server: string; readonly database: string };
  readonly hasMainSecret: boolean;
  /** The names that have a secret in the store (never a value). */
  readonly secrets: readonly string[];
  readonly records: readonly AppRecord[];
  readonly servers: readonly ExportedServer[];
  readonly dataEmpty: readonly ExportedDataEmpty[];
  /** What a first install into the main database would refuse (without mainDatabase.adopt). */
  readonly mainRefusals: readonly ErrorSummary[];
}

/** A server's key, one per dialect and redacted name: how the export and its readers tell servers apart. */
export function serverKey(at: { readonly dialect: string; readonly server: string }): string {
  return `${at.dialect} ${at.server}`;
}

const HOW = 'make it with `appvisor state export > FILE`';

/**
 * Reads an export. A file that is not JSON, cut short, of another format or version, or missing
 * what the planner needs throws STATE_EXPORT_INVALID saying so; nothing is guessed.
 */
export function parseStateExport(text: string, file: string): StateExport {
  const invalid = (detail: string) => new AppvisorError('STATE_EXPORT_INVALID', { file, detail });
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw invalid(`not complete JSON (${why}); ${HOW}`);
  }
  if (!isObject(doc) || doc.format !== STATE_EXPORT_FORMAT) {
    throw invalid(`not an appvisor state export (no "format": "${STATE_EXPORT_FORMAT}"); ${HOW}`);
  }
  if (doc.version !== STATE_EXPORT_VERSION) {
    throw invalid(
      `version ${JSON.stringify(doc.version)}, this appvisor reads version ${STATE_EXPORT_VERSION}; export it again with this appvisor`,
    );
  }
  const missing = (field: string, what: string) =>
    invalid(`"${field}" is missing or not ${what}; export it again (was the file cut short?)`);
  if (typeof doc.exportedAt !== 'string') throw missing('exportedAt', 'a time');
  if (doc.storeId !== null && typeof doc.storeId !== 'string') throw missing('storeId', 'a string or null');
  const main = doc.main;
  if (!isObject(main) || !isDialect(main.dialect) || !isString(main.server) || !isString(main.database)) {
    throw missing('main', 'the main database (dialect, server, database)');
  }
  if (typeof doc.hasMainSecret !== 'boolean') throw missing('hasMainSecret', 'true or false');
  if (!isArray(doc.secrets, isString)) throw missing('secrets', 'a list of names');
  if (!isArray(doc.records, isRecord)) throw missing('records', 'a list of records');
  if (!isArray(doc.servers, isServer)) throw missing('servers', 'a list of servers');
  if (!isArray(doc.dataEmpty, isDataEmpty)) throw missing('dataEmpty', 'a list of answers');
  if (!isArray(doc.mainRefusals, isSummary)) throw missing('mainRefusals', 'a list of errors');
  return doc as unknown as StateExport;
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function isString(x: unknown): x is string {
  return typeof x === 'string';
}

function isArray(x: unknown, each: (item: unknown) => boolean): boolean {
  return Array.isArray(x) && x.every(each);
}

function isDialect(x: unknown): x is Dialect {
  return x === 'sqlite' || x === 'postgres' || x === 'mysql';
}

function isSummary(x: unknown): boolean {
  return isObject(x) && isErrorCode(x.code) && isString(x.message);
}

function isEntry(x: unknown): boolean {
  return isObject(x) && isString(x.name) && (x.owner === undefined || isString(x.owner));
}

/** A record as far as the planner reads it without a check of its own (name, spec, inventory). */
function isRecord(x: unknown): boolean {
  return (
    isObject(x) &&
    isString(x.name) &&
    isString(x.specHash) &&
    isObject(x.spec) &&
    isObject(x.spec.database) &&
    isArray(x.inventory, isObject) &&
    typeof x.hasSecret === 'boolean' &&
    isString(x.status)
  );
}

function isServer(x: unknown): boolean {
  if (!isObject(x) || !isDialect(x.dialect) || !isString(x.server)) return false;
  if (x.error !== undefined) return isSummary(x.error);
  return (
    isArray(x.databases, isEntry) &&
    (x.schemas === undefined || isArray(x.schemas, isEntry)) &&
    isArray(x.leftovers, isEntry)
  );
}

function isDataEmpty(x: unknown): boolean {
  return (
    isObject(x) &&
    isDialect(x.dialect) &&
    isString(x.server) &&
    (x.kind === 'database' || x.kind === 'schema') &&
    isString(x.database) &&
    typeof x.empty === 'boolean'
  );
}
