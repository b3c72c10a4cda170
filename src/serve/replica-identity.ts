/** Who this `serve` process is among the replicas on one state store: named in the lease, its heartbeat, its change announcements and the admin API. */
import crypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';

export interface ReplicaIdentity {
  /** `<hostname>-<pid>-<4 hex>`: the random part tells apart two processes that reuse a pid (containers). */
  readonly id: string;
  readonly host: string;
  readonly pid: number;
  /** When this process started serving (ISO). */
  readonly startedAt: string;
}

export function createReplicaIdentity(): ReplicaIdentity {
  const host = os.hostname();
  const pid = process.pid;
  return {
    id: `${host}-${pid}-${crypto.randomBytes(2).toString('hex')}`,
    host,
    pid,
    startedAt: new Date().toISOString(),
  };
}

/** Who holds a lease, as a message says it: the pid and host read back from a replica id. */
export function describeHolder(id: string): string {
  const match = /^(.*)-(\d+)-[0-9a-f]{4}$/.exec(id);
  return match ? `${id} (pid ${match[2]} on host ${match[1]})` : id;
}

let ownVersion: string | undefined;

/** appvisor's own package version (the same relative path from src/serve/ and dist/serve/). */
export function appvisorVersion(): string {
  ownVersion ??= (
    JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  ).version;
  return ownVersion;
}
