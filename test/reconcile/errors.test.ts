/**
 * One error path, end to end on SQLite: a driver error thrown by an app's migration is reported
 * by `apply`, the record and the history with a registry code, never with the driver's own.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Settings } from '../../src/config/types.js';
import { applyPlan } from '../../src/reconcile/commands.js';
import { openStateStore } from '../../src/state/store.js';

const log = pino({ level: 'silent' });

/** An application whose only migration fails with `up`'s body. */
function failingApplication(up: string): string {
  return `export default {
  name: 'broken-app',
  version: 1,
  migrations: [{ version: 1, description: 'fails', up: async (db) => { ${up} } }],
  create: () => ({ handler: (req, res) => res.end('never') }),
};
`;
}

let dir: string;
let settings: Settings;

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-errors-'));
  const appsDir = path.join(dir, 'apps.d');
  await fs.mkdir(appsDir);
  await fs.writeFile(path.join(appsDir, 'crm.yaml'), 'apiVersion: appvisor/v1\nkind: App\nname: crm\n');
  settings = {
    listen: { host: '127.0.0.1', port: 0 },
    appsDir,
    dataDir: path.join(dir, 'data'),
    database: { url: `sqlite:${path.join(dir, 'data', 'main.sqlite')}` },
    app: path.join(dir, 'app.mjs'),
    discoveryAdapter: 'local',
    processAdapter: 'local',
    deletionGraceMs: 86_400_000,
    configFile: undefined,
  };
});

afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('a driver error in an app migration', () => {
  it.each([
    [
      'a SQLite error (SQLITE_ERROR)',
      "await db.exec('INSERT INTO missing_table VALUES (1)');",
      'no such table',
    ],
    [
      'an error carrying a PostgreSQL SQLSTATE',
      "throw Object.assign(new Error('relation \"deals\" does not exist'), { code: '42P01' });",
      'relation "deals" does not exist',
    ],
  ])('%s is reported as DB_OPERATION_FAILED everywhere', async (_label, up, text) => {
    await fs.writeFile(settings.app!, failingApplication(up));
    const report = await applyPlan(settings, { log });
    expect(report.failures).toHaveLength(1);
    const [failure] = report.failures;
    expect(failure).toMatchObject({ app: 'crm', code: 'DB_OPERATION_FAILED' });
    expect(failure!.message).toContain(text);
    expect(failure!.message).toMatch(/^upgrade for app crm failed on sqlite server /);

    const store = await openStateStore(settings.database.url, { log });
    try {
      const record = await store.getRecord('crm');
      expect(record?.lastError).toMatchObject({ code: 'DB_OPERATION_FAILED', message: failure!.message });
      const [last] = await store.listHistory('crm', 1);
      expect(last?.outcome).toBe('failed');
      expect(last?.error).toEqual({ code: 'DB_OPERATION_FAILED', message: failure!.message });
    } finally {
      await store.close();
    }
  });
});
