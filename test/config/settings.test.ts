import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadSettings, resolveSettings } from '../../src/config/settings.js';
import { resolveDatabaseUrl } from '../../src/dialects/registry.js';
import { AppvisorError, codeOf } from '../../src/errors.js';
import { tempDir } from '../manifests/helpers.js';

let cwd: string;
let cleanup: () => Promise<void>;
beforeEach(async () => {
  ({ dir: cwd, cleanup } = await tempDir('appvisor-settings-'));
});
afterEach(() => cleanup());

const write = (name: string, text: string) => writeFile(path.join(cwd, name), text);

async function failure(promise: Promise<unknown>): Promise<AppvisorError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AppvisorError);
  return err as AppvisorError;
}

describe('loadSettings', () => {
  it('uses the defaults of SPEC §3 without a file or environment', async () => {
    const settings = await loadSettings({ cwd, env: {} });
    expect(settings).toEqual({
      listen: { host: '127.0.0.1', port: 13000 },
      appsDir: path.join(cwd, 'apps.d'),
      backupsDir: path.join(cwd, 'backups'),
      dataDir: path.join(cwd, 'data'),
      database: {
        url: `sqlite:${path.join(cwd, 'data', 'main.sqlite')}`,
        connectionBudget: 64,
        schemaPoolSize: 10,
      },
      app: undefined,
      applications: {},
      reconcile: { concurrency: 4 },
      mainDatabase: { adopt: false },
      admin: {},
      metrics: { maxAppLabels: 5000 },
      discoveryAdapter: 'local',
      processAdapter: 'local',
      deletionGraceMs: 86_400_000,
      idleStopMs: 0,
      shutdownDrainMs: 0,
      configFile: undefined,
    });
    expect(
      Object.isFrozen(settings) && Object.isFrozen(settings.listen) && Object.isFrozen(settings.database),
    ).toBe(true);
    expect(Object.isFrozen(settings.mainDatabase)).toBe(true);
  });

  it('reads appvisor.yaml in the working directory, resolving paths against it', async () => {
    await write(
      'appvisor.yaml',
      [
        'listen: { host: 0.0.0.0, port: 8080 }',
        'appsDir: manifests',
        'dataDir: /var/lib/appvisor',
        'app: ./my-app.js',
      ].join('\n'),
    );
    const settings = await loadSettings({ cwd, env: {} });
    expect(settings).toMatchObject({
      listen: { host: '0.0.0.0', port: 8080 },
      appsDir: path.join(cwd, 'manifests'),
      dataDir: '/var/lib/appvisor',
      // A custom dataDir moves the default main database.
      database: { url: 'sqlite:/var/lib/appvisor/main.sqlite' },
      app: path.join(cwd, 'my-app.js'),
      configFile: path.join(cwd, 'appvisor.yaml'),
    });
  });

  it('lets the environment win over the file, and --dir win over both', async () => {
    await write(
      'appvisor.yaml',
      'listen: { host: a, port: 1 }\nappsDir: from-file\ndatabase: { url: "sqlite:file.sqlite" }\n',
    );
    const env = {
      APPVISOR_HOST: 'b',
      APPVISOR_PORT: '2',
      APPVISOR_APPS_DIR: 'from-env',
      APPVISOR_DATA_DIR: 'd',
      APPVISOR_DATABASE_URL: 'postgres://u:p@db:5432/main',
      APPVISOR_APP: '/abs/app.js',
    };
    expect(await loadSettings({ cwd, env })).toMatchObject({
      listen: { host: 'b', port: 2 },
      appsDir: path.join(cwd, 'from-env'),
      dataDir: path.join(cwd, 'd'),
      database: { url: 'postgres://u:p@db:5432/main' },
      app: '/abs/app.js',
    });
    expect((await loadSettings({ cwd, env, appsDir: 'from-flag' })).appsDir).toBe(
      path.join(cwd, 'from-flag'),
    );
  });

  it('treats empty environment variables as unset', async () => {
    const settings = await loadSettings({ cwd, env: { APPVISOR_PORT: '', APPVISOR_HOST: '' } });
    expect(settings.listen).toEqual({ host: '127.0.0.1', port: 13000 });
  });

  it('reads --config FILE instead, which must exist', async () => {
    await write('other.yaml', 'appsDir: elsewhere\n');
    expect((await loadSettings({ cwd, env: {}, configFile: 'other.yaml' })).appsDir).toBe(
      path.join(cwd, 'elsewhere'),
    );
    const err = await failure(loadSettings({ cwd, env: {}, configFile: 'missing.yaml' }));
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toBe('config file missing.yaml does not exist');
  });

  it('reads deletionGrace as a duration from the file, the environment winning', async () => {
    await write('appvisor.yaml', 'deletionGrace: 7d\n');
    expect((await loadSettings({ cwd, env: {} })).deletionGraceMs).toBe(7 * 86_400_000);
    const env = { APPVISOR_DELETION_GRACE: '1h30m' };
    expect((await loadSettings({ cwd, env })).deletionGraceMs).toBe(90 * 60_000);
    expect((await loadSettings({ cwd: os.tmpdir(), env: {} })).deletionGraceMs).toBe(86_400_000);
    const err = await failure(loadSettings({ cwd, env: { APPVISOR_DELETION_GRACE: 'soon' } }));
    expect(err.message).toBe("APPVISOR_DELETION_GRACE must be a duration such as 30m, 24h or 7d, got 'soon'");
    await write('appvisor.yaml', 'deletionGrace: 1 day\n');
    expect((await failure(loadSettings({ cwd, env: {} }))).message).toMatch(
      /^appvisor\.yaml:1:16: deletionGrace '1 day' is not valid: write a duration/,
    );
  });

  it('reads idleStop (default off) from the file, the environment winning', async () => {
    await write('appvisor.yaml', 'idleStop: 15m\n');
    expect((await loadSettings({ cwd, env: {} })).idleStopMs).toBe(15 * 60_000);
    expect((await loadSettings({ cwd, env: { APPVISOR_IDLE_STOP: 'off' } })).idleStopMs).toBe(0);
    await write('appvisor.yaml', 'idleStop: 0\n');
    expect((await loadSettings({ cwd, env: { APPVISOR_IDLE_STOP: '90s' } })).idleStopMs).toBe(90_000);
    expect((await loadSettings({ cwd, env: {} })).idleStopMs).toBe(0);
    const err = await failure(loadSettings({ cwd, env: { APPVISOR_IDLE_STOP: 'soon' } }));
    expect(err.message).toBe("APPVISOR_IDLE_STOP must be a duration such as 15m or 1h, or off, got 'soon'");
    await write('appvisor.yaml', 'idleStop: later\n');
    expect((await failure(loadSettings({ cwd, env: {} }))).message).toMatch(
      /^appvisor\.yaml:1:11: idleStop 'later' is not valid: write a duration/,
    );
  });

  it('reads mainDatabase.adopt (default false) and refuses anything but a boolean', async () => {
    await write('appvisor.yaml', 'mainDatabase: { adopt: true }\n');
    expect((await loadSettings({ cwd, env: {} })).mainDatabase).toEqual({ adopt: true });
    await write('appvisor.yaml', 'mainDatabase: {}\n');
    expect((await loadSettings({ cwd, env: {} })).mainDatabase).toEqual({ adopt: false });
    await write('appvisor.yaml', 'mainDatabase:\n  adopt: "yes"\n');
    const err = await failure(loadSettings({ cwd, env: {} }));
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toMatch(/^appvisor\.yaml:2:10: mainDatabase\.adopt /);
  });

  it('reads reconcile.concurrency (default 4) and refuses anything but a whole number from 1 to 64', async () => {
    await write('appvisor.yaml', 'reconcile: { concurrency: 8 }\n');
    expect((await loadSettings({ cwd, env: {} })).reconcile).toEqual({ concurrency: 8 });
    await write('appvisor.yaml', 'reconcile: {}\n');
    expect((await loadSettings({ cwd, env: {} })).reconcile).toEqual({ concurrency: 4 });
    for (const [value, why] of [
      ['0', 'must be >= 1'],
      ['65', 'must be <= 64'],
      ['2.5', 'must be a whole number'],
    ]) {
      await write('appvisor.yaml', `reconcile:\n  concurrency: ${value}\n`);
      const err = await failure(loadSettings({ cwd, env: {} }));
      expect(err.code).toBe('CONFIG_INVALID');
      expect(err.message).toMatch(new RegExp(`^appvisor\\.yaml:2:16: reconcile\\.concurrency ${why}`));
    }
  });

  it('reads shutdownDrain (default none) from the file, the environment winning', async () => {
    await write('appvisor.yaml', 'shutdownDrain: 2s\n');
    expect((await loadSettings({ cwd, env: {} })).shutdownDrainMs).toBe(2_000);
    expect((await loadSettings({ cwd, env: { APPVISOR_SHUTDOWN_DRAIN: '1500ms' } })).shutdownDrainMs).toBe(
      1_500,
    );
    const err = await failure(loadSettings({ cwd, env: { APPVISOR_SHUTDOWN_DRAIN: 'soon' } }));
    expect(err.message).toMatch(/APPVISOR_SHUTDOWN_DRAIN must be a duration/);
  });

  it('accepts an empty appvisor.yaml', async () => {
    await write('appvisor.yaml', '# nothing to change\n');
    expect((await loadSettings({ cwd, env: {} })).listen.port).toBe(13000);
  });

  it('reports every problem in the file with file:line:col', async () => {
    await write(
      'appvisor.yaml',
      ['listen:', '  port: "80"', '  hots: x', 'database:', '  url: redis://x', 'colour: 1'].join('\n'),
    );
    const err = await failure(loadSettings({ cwd, env: {} }));
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message.split('\n')).toEqual([
      "appvisor.yaml:2:9: listen.port must be a whole number, got '80'",
      "appvisor.yaml:3:3: unknown field 'hots' in listen; did you mean 'host'?",
      'appvisor.yaml:5:8: database.url is not valid: use sqlite:PATH, postgres://user:password@host:port/db or mysql://user:password@host:port/db',
      "appvisor.yaml:6:1: unknown field 'colour'; allowed: listen, appsDir, backupsDir, dataDir, database, app, applications, shutdownDrain, deletionGrace, reconcile, idleStop, mainDatabase, admin, metrics",
    ]);
  });

  it.each([
    ['a YAML syntax error', 'listen: [\n', /^appvisor\.yaml:2:1: YAML syntax error/],
    ['a list', '- a\n', /^appvisor\.yaml:1:1: expected a mapping of settings/],
    [
      'a port out of range',
      'listen: { port: 70000 }\n',
      /^appvisor\.yaml:1:17: listen\.port must be <= 65535$/,
    ],
    ['binary content', 'a\0b', /^appvisor\.yaml:1:1: .*binary file/],
  ])('reports %s', async (_title, text, message) => {
    await write('appvisor.yaml', text);
    expect((await failure(loadSettings({ cwd, env: {} }))).message).toMatch(message);
  });

  it.each(['abc', '-1', '65536', '80.5', '1e3', ' 80'])('rejects APPVISOR_PORT=%j', async (port) => {
    const err = await failure(loadSettings({ cwd, env: { APPVISOR_PORT: port } }));
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toBe(`APPVISOR_PORT must be a whole number from 0 to 65535, got '${port}'`);
  });

  it.each(['0', '65535', '8080'])('accepts APPVISOR_PORT=%s', async (port) => {
    expect((await loadSettings({ cwd, env: { APPVISOR_PORT: port } })).listen.port).toBe(Number(port));
  });

  it('rejects a malformed APPVISOR_DATABASE_URL without echoing it', async () => {
    const err = await failure(loadSettings({ cwd, env: { APPVISOR_DATABASE_URL: 'redis://u:hunter2@h' } }));
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).not.toContain('hunter2');
  });

  it.each(['APP_DISCOVERY_ADAPTER', 'APP_PROCESS_ADAPTER'])(
    'rejects an unsupported %s, listing the supported ones',
    async (name) => {
      const err = await failure(loadSettings({ cwd, env: { [name]: 'kubernetes' } }));
      expect(codeOf(err)).toBe('ADAPTER_UNSUPPORTED');
      expect(err.message).toBe(`${name}=kubernetes is not supported; supported: local`);
    },
  );

  it('accepts the local adapters spelled out', async () => {
    const settings = await loadSettings({
      cwd,
      env: { APP_DISCOVERY_ADAPTER: 'local', APP_PROCESS_ADAPTER: 'local' },
    });
    expect([settings.discoveryAdapter, settings.processAdapter]).toEqual(['local', 'local']);
  });
});

