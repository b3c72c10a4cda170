import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { AdminEventMap } from '../../src/admin/types.js';
import { type Heartbeat, startHeartbeat } from '../../src/serve/heartbeat.js';
import { createReplicaIdentity } from '../../src/serve/replica-identity.js';
import type { AppStatus, ReplicaHeartbeat } from '../../src/state/types.js';
import { MemoryStateStore } from '../support/memory-store.js';
import { waitFor } from './harness.js';

/** The memory store, recording every heartbeat written (whole or touched) and failing them while `down`. */
class RecordingStore extends MemoryStateStore {
  readonly writes: { at: number; beat: ReplicaHeartbeat }[] = [];
  touches = 0;
  down = false;
  override async writeReplica(beat: ReplicaHeartbeat): Promise<void> {
    if (this.down) throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
    this.writes.push({ at: Date.now(), beat });
    await super.writeReplica(beat);
  }
  override async touchReplica(id: string): Promise<boolean> {
    if (this.down) throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
    this.touches++;
    return super.touchReplica(id);
  }
}

/** The runtime's three questions, answered from a map the test changes. */
function fakeRuntime(statuses: Map<string, AppStatus>) {
  return {
    names: () => [...statuses.keys()],
    status: (name: string) => statuses.get(name),
    startedAt: (name: string) => (statuses.get(name) === 'running' ? new Date('2026-01-01T00:00:00Z') : null),
  };
}

