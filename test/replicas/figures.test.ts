/**
 * Per-app figures of every replica (SPEC §8.7, issue 14 item 2): two real `appvisor serve`
 * replicas on one PostgreSQL state store, an app served on both; requests sent to each replica
 * through its own gateway are all counted in the figures either replica answers (both routes); a
 * replica that cannot be reached (its advertised admin URL goes through a TCP proxy the test
 * cuts) is named in `unreachable`, its requests missing, not fatal.
 *
 * Counts are read back exactly from slots that are over (a whole minute: rps × 60), so the test
 * sends its requests, then waits for the minute under way to end (at most a minute).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FORWARDED_HEADER } from '../../src/admin/forward.js';
import type { AppFigureSeries, FigureSummary, RawAppFigures } from '../../src/serve/app-figures.js';
import { REPLICA_ADMIN_TOKEN, type ReplicaSet } from '../helpers/replicas.js';
import { postgres } from '../helpers/servers.js';
import type { TcpProxy } from '../helpers/tcp-proxy.js';
import { waitFor } from '../serve/harness.js';
import { type PeerPair, peerPairSkip, startPeerPair } from './peer-pair.js';

const { available } = await postgres();

interface OfReplicas {
  readonly replicas: string[];
  readonly unreachable: string[];
}

/** Requests answered in the slots that are over (the one under way left out). */
function answeredBefore(stepSeconds: number, rps: readonly number[]): number {
  return rps.slice(0, -1).reduce((sum, r) => sum + Math.round(r * stepSeconds), 0);
}

describe.skipIf(peerPairSkip(available, 'the figures-from-every-replica tests') !== undefined)(
  'figures from every replica',
  () => {
    let pair: PeerPair | undefined;
    let set: ReplicaSet;
    /** Between replica 0 and replica 1's admin API: replica 1 advertises this address. */
    let proxy: TcpProxy;
    let app: string;
    /** Replica ids by index. */
    let ids: readonly string[];

    beforeAll(async () => {
      pair = await startPeerPair();
      ({ set, proxy, app, ids } = pair);
    }, 120_000);
    afterAll(async () => {
      await pair?.close();
    });

    /** Sends `n` requests to the app through replica `i`'s gateway. */
    async function send(i: number, n: number): Promise<void> {
      for (let k = 0; k < n; k++) {
        const answer = await set.request(i, `/apps/${app}/api/info`);
        expect(answer.status, answer.text).toBe(200);
      }
    }

    /**
     * The requests replica `i` itself counted, as it answers another replica (its raw slots):
     * what it served before the test's own requests (the set's start-up asks the app too).
     */
    async function ownCount(i: number): Promise<number> {
      const res = await fetch(new URL(`/_supervisor/api/apps/${app}/figures`, set.url(i)), {
        headers: { authorization: `Bearer ${REPLICA_ADMIN_TOKEN}`, [FORWARDED_HEADER]: '1' },
      });
      expect(res.status).toBe(200);
      const raw = (await res.json()) as RawAppFigures;
      return raw.slots.reduce((sum, slot) => sum + slot.count, 0);
    }

    /** Replica `i`'s figures of the app: the requests counted by both routes, and whose they are. */
    async function countedOn(i: number): Promise<{ series: number; summary: number } & OfReplicas> {
      const series = await set.admin(i, `/_supervisor/api/apps/${app}/figures`);
      expect(series.status, series.text).toBe(200);
      const s = series.body as AppFigureSeries & OfReplicas;
      const listed = await set.admin(i, `/_supervisor/api/figures?apps=${app}`);
      expect(listed.status, listed.text).toBe(200);
      const l = listed.body as FigureSummary & OfReplicas;
      // Both routes asked the same replicas and heard from the same ones.
      expect({ replicas: l.replicas, unreachable: l.unreachable }).toEqual({
        replicas: s.replicas,
        unreachable: s.unreachable,
      });
      return {
        series: answeredBefore(
          s.stepSeconds,
          s.points.map((p) => p.rps),
        ),
        summary: answeredBefore(l.stepSeconds, l.apps[app]!.rps),
        replicas: s.replicas,
        unreachable: s.unreachable,
      };
    }

    it('counts the requests sent to either replica on both, and names one that cannot be reached', async () => {
      const before = [await ownCount(0), await ownCount(1)];
      await send(0, 5);
      await send(1, 7);
      const all = before[0]! + before[1]! + 12;
      const onlyZero = before[0]! + 5;
      expect(await ownCount(0)).toBe(onlyZero);
      // Until the minute under way is over, its rate is over an instant the test cannot know.
      const minuteEnds = (Math.floor(Date.now() / 60_000) + 1) * 60_000;
      await waitFor(() => Date.now() > minuteEnds + 100, 'the minute of the requests to end', 65_000, 200);

      for (const i of [0, 1]) {
        const counted = await countedOn(i);
        expect(counted).toEqual({
          series: all,
          summary: all,
          replicas: [ids[i], ids[1 - i]],
          unreachable: [],
        });
      }

      proxy.cut();
      try {
        // Replica 0 no longer reaches replica 1: its own requests, and replica 1 named.
        expect(await countedOn(0)).toEqual({
          series: onlyZero,
          summary: onlyZero,
          replicas: [ids[0]],
          unreachable: [ids[1]],
        });
        // Replica 1 still reaches replica 0: every request.
        expect(await countedOn(1)).toMatchObject({ series: all, summary: all, unreachable: [] });
      } finally {
        proxy.restore();
      }
      expect(await countedOn(0)).toMatchObject({ series: all, unreachable: [] });
    }, 120_000);
  },
);
