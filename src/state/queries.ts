/**
 * The state store's statements, written once for every dialect (`?` placeholders). Every write
 * of a reconcile is fenced: a single statement that lands only while the store is still at the
 * writer's lock term (and, for a record, at the version it was read at); a refused write is
 * told apart afterwards (LOCK_LOST or STATE_CONFLICT) by reading what stands now.
 */
import { dialectNamed } from '../dialects/registry.js';
import type { BatchStatement } from '../dialects/types.js';
import { AppvisorError } from '../errors.js';
import type { SqlClient } from '../providers/provider.js';
import { insertIfAbsent, TABLES } from './dialect.js';
import { AT_TERM, LEADER, selectTerm } from './lease.js';
import {
  type AppRow,
  type HistoryRow,
  historyToRow,
  intentToColumn,
  recordToRow,
  rowToHistory,
  rowToRecord,
} from './rows.js';
import type { AppRecord, Fence, HistoryEntry, OperatorIntent } from './types.js';

const { apps, secrets, history, lease } = TABLES;
/** The FROM clause of a fenced INSERT … SELECT: one row while the lease is at the writer's term. */
const FROM_TERM = `FROM ${lease} WHERE name = '${LEADER}' AND term = ?`;
// `*`, not the column list: the read-only reader may meet a store one layout behind (it cannot
// migrate), and a column added later then simply reads as absent.
const APP_SELECT = `SELECT * FROM ${apps}`;

export async function selectRecords(client: SqlClient): Promise<AppRecord[]> {
  const rows = await client.query<AppRow>(`${APP_SELECT} ORDER BY name`);
  return rows.map(rowToRecord);
}

export async function selectRecordVersions(client: SqlClient): Promise<Map<string, number>> {
  const rows = await client.query<{ name: string; version: number | string }>(
    `SELECT name, version FROM ${apps}`,
  );
  return new Map(rows.map((r) => [r.name, Number(r.version)]));
}

export async function selectRecord(client: SqlClient, name: string): Promise<AppRecord | undefined> {
  const [row] = await client.query<AppRow>(`${APP_SELECT} WHERE name = ?`, [name]);
  return row ? rowToRecord(row) : undefined;
}

/** Why a fenced write changed nothing: the term moved on, or else the record did. */
async function refusal(
  client: SqlClient,
  target: string,
  fence: Fence,
  name: string,
  expected: number,
): Promise<AppvisorError> {
  const current = await selectTerm(client);
  if (current !== fence.term) return lockLost(target, fence, current);
  const [row] = await client.query<{ version: number | string }>(
    `SELECT version FROM ${apps} WHERE name = ?`,
    [name],
  );
  return new AppvisorError('STATE_CONFLICT', {
    app: name,
    expected,
    actual: row ? Number(row.version) : 'deleted',
  });
}

function lockLost(target: string, fence: Fence, current: number): AppvisorError {
  return new AppvisorError('LOCK_LOST', {
    target,
    detail: `its term ${fence.term} is over; the store is at term ${current}`,
  });
}

/** A fenced compare-and-set of the whole record (see StateStore.putRecord). */
export async function writeRecord(
  client: SqlClient,
  target: string,
  record: AppRecord,
  fence: Fence,
): Promise<AppRecord> {
  const { sql, params } = recordWrite(record, fence);
  const changed = await client.execute(sql, params);
  if (changed !== 1) throw await refusal(client, target, fence, record.name, record.version ?? 0);
  return { ...record, version: (record.version ?? 0) + 1 };
}