function capturingLog() {
  const lines: { level: number; msg: string }[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { log: pino({ level: 'debug' }, sink), lines };
}

describe('replica heartbeat', () => {
  const started: Heartbeat[] = [];
  afterEach(async () => {
    await Promise.all(started.splice(0).map((h) => h.stop()));
  });

  async function start(store: RecordingStore, statuses: Map<string, AppStatus>, intervalMs: number) {
    const events = new EventEmitter<AdminEventMap>();
    const { log, lines } = capturingLog();
    const identity = createReplicaIdentity();
    const beat = await startHeartbeat({
      store,
      runtime: fakeRuntime(statuses),
      events,
      identity,
      application: { name: 'sample', version: 3 },
      applications: [
        { name: 'sample', version: 3 },
        { name: 'crm-app', version: 1 },
      ],
      connectionBudget: 40,
      drift: () => ['blog'],
      log,
      intervalMs,
    });
    started.push(beat);
    const change = (app: string, status: AppStatus) => {
      statuses.set(app, status);
      events.emit('status', { app, status, previous: null, error: null, at: new Date().toISOString() });
    };
    return { beat, identity, change, lines };
  }

  it('writes its row at start with only the apps not stopped, and deletes it on stop', async () => {
    const store = new RecordingStore();
    const statuses = new Map<string, AppStatus>([
      ['crm', 'running'],
      ['idle', 'stopped'],
      ['off', 'disabled'],
    ]);
    const { beat, identity } = await start(store, statuses, 60_000);
    expect(store.writes).toHaveLength(1);
    const { replicas } = await store.listReplicas();
    expect(replicas).toEqual([
      expect.objectContaining({
        id: identity.id,
        host: identity.host,
        pid: process.pid,
        version: '3',
        info: {
          appvisorVersion: expect.stringMatching(/^\d+\.\d+\.\d+/),
          application: { name: 'sample', version: '3' },
          // Every application it runs, for the rolling upgrade of each (SPEC §8.6).
          applications: [
            { name: 'sample', version: '3' },
            { name: 'crm-app', version: '1' },
          ],
          connectionBudget: 40,
          drift: ['blog'],
          apps: {
            crm: { status: 'running', startedAt: '2026-01-01T00:00:00.000Z' },
            off: { status: 'disabled' },
          },
        },
      }),
    ]);
    await beat.stop();
    expect((await store.listReplicas()).replicas).toEqual([]);
  });

  it('writes soon after a status change, a burst of changes as one or two writes, never twice within 250 ms', async () => {
    const store = new RecordingStore();
    const statuses = new Map<string, AppStatus>([['crm', 'stopped']]);
    // The interval is far off: every write after the first comes from the status events.
    const { change } = await start(store, statuses, 60_000);
    const changedAt = Date.now();
    change('crm', 'starting');
    await waitFor(() => store.writes.length === 2, 'the write after the change', 2_000, 5);
    expect(store.writes[1]!.at - changedAt).toBeLessThan(400);
    expect(store.writes[1]!.beat.info.apps.crm?.status).toBe('starting');

    for (let i = 0; i < 20; i++) {
      change(`app-${i}`, 'running');
      await new Promise((r) => setTimeout(r, 5));
    }
    change('crm', 'running');
    await waitFor(
      () => store.writes.at(-1)!.beat.info.apps.crm?.status === 'running',
      'the burst written',
      2_000,
      5,
    );
    await new Promise((r) => setTimeout(r, 300));
    // 21 changes over ~100 ms after a write: at most two writes (one at the gap's end, one for the rest).
    expect(store.writes.length).toBeLessThanOrEqual(4);
    const last = store.writes.at(-1)!.beat.info.apps;
    expect(Object.keys(last)).toHaveLength(21);
    for (let i = 1; i < store.writes.length; i++) {
      expect(store.writes[i]!.at - store.writes[i - 1]!.at).toBeGreaterThanOrEqual(245);
    }
  });

  it('only touches its row while nothing changes, and writes it whole again once it is gone', async () => {
    const store = new RecordingStore();
    const { identity } = await start(store, new Map([['crm', 'running' as AppStatus]]), 20);
    await waitFor(() => store.touches >= 3, 'a few beats', 2_000, 5);
    expect(store.writes).toHaveLength(1);
    const before = (await store.listReplicas()).replicas[0]!.lastSeenAt;
    await waitFor(async () => (await store.listReplicas()).replicas[0]!.lastSeenAt > before, 'seen later');
    // Pruned by another replica (or deleted by hand): the next beat puts the whole row back.
    await store.deleteReplica(identity.id);
    await waitFor(() => store.writes.length === 2, 'the row written again', 2_000, 5);
    expect((await store.listReplicas()).replicas[0]?.info.apps).toEqual({
      crm: { status: 'running', startedAt: '2026-01-01T00:00:00.000Z' },
    });
  });

  it('keeps beating through a store outage, logging it once and its end once, and never throws', async () => {
    const store = new RecordingStore();
    const { lines } = await start(store, new Map(), 20);
    await waitFor(() => store.touches >= 3, 'a few beats', 2_000, 5);
    store.down = true;
    const failedSince = store.writes.length;
    await new Promise((r) => setTimeout(r, 200)); // ~10 beats, all failing
    expect(store.writes.length).toBe(failedSince);
    const warnings = lines.filter((l) => l.msg.includes('cannot write this replica'));
    expect(warnings).toHaveLength(1);

    store.down = false;
    // After an outage the row is written whole: whatever changed meanwhile is in it.
    await waitFor(() => store.writes.length > failedSince, 'a beat after the outage', 2_000, 5);
    await waitFor(
      () => lines.some((l) => l.msg === 'replica heartbeat written again'),
      'the recovery logged',
    );
    expect(lines.filter((l) => l.msg.includes('cannot write this replica'))).toHaveLength(1);
  });

  it('starts even when the first write fails, and stops cleanly with the store down', async () => {
    const store = new RecordingStore();
    store.down = true;
    const { beat, lines } = await start(store, new Map(), 20);
    expect(lines.some((l) => l.msg.includes('cannot write this replica'))).toBe(true);
    await store.close();
    await expect(beat.stop()).resolves.toBeUndefined();
    expect(lines.some((l) => l.msg.includes('could not delete'))).toBe(true);
  });
});
