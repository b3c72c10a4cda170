/**
 * Per-app logs end to end (SPEC §8.7): a real serve whose apps log through ctx.log, shared and
 * in a worker thread; the admin API (JSON and SSE follow) and `appvisor logs -f` as a process.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, manifest, type Serve, startServe, waitFor } from './harness.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/isolation-app.ts', import.meta.url));
const BIN = fileURLToPath(new URL('../../bin/appvisor.js', import.meta.url));

interface Line {
  readonly msg: string;
  readonly app: string;
  readonly replica: string;
  readonly marker?: string;
  readonly level: number;
}

let serve: Serve;
const children: ChildProcess[] = [];

beforeAll(async () => {
  serve = await startServe({
    app: FIXTURE,
    // Lines are kept as the logger writes them: at info, to nowhere (the test reads the API).
    log: pino({ level: 'info' }, pino.destination({ dest: '/dev/null', sync: true })),
    manifests: {
      'shared.yaml': manifest('logshared'),
      'worker.yaml': manifest('logworker', 'isolation:\n  mode: worker\n'),
    },
  });
}, 60_000);

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await serve?.close();
  if (serve) await fs.rm(serve.dir, { recursive: true, force: true });
});

async function logMarker(app: string, marker: string): Promise<void> {
  const answer = await serve.request(`/apps/${app}/log?marker=${marker}`);
  expect(answer.status).toBe(200);
}

async function lines(app: string, query = ''): Promise<Line[]> {
  const answer = await serve.admin(`/apps/${app}/logs${query}`);
  expect(answer.status, answer.text).toBe(200);
  expect(answer.body.app).toBe(app);
  return answer.body.lines as Line[];
}

describe('per-app logs', () => {
  it('answers the lines an app logged, marked with this replica', async () => {
    await logMarker('logshared', 'shared-1');
    const found = await lines('logshared');
    const line = found.find((l) => l.marker === 'shared-1');
    expect(line).toMatchObject({
      msg: 'hello from the app',
      app: 'logshared',
      replica: serve.sup.replica.id,
    });
    expect(line!.level).toBe(40);
    // Another app's line is not in this one's.
    expect((await lines('logworker')).some((l) => l.marker === 'shared-1')).toBe(false);
  });

  it("has a worker-isolated app's lines too", async () => {
    await logMarker('logworker', 'worker-1');
    const line = await waitFor(
      async () => (await lines('logworker')).find((l) => l.marker === 'worker-1'),
      'the worker line',
    );
    expect(line).toMatchObject({ app: 'logworker', replica: serve.sup.replica.id });
  });

  it('filters with since and limit, and refuses a bad since', async () => {
    await logMarker('logshared', 'before-pause');
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    await logMarker('logshared', 'after-pause');
    const recent = await lines('logshared', '?since=1s');
    expect(recent.map((l) => l.marker)).toContain('after-pause');
    expect(recent.map((l) => l.marker)).not.toContain('before-pause');
    expect((await lines('logshared', '?since=1h')).map((l) => l.marker)).toContain('before-pause');
    const last = await lines('logshared', '?limit=1');
    expect(last).toHaveLength(1);
    const bad = await serve.admin('/apps/logshared/logs?since=yesterday');
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/since=yesterday is not a duration/);
  });

  it('answers 404 APP_NOT_FOUND for an unknown app', async () => {
    const answer = await serve.admin('/apps/nosuchapp/logs');
    expect(answer.status).toBe(404);
    expect(answer.body.error.code).toBe('APP_NOT_FOUND');
  });

  it('follows over SSE: a line logged after connecting arrives', async () => {
    const controller = new AbortController();
    const res = await fetch(`${serve.sup.url}/_supervisor/api/apps/logshared/logs?follow=1&limit=1`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      signal: controller.signal,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    const readUntil = async (needle: string): Promise<void> => {
      const deadline = Date.now() + 10_000;
      while (!text.includes(needle)) {
        if (Date.now() > deadline) throw new Error(`no ${needle} in the stream: ${text}`);
        const { value, done } = await reader.read();
        if (done) throw new Error(`the stream ended before ${needle}: ${text}`);
        text += decoder.decode(value, { stream: true });
      }
    };
    await readUntil(': following');
    expect(text).not.toContain('sse-live');
    await logMarker('logshared', 'sse-live');
    await readUntil('sse-live');
    const event = text.split('\n\n').find((e) => e.includes('sse-live'))!;
    expect(event).toMatch(/^event: line$/m);
    const data = JSON.parse(
      event
        .split('\n')
        .find((l) => l.startsWith('data: '))!
        .slice(6),
    ) as Line;
    expect(data).toMatchObject({ app: 'logshared', marker: 'sse-live', replica: serve.sup.replica.id });
    controller.abort();
  });

  it('`appvisor logs NAME -f` prints a line the app logs after it started following', async () => {
    const child = spawn(process.execPath, [BIN, 'logs', 'logshared', '-f', '--url', serve.sup.url], {
      cwd: serve.dir,
      env: { PATH: process.env.PATH, APPVISOR_ADMIN_TOKEN: ADMIN_TOKEN, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let out = '';
    let err = '';
    child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
    // The kept lines come first: once one is printed, the CLI follows.
    await waitFor(() => out.includes('marker=shared-1'), `the kept lines (stderr: ${err})`, 20_000);
    expect(out).not.toContain('cli-live');
    await logMarker('logshared', 'cli-live');
    await waitFor(
      () => out.includes('marker=cli-live'),
      `the followed line (stdout: ${out}, stderr: ${err})`,
    );
    const printed = out.split('\n').find((l) => l.includes('marker=cli-live'))!;
    expect(printed).toMatch(/^\d{4}-\d\d-\d\dT\S+Z WARN {2}hello from the app .*marker=cli-live/);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGINT');
    expect(await exited).toBe(0);
  });

  it('`appvisor logs NAME --json` prints one JSON object per line; no server: exit 1 with a clear message', async () => {
    const json = await runBin(['logs', 'logshared', '--json', '--url', serve.sup.url], serve.dir);
    expect(json.code).toBe(0);
    const parsed = json.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Line);
    expect(parsed.some((l) => l.marker === 'shared-1')).toBe(true);
    const gone = await runBin(['logs', 'logshared', '--url', 'http://127.0.0.1:9'], serve.dir);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/appvisor serve/);
    const unknown = await runBin(['logs', 'nosuchapp', '--url', serve.sup.url], serve.dir);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/nosuchapp/);
  });

  it('ends a follow stream cleanly when the server shuts down', async () => {
    const res = await fetch(`${serve.sup.url}/_supervisor/api/apps/logshared/logs?follow=1&limit=1`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    await reader.read();
    const closed = serve.close();
    let done = false;
    while (!done) done = (await reader.read()).done;
    await closed;
    expect(done).toBe(true);
  });
});

function runBin(
  args: string[],
  cwd: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd,
      env: { PATH: process.env.PATH, APPVISOR_ADMIN_TOKEN: ADMIN_TOKEN, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