/** The single statement of a record's compare-and-set: it changes one row, or none when refused. */
function recordWrite(record: AppRecord, fence: Fence): BatchStatement {
  const expected = record.version ?? 0;
  const row = { ...recordToRow(record), version: expected + 1 };
  const columns = Object.keys(row);
  if (expected === 0) {
    // INSERT … SELECT: the row goes in only at the writer's term, and only if no record exists.
    return {
      sql: `INSERT INTO ${apps} (${columns.join(', ')}) SELECT ${columns.map(() => '?').join(', ')} ${FROM_TERM} AND NOT EXISTS (SELECT 1 FROM ${apps} WHERE name = ?)`,
      params: [...Object.values(row), fence.term, record.name],
      expect: 1,
    };
  }
  const others = columns.filter((c) => c !== 'name');
  return {
    sql: `UPDATE ${apps} SET ${others.map((c) => `${c} = ?`).join(', ')} WHERE name = ? AND version = ? AND ${AT_TERM}`,
    params: [...others.map((c) => row[c as keyof typeof row]), record.name, expected, fence.term],
    expect: 1,
  };
}

/**
 * The operator's intent, as a compare-and-set on the version read (the reconcile's own record
 * writes never touch the column). Not fenced by the term: any process serving the admin API
 * may record intent; the version keeps it from being lost under a reconcile's write.
 */
export async function writeIntent(
  client: SqlClient,
  record: AppRecord,
  intent: OperatorIntent,
): Promise<AppRecord | undefined> {
  const version = record.version ?? 0;
  const changed = await client.execute(
    `UPDATE ${apps} SET operator_intent = ?, version = ? WHERE name = ? AND version = ?`,
    [intentToColumn(intent), version + 1, record.name, version],
  );
  return changed === 1 ? { ...record, intent, version: version + 1 } : undefined;
}

export async function removeRecord(
  client: SqlClient,
  target: string,
  name: string,
  version: number,
  fence: Fence,
): Promise<void> {
  const changed = await client.execute(`DELETE FROM ${apps} WHERE name = ? AND version = ? AND ${AT_TERM}`, [
    name,
    version,
    fence.term,
  ]);
  if (changed !== 1) throw await refusal(client, target, fence, name, version);
}

export async function selectSecret(client: SqlClient, name: string): Promise<string | undefined> {
  const [row] = await client.query<{ secret: string }>(`SELECT secret FROM ${secrets} WHERE name = ?`, [
    name,
  ]);
  return row?.secret;
}

/** The names that have a secret, sorted (no value read). */
export async function selectSecretNames(client: SqlClient): Promise<string[]> {
  const rows = await client.query<{ name: string }>(`SELECT name FROM ${secrets} ORDER BY name`);
  return rows.map((r) => r.name);
}

/** A secrets row as stored: every secret in it sealed (except in a store from before sealing). */
export interface SecretRow {
  readonly name: string;
  readonly secret: string;
  readonly kid: string | null;
  readonly previous_secret: string | null;
  readonly previous_kid: string | null;
  readonly previous_until: string | null;
}

const SECRET_COLUMNS = 'name, secret, kid, previous_secret, previous_kid, previous_until';

export async function selectSecretRow(client: SqlClient, name: string): Promise<SecretRow | undefined> {
  const [row] = await client.query<SecretRow>(`SELECT ${SECRET_COLUMNS} FROM ${secrets} WHERE name = ?`, [
    name,
  ]);
  return row;
}

export function selectSecretRows(client: SqlClient): Promise<SecretRow[]> {
  return client.query<SecretRow>(`SELECT ${SECRET_COLUMNS} FROM ${secrets} ORDER BY name`);
}

/**
 * Inserts the (sealed) secret unless one exists (under `fence`: only at the writer's term), then
 * reads back whichever row is stored.
 */
