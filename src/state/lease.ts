/**
 * The leader lease (SPEC §8.1): one row of `appvisor_lease`, naming the replica that leads, the
 * term it leads under, and until when (the database server's clock, in ms: one clock for every
 * replica, whatever their own say). Taking the lease raises the term, and the term fences every
 * write of a reconcile (queries.ts), so a deposed leader's late write is refused.
 *
 * Each operation is one conditional statement, a compare-and-set the server serializes on the
 * row: of two replicas taking an expired lease at once, the second re-reads the row the first
 * wrote and changes nothing. Nothing here needs a session (a session-level lock leaks under
 * PgBouncer's transaction pooling and vanishes silently with its connection).
 */
import { dialectNamed } from '../dialects/registry.js';
import type { SqlClient } from '../providers/provider.js';
import { TABLES } from './dialect.js';
import type { Fence, LeaseView } from './types.js';

const { lease } = TABLES;
/** The one lease row's key. */
export const LEADER = 'leader';

function nowMs(client: SqlClient): string {
  return dialectNamed(client.dialect).store.nowMs;
}

/** The condition that fences a statement: the lease is still at the writer's term. */
export const AT_TERM = `EXISTS (SELECT 1 FROM ${lease} WHERE name = '${LEADER}' AND term = ?)`;

/**
 * Takes the lease for `holder` for `ttlMs` if nobody holds it or its holder's time is up, raising
 * the term; resolves with the new term, or undefined while another holds it. `force` takes it
 * whatever it stands at: for a process that holds the store's exclusive file lock (SQLite).
 */
export async function takeLease(
  client: SqlClient,
  holder: string,
  ttlMs: number,
  opts: { readonly force?: boolean } = {},
): Promise<Fence | undefined> {
  const now = nowMs(client);
  const free = opts.force ? '' : ` AND (holder IS NULL OR expires_at <= ${now})`;
  const changed = await client.execute(
    `UPDATE ${lease} SET holder = ?, term = term + 1, expires_at = ${now} + ?, acquired_at = ? WHERE name = '${LEADER}'${free}`,
    [holder, Math.round(ttlMs), new Date().toISOString()],
  );
  if (changed !== 1) return undefined;
  const view = await readLease(client);
  // Only a holder whose lease ran out before this read lets another take it in between.
  return view?.holder === holder ? { term: view.term } : undefined;
}

/**
 * Extends the lease of `holder` at `fence.term` by `ttlMs` from now, if it is still theirs and
 * has not run out (an expired lease is taken again, under a new term: its runs were stopped).
 */
export async function renewLease(
  client: SqlClient,
  holder: string,
  fence: Fence,
  ttlMs: number,
): Promise<boolean> {
  const now = nowMs(client);
  const changed = await client.execute(
    `UPDATE ${lease} SET expires_at = ${now} + ? WHERE name = '${LEADER}' AND holder = ? AND term = ? AND expires_at > ${now}`,
    [Math.round(ttlMs), holder, fence.term],
  );
  return changed === 1;
}

/** Gives the lease up at once (a clean shutdown), so another replica need not wait for it to run out. */
export async function releaseLease(client: SqlClient, holder: string, fence: Fence): Promise<void> {
  await client.execute(
    `UPDATE ${lease} SET holder = NULL, expires_at = 0 WHERE name = '${LEADER}' AND holder = ? AND term = ?`,
    [holder, fence.term],
  );
}

/** The lease as it stands: who holds it (absent: nobody, or their time is up) and the term. */
export async function readLease(client: SqlClient): Promise<LeaseView | undefined> {
  const [row] = await client.query<{
    holder: string | null;
    term: number | string;
    left_ms: number | string;
  }>(`SELECT holder, term, expires_at - ${nowMs(client)} AS left_ms FROM ${lease} WHERE name = ?`, [LEADER]);
  if (!row) return undefined;
  const left = Number(row.left_ms);
  const term = Number(row.term);
  return row.holder !== null && left > 0 ? { holder: row.holder, term, expiresInMs: left } : { term };
}

/** Raises the term without changing the holder (a process that holds the store's file lock, tests). */
export async function raiseTerm(client: SqlClient): Promise<Fence> {
  await client.execute(`UPDATE ${lease} SET term = term + 1 WHERE name = ?`, [LEADER]);
  return { term: await selectTerm(client) };
}

export async function selectTerm(client: SqlClient): Promise<number> {
  const [row] = await client.query<{ term: number | string }>(`SELECT term FROM ${lease} WHERE name = ?`, [
    LEADER,
  ]);
  return row ? Number(row.term) : 0;
}
