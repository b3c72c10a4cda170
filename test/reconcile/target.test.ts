import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { AppvisorError } from '../../src/errors.js';
import type { DatabaseTarget } from '../../src/reconcile/model.js';
import {
  connectionRef,
  describeTarget,
  isTargetOf,
  resolveTarget,
  targetOfItem,
} from '../../src/reconcile/target.js';
import { item, MAIN_PG, MAIN_SQLITE, manifest, PG_SERVER } from './fixtures.js';

const URL_PW = 'postgres://crm:hunter2@db.example.com:5433/postgres';

describe('resolveTarget', () => {
  it.each([
    {
      label: 'new-database on the main postgres server',
      m: manifest('crm'),
      main: MAIN_PG,
      want: { dialect: 'postgres', server: PG_SERVER, serverRef: 'main', kind: 'database', database: 'crm' },
    },
    {
      label: 'new-database on sqlite',
      m: manifest('crm', { database: { name: 'crm_db' } }),
      main: MAIN_SQLITE,
      want: { dialect: 'sqlite', server: 'data', serverRef: 'main', kind: 'database', database: 'crm_db' },
    },
    {
      label: 'new-schema in the main postgres database',
      m: manifest('crm', { database: { mode: 'new-schema', name: 'appvisor', schema: 'crm_s' } }),
      main: MAIN_PG,
      want: {
        dialect: 'postgres',
        server: PG_SERVER,
        serverRef: 'main',
        kind: 'schema',
        database: 'appvisor',
        schema: 'crm_s',
      },
    },
  ])('$label', ({ m, main, want }) => {
    expect(resolveTarget(m, main)).toEqual(want);
  });

  it.each([
    ['postgres://u@h:5432', 'postgres'],
    ['postgresql://u@h:5432/db', 'postgres'],
    ['mysql://root@127.0.0.1:3306/', 'mysql'],
    ['mariadb://root@127.0.0.1:3306', 'mysql'],
    ['MySQL://root@127.0.0.1:3306', 'mysql'],
  ])('new-connection %s -> dialect %s', (url, dialect) => {
    const t = resolveTarget(
      manifest('crm', { database: { mode: 'new-connection', connection: { url } } }),
      MAIN_PG,
    );
    expect(t).not.toBeInstanceOf(AppvisorError);
    const target = t as DatabaseTarget;
    expect(target).toMatchObject({ dialect, kind: 'database', database: 'crm', server: url });
    expect((target.serverRef as { url: string }).url).toBe(url);
  });

  it('new-connection: server is the redacted URL, serverRef keeps the real one out of JSON and inspect', () => {
    const t = resolveTarget(
      manifest('crm', { database: { mode: 'new-connection', connection: { url: URL_PW } } }),
      MAIN_SQLITE,
    ) as DatabaseTarget;
    expect(t.server).toBe('postgres://crm:***@db.example.com:5433/postgres');
    expect((t.serverRef as { url: string }).url).toBe(URL_PW);
    expect(JSON.stringify(t)).not.toContain('hunter2');
    expect(inspect(t, { depth: null })).not.toContain('hunter2');
    expect(JSON.stringify(t)).toContain('db.example.com');
  });

  it.each([
    {
      label: 'new-schema on a sqlite main database',
      m: manifest('crm', { database: { mode: 'new-schema', schema: 'crm' } }),
      main: MAIN_SQLITE,
      detail: 'new-schema needs a PostgreSQL main database; the main database is sqlite',
    },
    {
      label: 'new-schema on a mysql main database',
      m: manifest('crm', { database: { mode: 'new-schema', schema: 'crm' } }),
      main: { dialect: 'mysql', server: '127.0.0.1:3306', database: 'appvisor' } as const,
      detail: 'new-schema needs a PostgreSQL main database; the main database is mysql',
    },
    {
      label: 'new-connection to a sqlite URL',
      m: manifest('crm', {
        database: { mode: 'new-connection', connection: { url: 'sqlite:other.sqlite' } },
      }),
      main: MAIN_PG,
      detail:
        'database.connection.url must start with postgres://, postgresql://, mysql:// or mariadb:// (got sqlite:)',
    },
    {
      label: 'new-connection without a scheme',
      m: manifest('crm', { database: { mode: 'new-connection', connection: { url: '//u:pw@host' } } }),
      main: MAIN_PG,
      detail:
        'database.connection.url must start with postgres://, postgresql://, mysql:// or mariadb:// (got no scheme)',
    },
    {
      label: 'new-connection without a URL',
      m: manifest('crm', { database: { mode: 'new-connection' } }),
      main: MAIN_PG,
      detail: 'new-connection needs database.connection.url',
    },
  ])('$label -> UNSUPPORTED_MODE', ({ m, main, detail }) => {
    const r = resolveTarget(m, main);
    expect(r).toBeInstanceOf(AppvisorError);
    expect((r as AppvisorError).code).toBe('UNSUPPORTED_MODE');
    expect((r as AppvisorError).message).toBe(detail);
  });

  it('never echoes a password in an UNSUPPORTED_MODE message', () => {
    const r = resolveTarget(
      manifest('crm', {
        database: { mode: 'new-connection', connection: { url: 'oracle://sys:hunter2@h' } },
      }),
      MAIN_PG,
    ) as AppvisorError;
    expect(r.message).toContain('oracle:');
    expect(r.message).not.toContain('hunter2');
  });
});