describe('resolveDatabaseUrl', () => {
  it.each([
    ['sqlite:data/main.sqlite', 'sqlite:/work/data/main.sqlite'],
    ['sqlite:/abs/x.sqlite', 'sqlite:/abs/x.sqlite'],
    ['sqlite:///abs/x.sqlite', 'sqlite:/abs/x.sqlite'],
    ['sqlite::memory:', 'sqlite::memory:'],
    ['postgres://u@h/db', 'postgres://u@h/db'],
  ])('%s → %s', (url, expected) => {
    expect(resolveDatabaseUrl(url, '/work')).toBe(expected);
  });

  it('applies to the main database URL from any source', () => {
    const settings = resolveSettings(
      { database: { url: 'sqlite:db/main.sqlite' } },
      { env: {}, cwd: '/srv' },
    );
    expect(settings.database.url).toBe('sqlite:/srv/db/main.sqlite');
  });
});

describe('connection budget', () => {
  it.each([
    [{}, {}, 64],
    [{ database: { connectionBudget: 20 } }, {}, 20],
    [{ database: { connectionBudget: 20 } }, { APPVISOR_DB_CONNECTION_BUDGET: '8' }, 8],
  ])('file %j with env %j gives %i', (input, env, expected) => {
    expect(resolveSettings(input, { env, cwd: '/srv' }).database.connectionBudget).toBe(expected);
  });

  it.each(['0', '-1', 'many', '1.5'])('rejects APPVISOR_DB_CONNECTION_BUDGET=%s', (value) => {
    expect(() => resolveSettings({}, { env: { APPVISOR_DB_CONNECTION_BUDGET: value }, cwd: '/srv' })).toThrow(
      /APPVISOR_DB_CONNECTION_BUDGET must be a whole number of at least 1/,
    );
  });
});

