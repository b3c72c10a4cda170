/**
 * `appvisor serve` as a real process with a shared app that blocks the event loop: the
 * event-loop watcher's warning names the app while the loop is still blocked (the app's loop
 * ends only once the test has read the warning), the end of the block is logged and counted,
 * and a short stall or a healthy run logs nothing.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SAMPLE_APP, type ServeProcess, startServeProcess } from '../helpers/serve-process.js';
import { manifest, request } from '../serve/harness.js';

/**
 * The sample app, plus `GET /spin?flag=<file>` (loops in the handler until the file exists),
 * `GET /spin-after-await?flag=<file>` (the same after an `await`, outside the handler's own
 * call) and `GET /pause?ms=<n>` (a short busy wait).
 */
const SPIN_APP = `import fs from 'node:fs';
import sample from ${JSON.stringify(SAMPLE_APP)};
const spinUntil = (flag) => {
  const giveUp = Date.now() + 30_000;
  while (!fs.existsSync(flag) && Date.now() < giveUp) {}
};
export default {
  ...sample,
  async create(ctx) {
    const inner = await sample.create(ctx);
    return {
      async handler(req, res) {
        const url = new URL(req.url, 'http://x');
        if (url.pathname === '/spin') {
          spinUntil(url.searchParams.get('flag'));
          return res.end('spun');
        }
        if (url.pathname === '/spin-after-await') {
          await null;
          spinUntil(url.searchParams.get('flag'));
          return res.end('spun');
        }
        if (url.pathname === '/pause') {
          const until = Date.now() + Number(url.searchParams.get('ms'));
          while (Date.now() < until) {}
          return res.end('paused');
        }
        return inner.handler(req, res);
      },
      close: inner.close,
    };
  },
};
`;

const FLAGS = ['flag-1', 'flag-2'];

const blockedLines = (p: ServeProcess) => p.lines.filter((l) => l.event === 'loop-blocked');

let proc: ServeProcess | undefined;
let dir: string | undefined;

afterEach(async () => {
  // A failed assertion leaves a handler spinning: its flags end it.
  if (dir) for (const flag of FLAGS) await fs.writeFile(path.join(dir, flag), '').catch(() => undefined);
  await proc?.stop();
  proc = undefined;
  if (dir) await fs.rm(dir, { recursive: true, force: true });
  dir = undefined;
});

describe('serve reports a blocked event loop while it is blocked', () => {
  it('warns naming the shared app whose handler loops, logs and counts the end, and stays quiet otherwise', async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-serve-spin-'));
    const d = dir;
    const appsDir = path.join(d, 'apps.d');
    await fs.mkdir(appsDir);
    await fs.writeFile(path.join(appsDir, 'spinner.yaml'), manifest('spinner', 'startMode: with-main\n'));
    await fs.writeFile(path.join(appsDir, 'calm.yaml'), manifest('calm', 'startMode: with-main\n'));
    await fs.writeFile(path.join(d, 'spin-app.mjs'), SPIN_APP);
    proc = startServeProcess(d, { APPVISOR_APP: './spin-app.mjs' });
    const p = proc;
    const listening = await p.line((l) => l.msg === 'appvisor listening', 'the listening line');
    const url = listening.url as string;
    await p.line((l) => typeof l.msg === 'string' && l.msg.startsWith('first reconcile done'), 'ready');

    // A healthy run, and a stall well under the threshold: no warning (checked below, once a
    // real block's warning shows the watcher was looking all along).
    for (const name of ['calm', 'spinner']) {
      expect((await request(url, `/apps/${name}/api/info`)).status, name).toBe(200);
    }
    expect((await request(url, '/apps/spinner/pause?ms=300')).text).toBe('paused');

    // The handler loops until the flag exists, and the flag is written only once the warning
    // has been read: the warning was logged while the loop was blocked.
    const flag = path.join(d, FLAGS[0]!);
    let answered = false;
    const spin = request(url, `/apps/spinner/spin?flag=${encodeURIComponent(flag)}`).then((r) => {
      answered = true;
      return r;
    });
    const warning = await p.line((l) => l.event === 'loop-blocked', 'the blocked-loop warning');
    expect(answered).toBe(false);
    expect(warning).toMatchObject({
      level: 40,
      app: 'spinner',
      msg: expect.stringContaining('app spinner was running'),
    });
    expect(warning.ms).toBeGreaterThan(1_000);
    // A line like the supervisor's own (the thread writes it itself).
    expect(warning.pid).toBe(listening.pid);
    expect(warning.time).toBeGreaterThanOrEqual(listening.time as number);
    await fs.writeFile(flag, '');
    expect((await spin).text).toBe('spun');
    const resumed = await p.line((l) => l.event === 'loop-resumed', 'the line saying the loop runs again');
    expect(resumed).toMatchObject({ level: 40, app: 'spinner' });
    expect(resumed.ms).toBeGreaterThanOrEqual(warning.ms as number);
    // One warning: the healthy requests and the 300 ms stall before it had none.
    expect(blockedLines(p)).toHaveLength(1);

    const metrics = await request(url, '/_supervisor/metrics');
    expect(metrics.text).toMatch(/^appvisor_event_loop_blocked_total\{app="spinner"\} 1$/m);
    expect(metrics.text).toMatch(/^appvisor_event_loop_blocked_seconds_total\{app="spinner"\} [1-9]/m);

    // After an await the loop runs outside the handler's call: still reported, with no app named.
    const flag2 = path.join(d, FLAGS[1]!);
    const spinLater = request(url, `/apps/spinner/spin-after-await?flag=${encodeURIComponent(flag2)}`);
    await p.line(() => blockedLines(p).length === 2, 'the second warning');
    const second = blockedLines(p)[1]!;
    expect(second.app).toBeUndefined();
    expect(second.msg).toContain("no app's handler is on the stack");
    await fs.writeFile(flag2, '');
    expect((await spinLater).text).toBe('spun');
    await p.line(
      () => p.lines.filter((l) => l.event === 'loop-resumed').length === 2,
      'the second resume line',
    );

    // Every app answers again; the watcher thread does not hold the process at shutdown.
    expect((await request(url, '/apps/calm/api/info')).status).toBe(200);
    expect(await p.stop()).toBe(0);
  }, 60_000);
});