describe('connectionRef', () => {
  it('exposes url to code, the redacted form to JSON and inspect', () => {
    const ref = connectionRef(URL_PW);
    expect(ref.url).toBe(URL_PW);
    expect(Object.keys(ref)).toEqual([]);
    expect(JSON.parse(JSON.stringify(ref))).toEqual({
      url: 'postgres://crm:***@db.example.com:5433/postgres',
    });
    expect(inspect(ref)).toContain('***');
    expect(inspect(ref)).not.toContain('hunter2');
    expect(Object.isFrozen(ref)).toBe(true);
  });
});

describe('describeTarget / isTargetOf / targetOfItem', () => {
  const db: DatabaseTarget = {
    dialect: 'postgres',
    server: PG_SERVER,
    serverRef: 'main',
    kind: 'database',
    database: 'crm',
  };
  const schema: DatabaseTarget = {
    dialect: 'postgres',
    server: PG_SERVER,
    serverRef: 'main',
    kind: 'schema',
    database: 'appvisor',
    schema: 'crm',
  };

  it.each([
    [db, 'database crm on postgres 127.0.0.1:5432'],
    [schema, 'schema crm in database appvisor on postgres 127.0.0.1:5432'],
  ])('describes %j', (t, text) => {
    expect(describeTarget(t)).toBe(text);
  });

  it.each([
    { label: 'same database', i: item('crm'), t: db, want: true },
    { label: 'other name', i: item('crm', { name: 'crm2' }), t: db, want: false },
    { label: 'other server', i: item('crm', { server: '10.0.0.1:5432' }), t: db, want: false },
    { label: 'other dialect', i: item('crm', { dialect: 'mysql' }), t: db, want: false },
    {
      label: 'schema item vs database target',
      i: item('crm', { kind: 'schema', database: 'appvisor' }),
      t: db,
      want: false,
    },
    { label: 'same schema', i: item('crm', { kind: 'schema', database: 'appvisor' }), t: schema, want: true },
    {
      label: 'schema in another database',
      i: item('crm', { kind: 'schema', database: 'other' }),
      t: schema,
      want: false,
    },
  ])('isTargetOf: $label -> $want', ({ i, t, want }) => {
    expect(isTargetOf(i, t)).toBe(want);
  });

  it('targetOfItem inverts isTargetOf', () => {
    for (const i of [item('crm'), item('crm', { kind: 'schema', database: 'appvisor' })]) {
      expect(isTargetOf(i, targetOfItem(i, 'main'))).toBe(true);
    }
  });
});