describe('database.schemaPoolSize', () => {
  it('reads the shared pool size of new-schema apps from appvisor.yaml, 10 without it', async () => {
    expect(resolveSettings({}, { env: {}, cwd: '/srv' }).database.schemaPoolSize).toBe(10);
    await write('appvisor.yaml', 'database:\n  schemaPoolSize: 4\n');
    expect((await loadSettings({ cwd, env: {} })).database.schemaPoolSize).toBe(4);
  });

  it('reports a negative size with its position', async () => {
    await write('appvisor.yaml', 'database:\n  schemaPoolSize: -1\n');
    expect((await failure(loadSettings({ cwd, env: {} }))).message).toMatch(
      /^appvisor\.yaml:2:19: database\.schemaPoolSize must be >= 0$/,
    );
  });
});

describe('metrics.maxAppLabels', () => {
  it.each([
    [{}, {}, 5000],
    [{ metrics: { maxAppLabels: 10_000 } }, {}, 10_000],
    [{ metrics: { maxAppLabels: 10_000 } }, { APPVISOR_METRICS_MAX_APP_LABELS: '200' }, 200],
  ])('file %j, env %j → %i', (input, env, expected) => {
    expect(resolveSettings(input, { env, cwd: '/srv' }).metrics?.maxAppLabels).toBe(expected);
  });

  it('refuses a cap that is not a whole number from 1 to 100000, in the file and in the environment', async () => {
    for (const value of ['0', 'lots', '100001']) {
      expect(() =>
        resolveSettings({}, { env: { APPVISOR_METRICS_MAX_APP_LABELS: value }, cwd: '/srv' }),
      ).toThrow(/APPVISOR_METRICS_MAX_APP_LABELS must be a whole number from 1 to 100000/);
    }
    await write('appvisor.yaml', 'metrics:\n  maxAppLabels: 0\n');
    expect((await failure(loadSettings({ cwd, env: {} }))).message).toMatch(
      /^appvisor\.yaml:2:17: metrics\.maxAppLabels must be >= 1$/,
    );
  });
});

