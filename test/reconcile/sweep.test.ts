/**
 * A create killed with SIGKILL between its CREATE and its move into place leaves a marked
 * temporary object behind (a PostgreSQL `_avtmp_*` database, a hidden SQLite `.tmp` file). The
 * next plan shows a `sweep` step for it, apply removes it and finishes the create; objects of
 * the same shape without this store's marker are never touched.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Settings } from '../../src/config/types.js';
import { OWNER_TABLE } from '../../src/dialects/sqlite/provider.js';
import { applyPlan, computePlan } from '../../src/reconcile/commands.js';
import { DIALECTS, type Dialect, log, manifest, pgAdmin, testSettings } from './dialects.js';

const CHILD = new URL('./interrupted-create.child.ts', import.meta.url).pathname;
const ROOT = new URL('../..', import.meta.url).pathname;

/** Runs the child until it reports the interruption, then kills it with SIGKILL. */
async function applyKilledMidCreate(settings: Settings): Promise<void> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(settings)], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => {
    err += d;
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) =>
    child.on('exit', (_code, signal) => resolve(signal)),
  );
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the child never reached the rename: ${out}${err}`)),
      20_000,
    );
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('between create and rename')) {
        clearTimeout(timer);
        child.kill('SIGKILL');
        resolve();
      }
    });
    child.on('exit', () => {
      clearTimeout(timer);
      if (!out.includes('between create and rename'))
        reject(new Error(`the child exited early: ${out}${err}`));
    });
  });
  expect(await exited).toBe('SIGKILL');
}

interface Leftovers {
  /** The names of temporary objects on the server now. */
  list(): Promise<string[]>;
  /** Makes a temporary object of the same shape that carries `marker` (or none). */
  foreign(marker: string | undefined): Promise<string>;
  drop(name: string): Promise<void>;
}

function leftoversOf(dialect: Dialect['name'], settings: Settings): Leftovers {
  if (dialect === 'sqlite') {
    const apps = path.join(settings.dataDir, 'apps');
    return {
      list: async () =>
        (await fs.readdir(apps).catch(() => [] as string[])).filter((f) => f.endsWith('.tmp')).sort(),
      foreign: async (marker) => {
        const name = `.someone.${'a'.repeat(12)}${marker ? '' : ''}.tmp`.replace(
          'a'.repeat(12),
          marker ? 'b'.repeat(12) : 'c'.repeat(12),
        );
        const db = new Database(path.join(apps, name));
        if (marker) {
          db.exec(`CREATE TABLE ${OWNER_TABLE} (owner TEXT NOT NULL, created_at TEXT NOT NULL)`);
          db.prepare(`INSERT INTO ${OWNER_TABLE} VALUES (?, ?)`).run(marker, new Date().toISOString());
        }
        db.close();
        return name;
      },
      drop: (name) => fs.rm(path.join(apps, name), { force: true }),
    };
  }
  return {
    list: async () => {
      const c = pgAdmin();
      await c.connect();
      const { rows } = await c.query<{ d: string }>(
        "SELECT datname AS d FROM pg_database WHERE datname LIKE '\\_avtmp\\_%' ORDER BY 1",
      );
      await c.end();
      return rows.map((r) => r.d);
    },
    foreign: async (marker) => {
      const name = `_avtmp_${Math.random().toString(16).slice(2, 10).padEnd(8, '0')}${'0'.repeat(8)}`;
      const c = pgAdmin();
      await c.connect();
      await c.query(`CREATE DATABASE "${name}"`);
      if (marker) await c.query(`COMMENT ON DATABASE "${name}" IS '${marker}'`);
      await c.end();
      return name;
    },
    drop: async (name) => {
      const c = pgAdmin();
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS "${name}"`);
      await c.end();
    },
  };
}

// MySQL creates a database and its marker in one statement: nothing can be left half-made.
describe.each(DIALECTS.filter((d) => d.name !== 'mysql'))('sweep on $name', (dialect) => {
  let dir: string;
  let prefix: string;
  let mainUrl: string;
  let settings: Settings;
  const made: string[] = [];

  beforeEach(async (ctx) => {
    if (!dialect.available) ctx.skip();
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-sweep-'));
    await fs.mkdir(path.join(dir, 'apps.d'));
    prefix = `t${Math.random().toString(36).slice(2, 8)}`;
    mainUrl = await dialect.mainUrl(dir);
    settings = testSettings(dir, mainUrl);
  });

  afterEach(async () => {
    if (!dialect.available) return;
    const leftovers = leftoversOf(dialect.name, settings);
    for (const name of made.splice(0)) await leftovers.drop(name);
    await dialect.cleanup(prefix, mainUrl);
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('sweeps only what carries its own marker, after a create killed between create and rename', async () => {
    const name = `${prefix}crm`;
    await fs.writeFile(path.join(settings.appsDir, 'crm.yaml'), manifest(name));
    const leftovers = leftoversOf(dialect.name, settings);
    const before = new Set(await leftovers.list());
    await applyKilledMidCreate(settings);
    const left = (await leftovers.list()).filter((n) => !before.has(n));
    expect(left).toHaveLength(1);
    made.push(...left);
    // Same shape, but not this store's: one without a marker, one of another store.
    const unmarked = await leftovers.foreign(undefined);
    const alien = await leftovers.foreign(`appvisor:0000000000000000:${name}`);
    made.push(unmarked, alien);

    const plan = await computePlan(settings);
    const mine = plan.changes.filter((c) => c.app === name);
    // The journal recorded the app as being created: the create resumes after the sweep.
    expect(mine.map((c) => c.action)).toEqual(['sweep', 'create-database', 'generate-secret', 'upgrade']);
    expect(mine[0]?.detail).toContain(`${left[0]} on ${dialect.name}`);
    expect(mine[0]?.detail).toContain('left half-made by an interrupted create');
    expect(mine[1]?.detail).toContain('resume an interrupted creation');

    const report = await applyPlan(settings, { log });
    expect(report.failures).toEqual([]);
    expect(report.outcomes.find((o) => o.step.action === 'sweep')?.result).toBe('deleted');
    const after = await leftovers.list();
    expect(after).not.toContain(left[0]);
    expect(after).toEqual(expect.arrayContaining([unmarked, alien]));
    expect(await dialect.exists(name.replaceAll('-', '_'), mainUrl)).toBe(true);
    expect((await computePlan(settings)).changes).toEqual([]);
  });
});
