/**
 * Records and history entries ⇄ table rows. JSON fields are stored as text on every dialect;
 * optional fields are NULL in the table and absent (not `undefined`) in the objects.
 */
import { type ErrorCode, type ErrorSummary, isErrorCode } from '../errors.js';
import type { AppManifest } from '../manifests/types.js';
import type {
  AppRecord,
  AppRecordError,
  AppStatus,
  HistoryEntry,
  InventoryItem,
  OperatorIntent,
  ReconcileOutcome,
} from './types.js';

export const APP_COLUMNS = [
  'name',
  'file',
  'spec',
  'spec_hash',
  'inventory',
  'has_secret',
  'status',
  'last_error',
  'created_at',
  'updated_at',
  'last_reconciled_at',
  'data_version',
  'application',
  'drop_at',
  'operator_intent',
  'version',
] as const;

export const HISTORY_COLUMNS = [
  'app',
  'reconcile_id',
  'at',
  'outcome',
  'steps',
  'error',
  'duration_ms',
  'by_token',
] as const;

export type AppRow = Record<(typeof APP_COLUMNS)[number], unknown>;
export type HistoryRow = Record<(typeof HISTORY_COLUMNS)[number], unknown>;

/** Thrown for a row whose JSON cannot be read; the store turns it into STATE_STORE_FAILED. */
export class CorruptRowError extends Error {
  override readonly name = 'CorruptRowError';
}

function parseJson<T>(value: unknown, what: string): T {
  try {
    return JSON.parse(String(value)) as T;
  } catch (err) {
    throw new CorruptRowError(`${what} is not valid JSON (${(err as Error).message})`);
  }
}

/**
 * A stored error's code that this appvisor does not know (a newer version wrote it, or the row
 * was edited) reads back as the app's generic failure; the stored code stays in the message.
 */
export const UNKNOWN_STORED_CODE: ErrorCode = 'APP_ERROR';

/** A stored `{code, message}` read back with a registry code (see {@link UNKNOWN_STORED_CODE}). */
function storedError(value: unknown, what: string): ErrorSummary & { readonly at?: string } {
  const raw = parseJson<unknown>(value, what);
  if (typeof raw !== 'object' || raw === null) throw new CorruptRowError(`${what} is not an error object`);
  const { code, message, at } = raw as { code?: unknown; message?: unknown; at?: unknown };
  const text = typeof message === 'string' ? message : '';
  const known = isErrorCode(code);
  return {
    code: known ? code : UNKNOWN_STORED_CODE,
    message: known ? text : `${text} (stored with code ${String(code)}, which this appvisor does not know)`,
    ...(at === undefined || at === null ? {} : { at: String(at) }),
  };
}

function optionalString(value: unknown): string | undefined {
  return value === null || value === undefined ? undefined : String(value);
}

/**
 * The columns a record write replaces: everything but the operator's intent (it has a writer
 * of its own, setIntent) and the version (the compare-and-set sets it).
 */
export function recordToRow(record: AppRecord): Omit<AppRow, 'operator_intent' | 'version'> {
  return {
    name: record.name,
    file: record.file,
    spec: JSON.stringify(record.spec),
    spec_hash: record.specHash,
    inventory: JSON.stringify(record.inventory),
    has_secret: record.hasSecret ? 1 : 0,
    status: record.status,
    last_error: record.lastError === undefined ? null : JSON.stringify(record.lastError),
    created_at: record.createdAt,
    updated_at: record.updatedAt,
    last_reconciled_at: record.lastReconciledAt ?? null,
    data_version: record.dataVersion ?? null,
    application: record.application ?? null,
    drop_at: record.dropAt ?? null,
  };
}

export function intentToColumn(intent: OperatorIntent): string {
  return JSON.stringify(intent);
}

export function rowToRecord(row: AppRow): AppRecord {
  const name = String(row.name);
  const stored = row.last_error == null ? undefined : storedError(row.last_error, `${name}.last_error`);
  const lastError: AppRecordError | undefined = stored && { ...stored, at: stored.at ?? '' };
  const lastReconciledAt = optionalString(row.last_reconciled_at);
  return {
    name,
    // `== null`: a reader on a store one layout behind has no such column (its records are at 1).
    version: row.version == null ? 1 : Number(row.version),
    file: String(row.file),
    spec: parseJson<AppManifest>(row.spec, `${name}.spec`),
    specHash: String(row.spec_hash),
    inventory: parseJson<InventoryItem[]>(row.inventory, `${name}.inventory`),
    hasSecret: Number(row.has_secret) === 1,
    status: String(row.status) as AppStatus,
    ...(lastError ? { lastError } : {}),
    createdAt: String(row.created_at),
    updatedAt: String(row.updated_at),
    ...(lastReconciledAt ? { lastReconciledAt } : {}),
    ...(row.data_version === null || row.data_version === undefined
      ? {}
      : { dataVersion: Number(row.data_version) }),
    // `== null`: a reader on a store one layout behind has no such column at all.
    ...(row.application == null ? {} : { application: String(row.application) }),
    ...(row.drop_at == null ? {} : { dropAt: String(row.drop_at) }),
    ...(row.operator_intent == null
      ? {}
      : { intent: parseJson<OperatorIntent>(row.operator_intent, `${name}.operator_intent`) }),
  };
}

export function historyToRow(entry: HistoryEntry): HistoryRow {
  return {
    app: entry.app,
    reconcile_id: entry.reconcileId,
    at: entry.at,
    outcome: entry.outcome,
    steps: JSON.stringify(entry.steps),
    error: entry.error === undefined ? null : JSON.stringify(entry.error),
    duration_ms: Math.round(entry.durationMs),
    by_token: entry.by ?? null,
  };
}

export function rowToHistory(row: HistoryRow): HistoryEntry {
  const what = `history of ${String(row.app)}`;
  const stored = row.error == null ? undefined : storedError(row.error, what);
  const error: HistoryEntry['error'] = stored && { code: stored.code, message: stored.message };
  return {
    app: String(row.app),
    reconcileId: String(row.reconcile_id),
    at: String(row.at),
    outcome: String(row.outcome) as ReconcileOutcome,
    steps: parseJson<HistoryEntry['steps']>(row.steps, what),
    ...(error ? { error } : {}),
    durationMs: Number(row.duration_ms),
    // `== null`: a reader on a store one layout behind has no such column at all.
    ...(row.by_token == null ? {} : { by: String(row.by_token) }),
  };
}
