/**
 * Two real replicas on one PostgreSQL state store, an app served on both, and replica 1's admin
 * API behind a TCP proxy that replica 1 advertises: a test cuts the proxy to cut replica 0 off
 * from replica 1. For the routes that answer with every live replica's share (logs, figures).
 */
import { expect } from 'vitest';
import { haproxyInstalled, type ReplicaSet, startReplicaSet } from '../helpers/replicas.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { manifest } from '../serve/harness.js';

export interface PeerPair {
  readonly set: ReplicaSet;
  /** Between replica 0 and replica 1's admin API. */
  readonly proxy: TcpProxy;
  /** The app both serve. */
  readonly app: string;
  /** Replica ids by index. */
  readonly ids: readonly string[];
  close(): Promise<void>;
}

/**
 * Why the pair cannot run here, said once on the console (undefined: it can). Without
 * PostgreSQL, test/helpers/servers.ts has said so already (and fails the run under CI=true).
 */
export function peerPairSkip(pgAvailable: boolean, what: string): string | undefined {
  if (!pgAvailable) return 'PostgreSQL is unreachable';
  if (haproxyInstalled()) return undefined;
  console.warn(
    `\n!!! SKIPPING ${what}: haproxy is not installed (.ci/run installs it: apt-get install haproxy)\n`,
  );
  return 'haproxy is not installed';
}

export async function startPeerPair(): Promise<PeerPair> {
  let proxy: TcpProxy | undefined;
  const set = await startReplicaSet({
    dialect: 'postgres',
    count: 2,
    manifests: (prefix) => ({ 'crm.yaml': manifest(`${prefix}_crm`) }),
    replicaEnv: async (index, port): Promise<Record<string, string>> => {
      if (index !== 1) return {};
      proxy = await startTcpProxy('127.0.0.1', port);
      return { APPVISOR_ADVERTISE_URL: `http://127.0.0.1:${proxy.port}` };
    },
  });
  const listed = (await set.admin(0, '/_supervisor/api/replicas')).body as { id: string; pid: number }[];
  const ids: string[] = [];
  for (const r of set.replicas) ids[r.index] = listed.find((l) => l.pid === r.pid)!.id;
  expect(ids).toHaveLength(2);
  return {
    set,
    proxy: proxy!,
    app: `${set.prefix}_crm`,
    ids,
    async close() {
      await set.close();
      await proxy?.close();
    },
  };
}