export async function ensureSecretRow(
  client: SqlClient,
  target: string,
  secret: { readonly name: string; readonly sealed: string; readonly kid: string },
  fence: Fence | undefined,
): Promise<SecretRow> {
  const { name } = secret;
  const row = { name, secret: secret.sealed, kid: secret.kid, created_at: new Date().toISOString() };
  if (fence) {
    await client.execute(
      `INSERT INTO ${secrets} (name, secret, kid, created_at) SELECT ?, ?, ?, ? ${FROM_TERM} AND NOT EXISTS (SELECT 1 FROM ${secrets} WHERE name = ?)`,
      [row.name, row.secret, row.kid, row.created_at, fence.term, name],
    );
  } else {
    await insertIfAbsent(client, secrets, 'name', row);
  }
  const stored = await selectSecretRow(client, name);
  if (stored !== undefined) return stored;
  const current = fence ? await selectTerm(client) : undefined;
  if (fence && current !== fence.term) throw lockLost(target, fence, current!);
  // Only a concurrent delete between the two statements gets here.
  throw new Error(`the secret of ${name} vanished while it was being stored`);
}

/**
 * A rotation in one transaction, fenced: the current secret moves to `previous_*` (until
 * `until`), the new one takes its place; the versions of the records whose tokens change are
 * raised (the change feed's signal to the other replicas: `all` for the main app's secret,
 * which every `shared` app and the main app follow); the history entry is appended.
 */
export async function rotateSecretRow(
  client: SqlClient,
  target: string,
  rotation: {
    readonly name: string;
    readonly sealed: string;
    readonly kid: string;
    readonly until: string;
    readonly allRecords: boolean;
    readonly entry: HistoryEntry;
    readonly keep: number;
  },
  fence: Fence,
): Promise<void> {
  const { name } = rotation;
  const statements: BatchStatement[] = [
    {
      // Assignments in this order: MySQL evaluates them left to right (the others on the old row).
      sql: `UPDATE ${secrets} SET previous_secret = secret, previous_kid = kid, previous_until = ?, secret = ?, kid = ? WHERE name = ? AND ${AT_TERM}`,
      params: [rotation.until, rotation.sealed, rotation.kid, name, fence.term],
      expect: 1,
    },
    rotation.allRecords
      ? { sql: `UPDATE ${apps} SET version = version + 1`, params: [] }
      : { sql: `UPDATE ${apps} SET version = version + 1 WHERE name = ?`, params: [name] },
    ...historyWrites(rotation.entry, rotation.keep, fence),
  ];
  const refused = await dialectNamed(client.dialect).store.executeBatch(client, statements);
  if (refused === undefined) return;
  const current = await selectTerm(client);
  if (current !== fence.term) throw lockLost(target, fence, current);
  throw new AppvisorError('APP_NOT_FOUND', { app: name });
}

/** A record's applied manifest as stored (JSON text), at its version. */
export interface SpecRow {
  readonly name: string;
  readonly version: number;
  readonly spec: string;
}

/** Every record's spec, unparsed: a damaged record must not stop what reads them all here. */
export async function selectSpecs(client: SqlClient): Promise<SpecRow[]> {
  const rows = await client.query<{ name: string; version: number | string; spec: unknown }>(
    `SELECT name, version, spec FROM ${apps}`,
  );
  return rows.map((r) => ({
    name: r.name,
    version: Number(r.version),
    spec: typeof r.spec === 'string' ? r.spec : JSON.stringify(r.spec),
  }));
}

/** A secrets row re-sealed: written only if the row still holds `was` (its secret as read). */
export interface ResealedRow {
  readonly name: string;
  readonly was: string;
  readonly secret: string;
  readonly kid: string;
  readonly previous: { readonly secret: string; readonly kid: string; readonly until: string } | undefined;
}

/**
 * Writes re-sealed rows in one transaction. Fenced (`rekey`): every row must land, else nothing
 * does. Unfenced (plaintext sealed on open): a row another process sealed first is left as it is.
 */
