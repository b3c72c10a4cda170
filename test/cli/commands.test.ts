/**
 * plan / apply / status / start / stop as a user runs them: the CLI in-process with captured
 * output, against a temp folder with a SQLite main database and, for the server commands, a
 * real `serve` on port 0.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serverTarget } from '../../src/cli/admin-client.js';
import { resolveSettings } from '../../src/config/settings.js';
import { TABLES } from '../../src/state/dialect.js';
import { runCli } from '../helpers/cli.js';
import { postgres } from '../helpers/servers.js';
import { ADMIN_TOKEN, manifest, type Serve, startServe } from '../serve/harness.js';
import { dialectsUnderTest } from '../state/dialects.js';

const PG = await postgres();

describe('appvisor plan and apply', () => {
  let cwd: string;

  beforeAll(async () => {
    cwd = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-cli-plan-'));
    await fs.mkdir(path.join(cwd, 'apps.d'));
    await fs.writeFile(path.join(cwd, 'apps.d', 'crm.yaml'), manifest('crm', 'startMode: with-main\n'));
    await fs.writeFile(
      path.join(cwd, 'apps.d', 'ext.yaml'),
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a manifest's ${VAR}, not a JS template.
      manifest('ext', 'database:\n  mode: new-connection\n  connection: {url: "${EXT_URL}"}\n'),
    );
  });
  afterAll(() => fs.rm(cwd, { recursive: true, force: true }));

  it('plan exits 1 on an invalid manifest after printing the plan for the rest, and never prints a password', async () => {
    const { code, stdout, stderr } = await runCli(['plan'], { cwd });
    expect(code).toBe(1);
    expect(stdout).toMatch(/^\+ crm +create-database +database crm/m);
    expect(stderr).toMatch(/^apps\.d\/ext\.yaml:\d+:\d+: .*EXT_URL/m);
    // A server that cannot be reached blocks only its app, and the password stays hidden.
    const unreachable = await runCli(['plan', '--json'], {
      cwd,
      env: { EXT_URL: 'postgres://bob:hunter2@127.0.0.1:9/x' },
    });
    expect(unreachable.code).toBe(1);
    expect(unreachable.stdout + unreachable.stderr).not.toContain('hunter2');
    const json = JSON.parse(unreachable.stdout) as {
      changes: { app: string; action: string; detail: string }[];
    };
    expect(json.changes.find((c) => c.app === 'ext')).toMatchObject({
      action: 'refuse',
      detail: /^blocked: cannot reach/,
    });
    expect(json.changes.find((c) => c.app === 'crm')?.action).toBe('create-database');
  });

  it.skipIf(!PG.available)('shows a connection URL with its password redacted', async () => {
    const u = new URL(PG.url);
    u.password = 'hunter2';
    u.pathname = '';
    const { stdout } = await runCli(['plan', '--json'], { cwd, env: { EXT_URL: u.toString() } });
    expect(stdout).not.toContain('hunter2');
    const json = JSON.parse(stdout) as { changes: { app: string; action: string; detail: string }[] };
    expect(json.changes.find((c) => c.app === 'ext')?.detail).toMatch(/:\*\*\*@/);
  });

  it('plan exits 2 with changes, apply carries them out, then plan exits 0; --json has the SPEC shape', async () => {
    await fs.rm(path.join(cwd, 'apps.d', 'ext.yaml'));
    const before = await runCli(['plan', '--json'], { cwd });
    expect(before.code).toBe(2);
    const json = JSON.parse(before.stdout) as { changes: unknown[]; errors: unknown[] };
    expect(Object.keys(json).sort()).toEqual(['changes', 'errors']);
    expect(json.changes).toContainEqual({
      app: 'crm',
      action: 'create-database',
      detail: expect.any(String),
    });
    // plan changed nothing: not even the state store exists yet.
    await expect(fs.access(path.join(cwd, 'data', 'main.sqlite'))).rejects.toThrow();

    const apply = await runCli(['apply'], { cwd });
    expect(apply.code).toBe(0);
    expect(apply.stdout).toMatch(/^\+ crm create-database created/m);
    expect(apply.stdout).not.toMatch(/secret[^\n]*[A-Za-z0-9_-]{40}/);
    expect(await runCli(['plan'], { cwd })).toMatchObject({ code: 0, stdout: 'No changes.\n' });
    expect(await runCli(['apply'], { cwd })).toMatchObject({ code: 0, stdout: 'Nothing to do.\n' });
  });
});

describe('appvisor status, start and stop', () => {
  let serve: Serve;
  const env = (): NodeJS.ProcessEnv => ({ APPVISOR_ADMIN_TOKEN: ADMIN_TOKEN });

  beforeAll(async () => {
    serve = await startServe({
      manifests: { 'crm.yaml': manifest('crm', 'startMode: with-main\n'), 'wiki.yaml': manifest('wiki') },
    });
  });
  afterAll(() => serve.close());

  it('status prints a table of the apps', async () => {
    const { code, stdout } = await runCli(['status', '--url', serve.sup.url], { cwd: serve.dir, env: env() });
    expect(code).toBe(0);
    const [table, replicas, ...rest] = stdout.trim().split('\n\n');
    const lines = table!.split('\n');
    expect(lines[0]).toMatch(/^NAME +STATUS +REPLICAS +APPLICATION +MODE +DATABASE +DOMAINS +ERROR$/);
    expect(lines.slice(1).map((l) => l.split(/ +/).slice(0, 4))).toEqual([
      ['crm', 'running', '1/1', 'running'],
      ['wiki', 'stopped', '0/1', 'running'],
    ]);
    // This one replica, and no warning: its apps.d is what is applied, SQLite has no max_connections.
    const replicaLines = replicas!.split('\n');
    expect(replicaLines[0]).toMatch(/^REPLICA +ROLE +STATE +HOST +PID +VERSION +LAST SEEN$/);
    expect(replicaLines.slice(1)).toEqual([
      expect.stringMatching(
        new RegExp(`^${serve.sup.replica.id} \\(this one\\) +leader +live +\\S+ +${process.pid} `),
      ),
    ]);
    expect(rest).toEqual([]);
    const json = await runCli(['status', '--json', '--url', serve.sup.url], { cwd: serve.dir, env: env() });
    const apps = JSON.parse(json.stdout);
    expect(apps).toHaveLength(2);
    expect(apps[0].replicas).toEqual([
      { id: serve.sup.replica.id, status: 'running', startedAt: expect.any(String) },
    ]);
  });

  it('reads the token from data/admin-token when the variable is unset', async () => {
    await fs.mkdir(serve.dataDir, { recursive: true });
    await fs.writeFile(path.join(serve.dataDir, 'admin-token'), `${ADMIN_TOKEN}\n`);
    const { code } = await runCli(['status', '--url', serve.sup.url], {
      cwd: serve.dir,
      env: { APPVISOR_DATA_DIR: serve.dataDir },
    });
    expect(code).toBe(0);
  });

  it('stop and start ask the server, which acts on them', async () => {
    const stop = await runCli(['stop', 'crm', '--url', serve.sup.url], { cwd: serve.dir, env: env() });
    expect(stop).toMatchObject({ code: 0, stdout: expect.stringMatching(/^Stopping crm/) });
    await expect.poll(async () => (await serve.view('crm')).status).toBe('stopped');
    const start = await runCli(['start', 'crm', '--url', serve.sup.url], { cwd: serve.dir, env: env() });
    expect(start.code).toBe(0);
    await expect.poll(async () => (await serve.view('crm')).status).toBe('running');
  });

  it('says clearly what is wrong: unknown app, wrong token, no server, no token', async () => {
    const unknown = await runCli(['start', 'nope', '--url', serve.sup.url], { cwd: serve.dir, env: env() });
    expect(unknown).toMatchObject({ code: 1, stderr: 'appvisor: no app named nope\n' });

    const wrong = await runCli(['status', '--url', serve.sup.url], {
      cwd: serve.dir,
      env: { APPVISOR_ADMIN_TOKEN: 'wrong-token-0123456789' },
    });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/refused the admin token/);

    const closed = await runCli(['status', '--url', 'http://127.0.0.1:9'], { cwd: serve.dir, env: env() });
    expect(closed.code).toBe(1);
    expect(closed.stderr).toMatch(/no appvisor server answers at http:\/\/127\.0\.0\.1:9: .*appvisor serve/);

    const empty = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-cli-notoken-'));
    const none = await runCli(['status', '--url', serve.sup.url], { cwd: empty, env: {} });
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/no admin token: set APPVISOR_ADMIN_TOKEN/);
    await fs.rm(empty, { recursive: true, force: true });
  });
});

describe.skipIf(!PG.available)('appvisor status with replicas on PostgreSQL', () => {
  it('counts each app over the live replicas and warns of drift and of budgets over max_connections', async () => {
    const db = await (await dialectsUnderTest()).find((d) => d.dialect === 'postgres')!.create();
    // A budget no server allows, so the warning is certain.
    const serve = await startServe({
      databaseUrl: db.url,
      settings: { database: { url: db.url, connectionBudget: 1_000_000 } },
      manifests: { 'crm.yaml': manifest('crm', 'startMode: with-main\ndatabase: {mode: new-schema}\n') },
    });
    try {
      // Another replica, alive, whose apps.d differs for blog and crm, running nothing.
      const info = {
        appvisorVersion: '0.1.0',
        application: { name: 'sample', version: '1' },
        connectionBudget: 10,
        drift: ['blog', 'crm'],
        apps: {},
      };
      await db.sql(
        `INSERT INTO ${db.store(TABLES.replicas)} (id, host, pid, version, started_at, last_seen_at, info)
         VALUES (?, ?, ?, ?, ?, (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::bigint + 60000, ?)`,
        ['other-7-abcd', 'elsewhere', 7, '1', new Date().toISOString(), JSON.stringify(info)],
      );
      const env = { APPVISOR_ADMIN_TOKEN: ADMIN_TOKEN };
      const { code, stdout } = await runCli(['status', '--url', serve.sup.url], { cwd: serve.dir, env });
      expect(code).toBe(0);
      expect(stdout).toMatch(/^crm +running +1\/2 running /m);
      expect(stdout).toMatch(/^other-7-abcd +follower +live +elsewhere +7 /m);
      expect(stdout).toContain(
        'warning: replica other-7-abcd: its apps.d differs from what is applied for blog, crm (it does not act on them)',
      );
      expect(stdout).toMatch(
        /^warning: 2 live replicas may open 1000010 connections .* max_connections \d+/m,
      );
    } finally {
      await serve.close();
      await db.drop();
    }
  });
});

describe('appvisor status, start and stop find the server from the settings, as serve does', () => {
  let serve: Serve;
  let port: number;
  const token = { APPVISOR_ADMIN_TOKEN: ADMIN_TOKEN };

  beforeAll(async () => {
    serve = await startServe({ manifests: { 'crm.yaml': manifest('crm') } });
    port = serve.sup.address.port;
  });
  afterAll(() => serve.close());

  it('status with only APPVISOR_PORT set reaches the server on that port', async () => {
    const { code, stdout, stderr } = await runCli(['status'], {
      cwd: serve.dir,
      env: { ...token, APPVISOR_PORT: String(port) },
    });
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^crm +stopped/m);
  });

  it('a wildcard APPVISOR_HOST is reached on the loopback address', async () => {
    const env = { ...token, APPVISOR_HOST: '0.0.0.0', APPVISOR_PORT: String(port) };
    expect(await runCli(['status', '--json'], { cwd: serve.dir, env })).toMatchObject({ code: 0 });
  });

  it('--config names the settings: the port, and the data dir that holds the admin token', async () => {
    await fs.writeFile(path.join(serve.dataDir, 'admin-token'), `${ADMIN_TOKEN}\n`);
    const config = path.join(serve.dir, 'elsewhere.yaml');
    await fs.writeFile(config, `listen: { port: ${port} }\ndataDir: ${serve.dataDir}\n`);
    const empty = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-cli-config-'));
    try {
      const status = await runCli(['status', '--config', config], { cwd: empty, env: {} });
      expect(status).toMatchObject({ code: 0, stderr: '' });
      expect(status.stdout).toMatch(/^crm /m);
      const start = await runCli(['start', 'crm', '--config', config], { cwd: empty, env: {} });
      expect(start).toMatchObject({ code: 0, stdout: expect.stringMatching(/^Starting crm/) });
      await expect.poll(async () => (await serve.view('crm')).status).toBe('running');
      const stop = await runCli(['stop', 'crm', '--config', config], { cwd: empty, env: {} });
      expect(stop.code).toBe(0);
      await expect.poll(async () => (await serve.view('crm')).status).toBe('stopped');
      // ./appvisor.yaml is read the same way, and the environment wins over it.
      await fs.writeFile(path.join(empty, 'appvisor.yaml'), 'listen: { port: 9 }\n');
      const overridden = await runCli(['status'], {
        cwd: empty,
        env: { ...token, APPVISOR_PORT: String(port) },
      });
      expect(overridden.code).toBe(0);
    } finally {
      await fs.rm(empty, { recursive: true, force: true });
    }
  });

  it('--url wins over the settings', async () => {
    const env = { ...token, APPVISOR_PORT: '9' };
    expect((await runCli(['status', '--url', serve.sup.url], { cwd: serve.dir, env })).code).toBe(0);
  });

  it('says where the address came from when nothing answers there', async () => {
    const { code, stderr } = await runCli(['status'], {
      cwd: serve.dir,
      env: { ...token, APPVISOR_PORT: '9' },
    });
    expect(code).toBe(1);
    expect(stderr).toMatch(
      /no appvisor server answers at http:\/\/127\.0\.0\.1:9: ECONNREFUSED; .*APPVISOR_PORT/,
    );
  });

  it('sends the first admin.hosts entry as Host when the server answers /_supervisor only there', async () => {
    const restricted = await startServe({
      manifests: { 'crm.yaml': manifest('crm') },
      settings: { admin: { hosts: ['admin.localhost'] } },
    });
    try {
      const config = path.join(restricted.dir, 'appvisor.yaml');
      await fs.writeFile(
        config,
        `listen: { port: ${restricted.sup.address.port} }\nadmin: { hosts: [admin.localhost] }\n`,
      );
      const status = await runCli(['status', '--json'], { cwd: restricted.dir, env: token });
      expect(status).toMatchObject({ code: 0, stderr: '' });
      expect(JSON.parse(status.stdout)).toHaveLength(1);
    } finally {
      await restricted.close();
    }
  });
});

describe('serverTarget', () => {
  const target = (input: Parameters<typeof resolveSettings>[0], url?: string) =>
    serverTarget(resolveSettings(input, { env: {}, cwd: '/srv' }), url);

  it.each([
    [{}, 'http://127.0.0.1:13000'],
    [{ listen: { host: '0.0.0.0', port: 8080 } }, 'http://127.0.0.1:8080'],
    [{ listen: { host: '::' } }, 'http://[::1]:13000'],
    [{ listen: { host: '[::]' } }, 'http://[::1]:13000'],
    [{ listen: { host: '::1' } }, 'http://[::1]:13000'],
    [{ listen: { host: 'fd00::7' } }, 'http://[fd00::7]:13000'],
    [{ listen: { host: 'localhost', port: 1 } }, 'http://localhost:1'],
    [{ listen: { host: '10.0.0.5' } }, 'http://10.0.0.5:13000'],
  ])('listen %j → %s', (input, url) => {
    expect(target(input)).toEqual({ url, from: 'settings' });
  });

  it('sends an admin host as Host unless the address is one', () => {
    expect(target({ admin: { hosts: ['Admin.example.com', 'b'] } })).toEqual({
      url: 'http://127.0.0.1:13000',
      host: 'Admin.example.com:13000',
      from: 'settings',
    });
    expect(target({ admin: { hosts: ['x', '127.0.0.1'] } })).toEqual({
      url: 'http://127.0.0.1:13000',
      from: 'settings',
    });
  });

  it('takes --url as it is, and refuses what is not an http(s) URL', () => {
    expect(target({ listen: { port: 1 } }, 'https://appvisor.example.com/')).toEqual({
      url: 'https://appvisor.example.com/',
      from: 'flag',
    });
    expect(() => target({}, 'appvisor.example.com')).toThrow(/--url must be an http:\/\/ or https:\/\/ URL/);
  });

  it('cannot find a server that listens on port 0', () => {
    expect(() => target({ listen: { port: 0 } })).toThrow(/listen\.port 0 .*pass --url/);
  });
});