describe('admin.hosts', () => {
  it('reads the hosts on which /_supervisor answers from appvisor.yaml', async () => {
    await write('appvisor.yaml', 'admin:\n  hosts: [admin.example.com, 127.0.0.1, "[::1]", localhost]\n');
    const settings = await loadSettings({ cwd, env: {} });
    expect(settings.admin).toEqual({ hosts: ['admin.example.com', '127.0.0.1', '[::1]', 'localhost'] });
    expect(Object.isFrozen(settings.admin) && Object.isFrozen(settings.admin?.hosts)).toBe(true);
  });

  it.each([
    [
      'a port',
      'admin:\n  hosts: [admin.example.com:8443]\n',
      /^appvisor\.yaml:2:11: admin\.hosts\[0\] 'admin\.example\.com:8443' is not valid: write a host name/,
    ],
    [
      'a scheme',
      'admin:\n  hosts: ["https://admin.example.com"]\n',
      /^appvisor\.yaml:2:11: admin\.hosts\[0\] .* is not valid/,
    ],
    [
      'an empty list',
      'admin:\n  hosts: []\n',
      /^appvisor\.yaml:2:10: admin\.hosts must list at least 1 entry$/,
    ],
    [
      'a single host, not a list',
      'admin:\n  hosts: admin.example.com\n',
      /^appvisor\.yaml:2:10: admin\.hosts must be a list/,
    ],
    [
      'an unknown field',
      'admin:\n  host: [a]\n',
      /^appvisor\.yaml:2:3: unknown field 'host' in admin; did you mean 'hosts'\?/,
    ],
  ])('rejects %s', async (_title, text, message) => {
    await write('appvisor.yaml', text);
    expect((await failure(loadSettings({ cwd, env: {} }))).message).toMatch(message);
  });
});
