/**
 * What a boot does with the app's data: checkDataVersion reads the owner and the data version
 * and writes nothing (the reconciler's upgrade step is the only place that migrates).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SqlClient } from '../../src/providers/provider.js';
import {
  APPLICATION_TABLE,
  checkDataVersion,
  DATA_VERSION_TABLE,
  migrate,
  readDataVersion,
} from '../../src/runtime/migrations.js';
import { migrations as sampleMigrations } from '../../src/sample-app/migrations.js';
import {
  APP_DB_MODES,
  type AppDbFixture,
  createAppDatabase,
  modeAvailable,
} from '../helpers/app-databases.js';

let fx: AppDbFixture;
let db: SqlClient;

beforeEach(async () => {
  fx = await createAppDatabase('sqlite');
  db = fx.database.client;
});
afterEach(async () => {
  await fx.dispose();
});

const upTo = (v: number) => sampleMigrations.filter((m) => m.version <= v);

async function tables(): Promise<string[]> {
  const rows = await db.query<{ name: string }>(
    "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
  );
  return rows.map((r) => r.name);
}

/** Data at `version` owned by `owner` (undefined: no owner recorded; 0: nothing installed). */
async function dataAt(version: number, owner: string | undefined): Promise<void> {
  if (version === 0) return;
  await migrate(db, upTo(version), {
    app: 'crm',
    targetVersion: version,
    allowUpgrade: true,
    ...(owner ? { application: owner } : {}),
  });
}

describe('checkDataVersion', () => {
  it.each([
    { label: 'data at the code version', data: 2, owner: 'sample', code: 2, want: 2 },
    {
      label: 'no owner recorded (older data): accepted, not claimed',
      data: 2,
      owner: undefined,
      code: 2,
      want: 2,
    },
    { label: 'data older than the code', data: 1, owner: 'sample', code: 2, want: 'APP_NEEDS_UPGRADE' },
    { label: 'nothing installed yet', data: 0, owner: undefined, code: 2, want: 'APP_NEEDS_UPGRADE' },
    { label: 'data newer than the code', data: 2, owner: 'sample', code: 1, want: 'APP_DATA_NEWER' },
    {
      label: "another application's data",
      data: 2,
      owner: 'crm-app',
      code: 2,
      want: 'APP_WRONG_APPLICATION',
    },
  ])('$label → $want, writing nothing', async ({ data, owner, code, want }) => {
    await dataAt(data, owner);
    const before = await tables();
    const versionBefore = await readDataVersion(db);
    const result = await checkDataVersion(db, {
      app: 'crm',
      targetVersion: code,
      application: 'sample',
    }).then(
      (v) => v,
      (err: { code: string }) => err.code,
    );
    expect(result).toBe(want);
    expect(await tables()).toEqual(before);
    expect(await readDataVersion(db)).toBe(versionBefore);
    if (owner === undefined && data > 0) {
      expect(await tables()).not.toContain(APPLICATION_TABLE);
    }
  });

  it('names both versions in the needs-upgrade error', async () => {
    await dataAt(1, 'sample');
    await expect(checkDataVersion(db, { app: 'crm', targetVersion: 2 })).rejects.toMatchObject({
      code: 'APP_NEEDS_UPGRADE',
      message: expect.stringMatching(/data version 1 .* code is at 2/),
    });
    expect(await tables()).toContain(DATA_VERSION_TABLE);
  });
});

// The boot reads version and owner in one query where both tables exist, one by one otherwise:
// both paths, on every dialect's own SQL.
describe.each(APP_DB_MODES)('checkDataVersion on %s', (mode) => {
  let own: AppDbFixture;
  beforeEach(async (ctx) => {
    if (!(await modeAvailable(mode))) return ctx.skip();
    own = await createAppDatabase(mode);
  });
  afterEach(async () => {
    await own?.dispose();
  });

  const check = (application?: string) =>
    checkDataVersion(own.database.client, {
      app: 'crm',
      targetVersion: 2,
      ...(application ? { application } : {}),
    }).then(
      (v) => v,
      (err: { code: string }) => err.code,
    );
  const install = (application?: string) =>
    migrate(own.database.client, upTo(2), {
      app: 'crm',
      targetVersion: 2,
      allowUpgrade: true,
      ...(application ? { application } : {}),
    });

  it('fresh data: needs an upgrade', async () => {
    expect(await check('sample')).toBe('APP_NEEDS_UPGRADE');
  });

  it('owned data: its version, or refused for another application', async () => {
    await install('sample');
    expect(await check('sample')).toBe(2);
    expect(await check()).toBe(2);
    expect(await check('crm-app')).toBe('APP_WRONG_APPLICATION');
  });

  it('installed data: read in one round trip', async () => {
    await install('sample');
    const inner = own.database.client;
    let statements = 0;
    const counting: SqlClient = {
      dialect: inner.dialect,
      query: (sql, params) => {
        statements += 1;
        return inner.query(sql, params);
      },
      execute: (sql, params) => {
        statements += 1;
        return inner.execute(sql, params);
      },
      exec: (sql) => {
        statements += 1;
        return inner.exec(sql);
      },
      transaction: (fn) => inner.transaction(fn),
      close: () => inner.close(),
    };
    await checkDataVersion(counting, { app: 'crm', targetVersion: 2, application: 'sample' });
    expect(statements).toBe(1);
  });

  it('data with no owner recorded: its version, for any application', async () => {
    await install();
    expect(await check('sample')).toBe(2);
  });
});