export async function writeResealed(
  client: SqlClient,
  target: string,
  rows: readonly ResealedRow[],
  fence: Fence | undefined,
  specs: readonly SpecRow[] = [],
): Promise<void> {
  if (rows.length === 0 && specs.length === 0) return;
  const statements: BatchStatement[] = rows.map((r) => ({
    sql: `UPDATE ${secrets} SET secret = ?, kid = ?, previous_secret = ?, previous_kid = ?, previous_until = ? WHERE name = ? AND secret = ?${fence ? ` AND ${AT_TERM}` : ''}`,
    params: [
      r.secret,
      r.kid,
      r.previous?.secret ?? null,
      r.previous?.kid ?? null,
      r.previous?.until ?? null,
      r.name,
      r.was,
      ...(fence ? [fence.term] : []),
    ],
    ...(fence ? { expect: 1 } : {}),
  }));
  // A record's sealed connection URL: its spec rewritten at the version read, which stays (the
  // spec means the same), so a reconcile that read the record is not set back.
  for (const spec of specs) {
    statements.push({
      sql: `UPDATE ${apps} SET spec = ? WHERE name = ? AND version = ?${fence ? ` AND ${AT_TERM}` : ''}`,
      params: [spec.spec, spec.name, spec.version, ...(fence ? [fence.term] : [])],
      ...(fence ? { expect: 1 } : {}),
    });
  }
  const refused = await dialectNamed(client.dialect).store.executeBatch(client, statements);
  if (refused === undefined || !fence) return;
  const current = await selectTerm(client);
  if (current !== fence.term) throw lockLost(target, fence, current);
  const name = refused < rows.length ? rows[refused]!.name : specs[refused - rows.length]!.name;
  throw new AppvisorError('STATE_STORE_FAILED', {
    target,
    detail: `the secrets of ${name} changed while they were re-sealed; nothing was changed, run it again`,
  });
}

export async function selectHistory(client: SqlClient, app: string, limit: number): Promise<HistoryEntry[]> {
  const rows = await client.query<HistoryRow>(
    // `*`: a reader on a store one layout behind lacks the newer columns (by_token).
    `SELECT * FROM ${history} WHERE app = ? ORDER BY id DESC LIMIT ?`,
    [app, limit],
  );
  return rows.map(rowToHistory);
}

/**
 * The last writes of a reconcile in one transaction: the record's compare-and-set (when given)
 * and its history entry. Either both land or neither does; the refusal is told apart afterwards.
 */
export async function finishRun(
  client: SqlClient,
  target: string,
  run: { readonly record: AppRecord | undefined; readonly entry: HistoryEntry; readonly keep: number },
  fence: Fence,
): Promise<AppRecord | undefined> {
  const { record, entry, keep } = run;
  const statements = [...(record ? [recordWrite(record, fence)] : []), ...historyWrites(entry, keep, fence)];
  const refused = await dialectNamed(client.dialect).store.executeBatch(client, statements);
  if (refused === undefined) return record && { ...record, version: (record.version ?? 0) + 1 };
  if (record && refused === 0) throw await refusal(client, target, fence, record.name, record.version ?? 0);
  throw lockLost(target, fence, await selectTerm(client));
}

/**
 * A fenced append, then the trim to the newest `keep` entries of the app. The cut-off id comes
 * from a derived table: MySQL allows neither LIMIT in an IN subquery nor the target table in a
 * DELETE's subquery, but it materializes a derived table first, and so it is one statement on
 * every dialect.
 */
function historyWrites(entry: HistoryEntry, keep: number, fence: Fence): BatchStatement[] {
  const row = historyToRow(entry);
  const columns = Object.keys(row);
  return [
    {
      sql: `INSERT INTO ${history} (${columns.join(', ')}) SELECT ${columns.map(() => '?').join(', ')} ${FROM_TERM}`,
      params: [...Object.values(row), fence.term],
      expect: 1,
    },
    {
      sql: `DELETE FROM ${history} WHERE app = ? AND id <= (SELECT id FROM (SELECT id FROM ${history} WHERE app = ? ORDER BY id DESC LIMIT 1 OFFSET ?) AS cut)`,
      params: [entry.app, entry.app, keep],
    },
  ];
}
