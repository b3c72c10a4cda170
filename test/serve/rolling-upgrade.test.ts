/** Which live replica holds a rolling upgrade back (src/serve/rolling-upgrade.ts), from the heartbeats. */
import { describe, expect, it } from 'vitest';
import { handOver, olderReplica, waitingOnOlder } from '../../src/serve/rolling-upgrade.js';
import type { ReplicaList, ReplicaRecord } from '../../src/state/types.js';

const NOW = 1_000_000;
const row = (id: string, version: string, seenMsAgo: number, waiting = false): ReplicaRecord => ({
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
    ...(waiting ? { waiting: true as const } : {}),
  },
});
const list = (...replicas: ReplicaRecord[]): ReplicaList => ({ nowMs: NOW, replicas });

describe('the replica a rolling upgrade waits for', () => {
  it("per application (SPEC §8.6): a replica on an older version of that application, whatever the default one's", () => {
    const withApps = (
      r: ReplicaRecord,
      applications: { name: string; version: string }[],
    ): ReplicaRecord => ({
      ...r,
      info: { ...r.info, applications },
    });
    const replicas = list(
      // Newer default application, older crm-app: holds back crm-app's apps only.
      withApps(row('b', '5', 0), [
        { name: 'a', version: '5' },
        { name: 'crm-app', version: '1' },
      ]),
      // A heartbeat from before applications were listed: the default application only.
      row('c', '5', 0),
    );
    expect(olderReplica(replicas, 'self', 2, 2_000, 'crm-app')).toEqual({ replica: 'b', version: 1 });
    expect(olderReplica(replicas, 'self', 1, 2_000, 'crm-app')).toBeUndefined();
    expect(olderReplica(replicas, 'self', 5, 2_000)).toBeUndefined();
    expect(olderReplica(replicas, 'self', 6, 2_000)).toEqual({ replica: 'b', version: 5 });
    // guestbook-app runs on no other replica: nothing holds it back.
    expect(olderReplica(replicas, 'self', 9, 2_000, 'guestbook-app')).toBeUndefined();
  });

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

describe('the handover of a draining replica to the replicas on newer code', () => {
  it('waits for the live newer replicas that still stay out of rotation, never dead ones or those in it', () => {
    const replicas = list(
      row('self', '2', 0),
      row('new', '3', 0, true),
      row('joined', '3', 0),
      row('dead', '3', 7_000, true),
    );
    expect(waitingOnOlder(replicas, 'self', 2, 2_000)).toEqual(['new']);
  });

  it('waits for nobody while another old replica stays: the newer ones go on waiting for it', () => {
    const replicas = list(row('self', '2', 0), row('new', '3', 0, true), row('other', '2', 0));
    expect(waitingOnOlder(replicas, 'self', 2, 2_000)).toEqual([]);
    const leaving = {
      ...row('other', '2', 0),
      info: { ...row('other', '2', 0).info, leaving: true as const },
    };
    expect(
      waitingOnOlder(list(row('self', '2', 0), row('new', '3', 0, true), leaving), 'self', 2, 2_000),
    ).toEqual(['new']);
  });

  it('counts a replica newer in any application as newer (SPEC §8.6), and one newer in none as old', () => {
    const withApps = (r: ReplicaRecord, crm: string): ReplicaRecord => ({
      ...r,
      info: { ...r.info, applications: [{ name: 'crm-app', version: crm }] },
    });
    const self = { version: 2, applications: [{ name: 'crm-app', version: 1 }] };
    // Same default application, a newer crm-app: it waited for this one, and takes over from it.
    const newCrm = withApps(row('new', '2', 0, true), '2');
    expect(waitingOnOlder(list(row('self', '2', 0), newCrm), 'self', self, 2_000)).toEqual(['new']);
    // Counting the default application alone, it would not have been waited for.
    expect(waitingOnOlder(list(row('self', '2', 0), newCrm), 'self', 2, 2_000)).toEqual([]);
    // Another replica on the same code as this one stays: the newer one goes on waiting for it.
    const sameAsSelf = withApps(row('other', '2', 0), '1');
    expect(waitingOnOlder(list(newCrm, sameAsSelf), 'self', self, 2_000)).toEqual([]);
  });

  it('stays in rotation until the newer replica says it joined, then hands over', async () => {
    let reads = 0;
    const store = {
      listReplicas: async () => {
        reads++;
        return list(row('self', '2', 0), row('new', '3', 0, reads < 3));
      },
    };
    const result = await handOver(store, {
      self: 'self',
      codeVersion: 2,
      heartbeatMs: 2_000,
      timeoutMs: 5_000,
      pollMs: 5,
    });
    expect(result).toMatchObject({ waitedFor: ['new'], stillWaiting: [] });
    expect(reads).toBe(3);
  });

  it('gives up at its timeout, and hands over nothing when the store cannot be read', async () => {
    const stuck = { listReplicas: async () => list(row('new', '3', 0, true)) };
    const late = await handOver(stuck, {
      self: 'self',
      codeVersion: 2,
      heartbeatMs: 2_000,
      timeoutMs: 30,
      pollMs: 5,
    });
    expect(late.stillWaiting).toEqual(['new']);
    expect(late.waitedMs).toBeGreaterThanOrEqual(30);
    const broken = { listReplicas: () => Promise.reject(new Error('down')) };
    expect(
      await handOver(broken, { self: 'self', codeVersion: 2, heartbeatMs: 2_000, timeoutMs: 5_000 }),
    ).toMatchObject({
      waitedFor: [],
      stillWaiting: [],
    });
  });
});
