/**
 * The statements on `appvisor_tokens`, written once for every dialect (`?` placeholders). The
 * table holds each admin token's hash, never the token, so every replica can check a token and
 * none can show it. Token writes are not fenced by the lease term: any replica may add one, and
 * an insert that never replaces decides between replicas adding the same name at once.
 */
import { createHash } from 'node:crypto';
import type { SqlClient } from '../providers/provider.js';
import { insertIfAbsent, TABLES } from './dialect.js';
import type { AdminTokenRecord, TokenScope } from './types.js';

const { tokens } = TABLES;

/** A use is noted at most this often per token, so a busy token is not written on every request. */
export const LAST_USED_RESOLUTION_MS = 60_000;

/**
 * The hash the store keeps of a token: SHA-256, lower-case hex. A fast hash is right here, not a
 * password hash (bcrypt, scrypt): the tokens are 256-bit random values, so there is nothing to
 * guess from a leaked hash, and a slow hash would only slow down every admin request.
 */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

interface TokenRow {
  readonly name: string;
  readonly hash: string;
  readonly scope: string;
  readonly created_at: string;
  readonly last_used_at: string | null;
  readonly revoked_at: string | null;
}

const COLUMNS = 'name, hash, scope, created_at, last_used_at, revoked_at';

function rowToToken(row: TokenRow): AdminTokenRecord {
  return {
    name: row.name,
    hash: row.hash,
    // Written only by this code's TokenScope; issue 12's commands check it on the way in.
    scope: row.scope as TokenScope,
    createdAt: row.created_at,
    ...(row.last_used_at ? { lastUsedAt: row.last_used_at } : {}),
    ...(row.revoked_at ? { revokedAt: row.revoked_at } : {}),
  };
}

async function selectTokenNamed(client: SqlClient, name: string): Promise<AdminTokenRecord | undefined> {
  const [row] = await client.query<TokenRow>(`SELECT ${COLUMNS} FROM ${tokens} WHERE name = ?`, [name]);
  return row ? rowToToken(row) : undefined;
}

/** Inserts the token unless one of its name exists, then reads back whichever is stored. */
export async function ensureTokenRow(client: SqlClient, token: AdminTokenRecord): Promise<AdminTokenRecord> {
  await insertIfAbsent(client, tokens, 'name', {
    name: token.name,
    hash: token.hash,
    scope: token.scope,
    created_at: token.createdAt,
    last_used_at: token.lastUsedAt ?? null,
    revoked_at: token.revokedAt ?? null,
  });
  const stored = await selectTokenNamed(client, token.name);
  if (stored) return stored;
  // Only a concurrent delete between the two statements gets here.
  throw new Error(`the admin token ${token.name} vanished while it was being stored`);
}

export async function selectTokens(client: SqlClient): Promise<AdminTokenRecord[]> {
  const rows = await client.query<TokenRow>(`SELECT ${COLUMNS} FROM ${tokens} ORDER BY name`);
  return rows.map(rowToToken);
}

/**
 * The token with `hash`, after noting its use: the UPDATE lands only when the stored use is
 * older than {@link LAST_USED_RESOLUTION_MS}, so replicas checking the same token write it once a
 * minute between them, and never on a revoked token (whose row is kept, revoked, as it was).
 * ISO times of one format compare as strings.
 */
export async function selectTokenByHash(
  client: SqlClient,
  hash: string,
  now = new Date(),
): Promise<AdminTokenRecord | undefined> {
  const cutoff = new Date(now.getTime() - LAST_USED_RESOLUTION_MS).toISOString();
  await client.execute(
    `UPDATE ${tokens} SET last_used_at = ? WHERE hash = ? AND revoked_at IS NULL AND (last_used_at IS NULL OR last_used_at < ?)`,
    [now.toISOString(), hash, cutoff],
  );
  const [row] = await client.query<TokenRow>(`SELECT ${COLUMNS} FROM ${tokens} WHERE hash = ?`, [hash]);
  return row ? rowToToken(row) : undefined;
}

/**
 * Revokes the token named `name`: its row stays, as a tombstone, with `revoked_at` set, so the
 * name is never taken by another token (the history's `token <name>` keeps meaning one token)
 * and a replica's `data/admin-token` cannot bring a revoked default back. Revoking a revoked
 * token changes nothing (its first revocation time stays). Undefined when there is none.
 */
export async function revokeTokenRow(
  client: SqlClient,
  name: string,
  now = new Date(),
): Promise<AdminTokenRecord | undefined> {
  await client.execute(`UPDATE ${tokens} SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL`, [
    now.toISOString(),
    name,
  ]);
  return selectTokenNamed(client, name);
}

export async function removeToken(client: SqlClient, name: string): Promise<boolean> {
  return (await client.execute(`DELETE FROM ${tokens} WHERE name = ?`, [name])) > 0;
}
