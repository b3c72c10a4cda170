/**
 * `appvisor serve` as a real process (tsx, JSON log lines on stdout): what its log says, and
 * what its process-wide error handlers do.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SAMPLE_APP, type ServeProcess, startServeProcess } from '../helpers/serve-process.js';
import { manifest, request } from '../serve/harness.js';

/**
 * The sample app, plus stray errors steered by the manifest's `config`: `throwInTimer` (a timer
 * set in create() throws), `rejectLater` (create() leaves a promise that rejects, unhandled),
 * and `GET /throw-later` (answers, then a timer it set throws).
 */
const STRAY_APP = `import sample from ${JSON.stringify(SAMPLE_APP)};
export default {
  ...sample,
  async create(ctx) {
    const inner = await sample.create(ctx);
    if (ctx.config.throwInTimer) setTimeout(() => { throw new Error('timer boom'); }, 20);
    if (ctx.config.rejectLater) new Promise((_, reject) => setTimeout(() => reject(new Error('rejected boom')), 20));
    return {
      handler(req, res) {
        if (req.url !== '/throw-later') return inner.handler(req, res);
        res.end('ok');
        setImmediate(() => { throw new Error('handler timer boom'); });
      },
      close: inner.close,
    };
  },
};
`;

let proc: ServeProcess | undefined;
let dir: string | undefined;

afterEach(async () => {
  await proc?.stop();
  proc = undefined;
  if (dir) await fs.rm(dir, { recursive: true, force: true });
  dir = undefined;
});

describe('serve as a process', () => {
  it('names the real admin-token file under APPVISOR_DATA_DIR in its startup log', async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-serve-proc-'));
    await fs.mkdir(path.join(dir, 'apps.d'));
    const dataDir = path.join(dir, 'state');
    proc = startServeProcess(dir, { APPVISOR_DATA_DIR: dataDir });
    const serving = await proc.line((l) => l.msg?.startsWith('serving') === true, 'the serving line');
    const file = path.join(dataDir, 'admin-token');
    expect(serving.adminTokenFrom).toBe(file);
    expect(serving.msg).toContain(`(token: ${file})`);
    expect(serving.msg).not.toContain('data/admin-token');
    expect((await fs.readFile(file, 'utf8')).trim()).toMatch(/^[A-Za-z0-9_-]{40,}$/);
    expect(await proc.stop()).toBe(0);
  });
});

describe("serve names the app of an error thrown from the app's own timers and promises", () => {
  it('logs {app} with the error, and every app keeps answering', async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-serve-stray-'));
    const appsDir = path.join(dir, 'apps.d');
    await fs.mkdir(appsDir);
    const files: Record<string, string> = {
      'ticker.yaml': manifest('ticker', 'startMode: with-main\nconfig: {throwInTimer: true}\n'),
      'rejecter.yaml': manifest('rejecter', 'startMode: with-main\nconfig: {rejectLater: true}\n'),
      'calm.yaml': manifest('calm', 'startMode: with-main\n'),
    };
    for (const [file, text] of Object.entries(files)) await fs.writeFile(path.join(appsDir, file), text);
    await fs.writeFile(path.join(dir, 'stray-app.mjs'), STRAY_APP);
    proc = startServeProcess(dir, {
      APPVISOR_APP: './stray-app.mjs',
      APPVISOR_ADMIN_TOKEN: 'stray-test-token-0123456789',
    });
    const p = proc;
    const { url } = (await p.line((l) => l.msg === 'appvisor listening', 'the listening line')) as {
      url: string;
    };

    const uncaught = await p.line((l) => l.msg?.startsWith('uncaught exception') === true, 'the timer error');
    expect(uncaught).toMatchObject({
      level: 50,
      app: 'ticker',
      err: 'timer boom',
      msg: 'uncaught exception in app ticker',
    });
    const rejected = await p.line(
      (l) => l.msg?.startsWith('unhandled promise rejection') === true,
      'the rejection',
    );
    expect(rejected).toMatchObject({
      app: 'rejecter',
      err: 'rejected boom',
      msg: 'unhandled promise rejection in app rejecter',
    });
    expect(rejected.stack).toMatch(/rejected boom/);

    // A timer set by a request handler is the handler's app's too.
    expect((await request(url, '/apps/calm/throw-later')).text).toBe('ok');
    const later = await p.line((l) => l.err === 'handler timer boom', 'the handler timer error');
    expect(later).toMatchObject({ app: 'calm', msg: 'uncaught exception in app calm' });

    // The process is up and every app, the failing ones included, keeps answering.
    for (const name of ['ticker', 'rejecter', 'calm']) {
      const info = await request(url, `/apps/${name}/api/info`);
      expect(info.status, name).toBe(200);
      expect(info.body.name).toBe(name);
    }
    expect((await request(url, '/api/info')).body.name).toBe('main');
    expect(await p.stop()).toBe(0);
  });
});
