/** Who a replica is: named in the lease, its heartbeat, its change announcements and the admin API. */
import { randomBytes } from 'node:crypto';
import os from 'node:os';

export interface ReplicaIdentity {
  /** `<hostname>-<pid>-<4 random hex>`: unique across restarts (a pid is reused, the suffix is not). */
  readonly id: string;
  readonly host: string;
  readonly pid: number;
}

export function createReplicaIdentity(): ReplicaIdentity {
  const host = os.hostname();
  const pid = process.pid;
  return { id: `${host}-${pid}-${randomBytes(2).toString('hex')}`, host, pid };
}

/** Who holds a lease, as a message says it: the pid and host read back from a replica id. */
export function describeHolder(id: string): string {
  const match = /^(.*)-(\d+)-[0-9a-f]{4}$/.exec(id);
  return match ? `${id} (pid ${match[2]} on host ${match[1]})` : id;
}
