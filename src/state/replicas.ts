/**
 * The replicas' heartbeats (table `appvisor_replicas`, layout 5): each replica upserts its own
 * row, every replica reads them all. Times are the database server's milliseconds, never a
 * process clock, so replicas on hosts whose clocks disagree still age each other's rows alike.
 */
import { dialectNamed } from '../dialects/registry.js';
import type { SqlClient } from '../providers/provider.js';
import { TABLES } from './dialect.js';
import { LEADER } from './lease.js';
import {
  APP_STATUSES,
  type ReplicaAppStatus,
  type ReplicaHeartbeat,
  type ReplicaInfo,
  type ReplicaList,
} from './types.js';

const { replicas, lease } = TABLES;

const COLUMNS = ['id', 'host', 'pid', 'version', 'started_at', 'last_seen_at', 'info'] as const;

interface ReplicaRow {
  id: string;
  host: string;
  pid: number | string;
  version: string;
  started_at: string;
  last_seen_at: number | string;
  info: string;
  leader: number | string | boolean;
  now_ms: number | string;
}

/** Upserts the replica's row with `last_seen_at` = the server's now. */
export async function upsertReplica(client: SqlClient, beat: ReplicaHeartbeat): Promise<void> {
  const { store } = dialectNamed(client.dialect);
  const values = COLUMNS.map((c) => (c === 'last_seen_at' ? store.nowMs : '?')).join(', ');
  const update = store.upsertClause(
    'id',
    COLUMNS.filter((c) => c !== 'id'),
  );
  await client.query(`INSERT INTO ${replicas} (${COLUMNS.join(', ')}) VALUES (${values})${update}`, [
    beat.id,
    beat.host,
    beat.pid,
    beat.version,
    beat.startedAt,
    JSON.stringify(beat.info),
  ]);
}

/**
 * Every row, sorted by id, with whether it holds the leader lease (the lease row names it and
 * has not expired by the server's clock) and the server's clock itself, in one statement so
 * both are read at the same instant. Without a lease row nobody is leader.
 */
export async function selectReplicas(client: SqlClient): Promise<ReplicaList> {
  const { nowMs } = dialectNamed(client.dialect).store;
  const rows = await client.query<ReplicaRow>(
    `SELECT r.id, r.host, r.pid, r.version, r.started_at, r.last_seen_at, r.info,
            CASE WHEN EXISTS (SELECT 1 FROM ${lease} l
                               WHERE l.name = ? AND l.holder = r.id AND l.expires_at > ${nowMs})
                 THEN 1 ELSE 0 END AS leader,
            ${nowMs} AS now_ms
       FROM ${replicas} r ORDER BY r.id`,
    [LEADER],
  );
  // No rows: the server's clock still, for the caller's ageing of nothing and for its tests.
  const nowRow = rows[0] ?? (await client.query<{ now_ms: number | string }>(`SELECT ${nowMs} AS now_ms`))[0];
  return {
    nowMs: Number(nowRow?.now_ms),
    replicas: rows.map((row) => ({
      id: row.id,
      host: row.host,
      pid: Number(row.pid),
      version: row.version,
      startedAt: row.started_at,
      lastSeenAt: Number(row.last_seen_at),
      leader: Number(row.leader) === 1 || row.leader === true,
      info: parseInfo(row.info),
    })),
  };
}

/** Moves the row's `last_seen_at` to the server's now; false when there is no row (pruned, deleted). */
export async function touchReplicaRow(client: SqlClient, id: string): Promise<boolean> {
  const { nowMs } = dialectNamed(client.dialect).store;
  // MySQL counts a row whose values did not change as not changed: within one millisecond of
  // the last write it would say 0. Found rows, not changed ones, are what this asks about.
  const changed = await client.execute(`UPDATE ${replicas} SET last_seen_at = ${nowMs} WHERE id = ?`, [id]);
  if (changed > 0) return true;
  const rows = await client.query(`SELECT 1 AS x FROM ${replicas} WHERE id = ?`, [id]);
  return rows.length > 0;
}

export async function removeReplica(client: SqlClient, id: string): Promise<void> {
  await client.execute(`DELETE FROM ${replicas} WHERE id = ?`, [id]);
}

export function pruneReplicaRows(client: SqlClient, olderThanMs: number): Promise<number> {
  const { nowMs } = dialectNamed(client.dialect).store;
  return client.execute(`DELETE FROM ${replicas} WHERE last_seen_at < ${nowMs} - ?`, [olderThanMs]);
}

export async function selectMaxConnections(client: SqlClient): Promise<number | undefined> {
  const sql = dialectNamed(client.dialect).store.maxConnections;
  if (sql === undefined) return undefined;
  const [row] = await client.query<{ n: number | string }>(sql);
  const n = Number(row?.n);
  return Number.isFinite(n) && n > 0 ? n : undefined;
}

const STATUSES = new Set<string>(APP_STATUSES);

/** A heartbeat's `applications`: the entries that name an application and a version. */
function parseApplications(raw: readonly unknown[]): { name: string; version: string }[] {
  return raw.flatMap((value) => {
    const entry = (value ?? {}) as Record<string, unknown>;
    return typeof entry.name === 'string' && typeof entry.version === 'string'
      ? [{ name: entry.name, version: entry.version }]
      : [];
  });
}

/**
 * The `info` column, read leniently: a row written by another appvisor version (or damaged)
 * shows with what can be read of it, never breaking the list of everyone else.
 */
export function parseInfo(text: string): ReplicaInfo {
  let raw: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed !== null && typeof parsed === 'object') raw = parsed as Record<string, unknown>;
  } catch {
    // Shown as an empty heartbeat.
  }
  const application = (raw.application ?? {}) as Record<string, unknown>;
  const apps: Record<string, ReplicaAppStatus> = {};
  if (raw.apps !== null && typeof raw.apps === 'object') {
    for (const [name, value] of Object.entries(raw.apps as Record<string, unknown>)) {
      const entry = (value ?? {}) as Record<string, unknown>;
      if (typeof entry.status !== 'string' || !STATUSES.has(entry.status)) continue;
      apps[name] = {
        status: entry.status as ReplicaAppStatus['status'],
        ...(typeof entry.startedAt === 'string' ? { startedAt: entry.startedAt } : {}),
      };
    }
  }
  return {
    appvisorVersion: typeof raw.appvisorVersion === 'string' ? raw.appvisorVersion : 'unknown',
    application: {
      name: typeof application.name === 'string' ? application.name : 'unknown',
      version: typeof application.version === 'string' ? application.version : 'unknown',
    },
    ...(Array.isArray(raw.applications) ? { applications: parseApplications(raw.applications) } : {}),
    connectionBudget: typeof raw.connectionBudget === 'number' ? raw.connectionBudget : 0,
    drift: Array.isArray(raw.drift) ? raw.drift.filter((d): d is string => typeof d === 'string') : [],
    apps,
    ...(raw.leaving === true ? { leaving: true as const } : {}),
    ...(raw.waiting === true ? { waiting: true as const } : {}),
    ...(typeof raw.adminUrl === 'string' && /^https?:\/\//.test(raw.adminUrl)
      ? { adminUrl: raw.adminUrl }
      : {}),
  };
}
