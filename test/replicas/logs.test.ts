/**
 * Per-app logs from every replica (SPEC §8.7, issue 14 item 1): two real `appvisor serve`
 * replicas on one PostgreSQL state store, an app served on both; the logs one replica answers
 * hold the lines of both, each marked with its replica, merged by time; a replica that cannot be
 * reached (its advertised admin URL goes through a TCP proxy the test cuts) is named, not fatal;
 * following on one replica gets a line logged on the other.
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SseMessages } from '../../src/http/sse-messages.js';
import type { AppLogLine } from '../../src/serve/app-logs.js';
import { runCli } from '../helpers/cli.js';
import { REPLICA_ADMIN_TOKEN, type ReplicaSet } from '../helpers/replicas.js';
import { postgres } from '../helpers/servers.js';
import type { TcpProxy } from '../helpers/tcp-proxy.js';
import { waitFor } from '../serve/harness.js';
import { type PeerPair, peerPairSkip, startPeerPair } from './peer-pair.js';

const { available } = await postgres();

interface LogsAnswer {
  readonly app: string;
  readonly lines: AppLogLine[];
  readonly unreachable: string[];
}

describe.skipIf(peerPairSkip(available, 'the logs-from-every-replica tests') !== undefined)(
  'logs from every replica',
  () => {
    let pair: PeerPair | undefined;
    let set: ReplicaSet;
    /** Between replica 0 and replica 1's admin API: replica 1 advertises this address. */
    let proxy: TcpProxy;
    let app: string;
    /** Replica ids by index. */
    let ids: readonly string[];
    let users = 0;

    beforeAll(async () => {
      pair = await startPeerPair();
      ({ set, proxy, app, ids } = pair);
    }, 120_000);
    afterAll(async () => {
      await pair?.close();
    });

    /** Makes replica `i` log a line for the app (the sample app logs each user it creates); its username. */
    async function logOn(i: number): Promise<string> {
      const username = `user-${i}-${++users}`;
      const answer = await set.request(i, `/apps/${app}/api/users`, {
        method: 'POST',
        body: { username, password: 'a-password-of-some-length' },
      });
      expect(answer.status, answer.text).toBe(201);
      return username;
    }

    async function logsOf(i: number, query = ''): Promise<LogsAnswer> {
      const answer = await set.admin(i, `/_supervisor/api/apps/${app}/logs${query}`);
      expect(answer.status, answer.text).toBe(200);
      return answer.body as LogsAnswer;
    }

    const created = (lines: readonly AppLogLine[], username: string) =>
      lines.find((l) => l.msg === 'user created' && l.username === username);

    it('answers the lines of both replicas on either, each marked with its replica, ordered by time', async () => {
      const first = await logOn(0);
      const second = await logOn(1);
      for (const i of [0, 1]) {
        const { lines, unreachable } = await logsOf(i);
        expect(unreachable).toEqual([]);
        expect(created(lines, first)?.replica).toBe(ids[0]);
        expect(created(lines, second)?.replica).toBe(ids[1]);
        const times = lines.map((l) => l.time);
        expect(times).toEqual([...times].sort((a, b) => a - b));
      }
      // The limit applies to the merged lines: the last line is the other replica's.
      const last = await logsOf(0, '?limit=1');
      expect(last.lines).toHaveLength(1);
      expect(last.lines[0]).toMatchObject({ username: second, replica: ids[1] });
    });

    it('the CLI shows both replicas’ lines with --json', async () => {
      const mine = await logOn(0);
      const theirs = await logOn(1);
      const { code, stdout, stderr } = await runCli(['logs', app, '--json', '--url', set.url(0)], {
        cwd: set.dir,
        env: { APPVISOR_ADMIN_TOKEN: REPLICA_ADMIN_TOKEN },
      });
      expect(stderr).toBe('');
      expect(code).toBe(0);
      const lines = stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as AppLogLine);
      expect(created(lines, mine)?.replica).toBe(ids[0]);
      expect(created(lines, theirs)?.replica).toBe(ids[1]);
    });

    it('names a replica that cannot be reached, and answers with the rest', async () => {
      const mine = await logOn(0);
      const theirs = await logOn(1);
      proxy.cut();
      try {
        const { lines, unreachable } = await logsOf(0);
        expect(unreachable).toEqual([ids[1]]);
        expect(created(lines, mine)?.replica).toBe(ids[0]);
        expect(created(lines, theirs)).toBeUndefined();
        const cli = await runCli(['logs', app, '--json', '--url', set.url(0)], {
          cwd: set.dir,
          env: { APPVISOR_ADMIN_TOKEN: REPLICA_ADMIN_TOKEN },
        });
        expect(cli.code).toBe(0);
        expect(cli.stderr).toBe(`appvisor: replica ${ids[1]} did not answer; its lines are missing\n`);
        expect(cli.stdout).toContain(mine);
        // Replica 1 itself still answers with every replica's lines: it reaches replica 0.
        expect((await logsOf(1)).unreachable).toEqual([]);
      } finally {
        proxy.restore();
      }
      expect((await logsOf(0)).unreachable).toEqual([]);
    });

    it('following on one replica gets the lines logged on the other', async () => {
      const stream = openFollow(set.url(0), `/_supervisor/api/apps/${app}/logs?follow=1&limit=5`);
      try {
        await waitFor(async () => stream.following, 'the merged backlog', 10_000);
        const theirs = await logOn(1);
        const mine = await logOn(0);
        const seen = await waitFor(
          async () => {
            const a = created(stream.lines, theirs);
            const b = created(stream.lines, mine);
            return a && b ? [a, b] : undefined;
          },
          'both new lines on the stream',
          10_000,
        );
        expect(seen.map((l) => l.replica)).toEqual([ids[1], ids[0]]);
        expect(stream.unreachable).toEqual([]);
      } finally {
        stream.close();
      }
    });
  },
);

/** An SSE `follow=1` stream, read as it arrives. */
function openFollow(
  base: string,
  urlPath: string,
): { lines: AppLogLine[]; unreachable: string[]; following: boolean; close(): void } {
  const state = {
    lines: [] as AppLogLine[],
    unreachable: [] as string[],
    following: false,
    close: () => req.destroy(),
  };
  const req = http.get(
    new URL(urlPath, base),
    { headers: { authorization: `Bearer ${REPLICA_ADMIN_TOKEN}`, accept: 'text/event-stream' } },
    (res) => {
      res.setEncoding('utf8');
      const messages = new SseMessages();
      res.on('data', (chunk: string) => {
        for (const { type, data, comments } of messages.push(chunk)) {
          if (comments.includes('following')) state.following = true;
          if (data === '') continue;
          if (type === 'line') state.lines.push(JSON.parse(data) as AppLogLine);
          if (type === 'unreachable')
            state.unreachable.push((JSON.parse(data) as { replica: string }).replica);
        }
      });
    },
  );
  req.on('error', () => undefined);
  return state;
}
