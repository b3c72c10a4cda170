/** Which live replica holds a rolling upgrade back (src/serve/rolling-upgrade.ts), from the heartbeats. */
import { describe, expect, it } from 'vitest';
import { olderReplica } from '../../src/serve/rolling-upgrade.js';
import type { ReplicaList, ReplicaRecord } from '../../src/state/types.js';

const NOW = 1_000_000;
const row = (id: string, version: string, seenMsAgo: number): ReplicaRecord => ({
  id,
  host: 'h',
  pid: 1,
  version,
  startedAt: '2026-01-01T00:00:00.000Z',
  lastSeenAt: NOW - seenMsAgo,
  leader: false,
  info: {
    appvisorVersion: '0',
    application: { name: 'a', version },
    connectionBudget: 6,
    drift: [],
    apps: {},
  },
});
const list = (...replicas: ReplicaRecord[]): ReplicaList => ({ nowMs: NOW, replicas });

describe('the replica a rolling upgrade waits for', () => {
  it('is the live replica with the oldest version below this code, never this one', () => {
    const replicas = list(row('self', '1', 0), row('b', '2', 100), row('c', '1', 500), row('d', '3', 0));
    expect(olderReplica(replicas, 'self', 3, 2_000)).toEqual({ replica: 'c', version: 1 });
  });

  it('is none once the older replicas are gone or no longer seen (three heartbeats)', () => {
    expect(olderReplica(list(row('b', '3', 0)), 'self', 3, 2_000)).toBeUndefined();
    expect(olderReplica(list(row('b', '2', 6_001)), 'self', 3, 2_000)).toBeUndefined();
    expect(olderReplica(list(row('b', '2', 5_999)), 'self', 3, 2_000)).toEqual({ replica: 'b', version: 2 });
  });

  it('is none for a replica whose version is no number (nothing to compare)', () => {
    expect(olderReplica(list(row('b', 'x', 0)), 'self', 3, 2_000)).toBeUndefined();
  });
});
