/**
 * backup / restore / clone as a user runs them, per dialect (one whose server is unreachable is
 * skipped): a backup taken while 20 writers insert restores to one point in time; a
 * damaged archive, data newer than the code, another application's data and another dialect are
 * refused with nothing changed; a clone has the same rows and a new secret; a restore killed with
 * SIGKILL leaves the old data; a scheduled drop backs up first, and does not happen without it.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setImmediate as tick } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveSettings } from '../../src/config/settings.js';
import type { Settings } from '../../src/config/types.js';
import { parseDatabaseUrl } from '../../src/dialects/registry.js';
import { AppvisorError } from '../../src/errors.js';
import { readArchive, writeArchive } from '../../src/ops/archive.js';
import { backup } from '../../src/ops/backup.js';
import { clone } from '../../src/ops/clone.js';
import { type OpsContext, openOpsContext } from '../../src/ops/context.js';
import { restore } from '../../src/ops/restore.js';
import { HOST_TAG } from '../../src/ops/work-dir.js';
import type { SqlClient } from '../../src/providers/provider.js';
import { ProviderSet } from '../../src/providers/set.js';
import { applyPlan, computePlan } from '../../src/reconcile/commands.js';
import { parseOwner } from '../../src/reconcile/owner.js';
import { openStateStore } from '../../src/state/store.js';
import { damagedArchive } from '../helpers/damaged-archive.js';
import { masterKeyIn } from '../helpers/master-key.js';
import { uniqueName } from '../helpers/servers.js';
import { dialectsUnderTest, type TestDatabase } from '../state/dialects.js';

const log = pino({ level: 'silent' });
const ROOT = path.resolve(fileURLToPath(new URL('../..', import.meta.url)));
const DIALECTS = await dialectsUnderTest();
/** Every dialect with an app database of its own, and PostgreSQL's schema apps too. */
const CASES = [
  ...DIALECTS.map((d) => ({ ...d, mode: 'new-database' as const })),
  ...DIALECTS.filter((d) => d.dialect === 'postgres').map((d) => ({ ...d, mode: 'new-schema' as const })),
];
// Resolved here: `--import tsx` alone would look for tsx from the temp folder the child runs in.
const TSX = import.meta.resolve('tsx');
const PAUSE_BEFORE_RENAME = fileURLToPath(new URL('./pause-before-rename.mjs', import.meta.url));

/** Whether this dialect's data transfer exists (its placeholder throws UNSUPPORTED_MODE). */
function manifest(name: string, extra = ''): string {
  return `apiVersion: appvisor/v1\nkind: App\nname: ${name}\n${extra}`;
}

async function caught(work: Promise<unknown>): Promise<AppvisorError> {
  const err = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AppvisorError);
  return err as AppvisorError;
}

describe.each(CASES)('backup, restore and clone on $dialect ($mode)', (d) => {
  const skip = !d.available;
  const app = uniqueName('bk');
  /** Whether the app's data is where it was made: its database, or its schema. */
  const exists = async (name: string): Promise<boolean> =>
    (schemas ? await providers.main.observeSchema(name) : await providers.main.observeDatabase(name)).exists;
  const created: string[] = [];
  let db: TestDatabase;
  let cwd: string;
  let settings: Settings;
  let providers: ProviderSet;

  const withOps = async <T>(work: (ops: OpsContext) => Promise<T>, s: Settings = settings): Promise<T> => {
    const ops = await openOpsContext(s, { log, env: {}, by: 'test' });
    try {
      return await work(ops);
    } finally {
      await ops.close();
    }
  };
  /** App `name`'s database (or schema), as the app itself opens it. */
  const openApp = (name: string) =>
    schemas
      ? providers.main.openDatabase(parseDatabaseUrl(db.url).database!, { schema: name })
      : providers.main.openDatabase(name);
  /** A client on app `name`'s database, closed after `work`. */
  const onApp = async <T>(name: string, work: (c: SqlClient) => Promise<T>): Promise<T> => {
    const opened = await openApp(name);
    try {
      return await work(opened.client);
    } finally {
      await opened.client.close();
    }
  };
  const usernames = (name: string): Promise<string[]> =>
    onApp(name, async (c) =>
      (await c.query<{ username: string }>('SELECT username FROM users ORDER BY id')).map((r) => r.username),
    );
  const count = async (name: string): Promise<number> => (await usernames(name)).length;
  const history = async (name: string): Promise<number> => {
    const store = await openStateStore(settings.database.url, {
      masterKey: await masterKeyIn(settings.dataDir),
    });
    try {
      return (await store.listHistory(name)).length;
    } finally {
      await store.close();
    }
  };
  const schemas = d.mode === 'new-schema';
  const addApp = async (name: string, extra = ''): Promise<void> => {
    created.push(name);
    const mode = schemas ? 'database:\n  mode: new-schema\n' : '';
    await fsp.writeFile(path.join(cwd, 'apps.d', `${name}.yaml`), manifest(name, `${mode}${extra}`));
    const report = await applyPlan(settings, { log, env: {} });
    expect(report.failures).toEqual([]);
  };

  beforeAll(async () => {
    if (skip) return;
    db = await d.create();
    cwd = await fsp.mkdtemp(path.join(os.tmpdir(), 'appvisor-ops-'));
    await fsp.mkdir(path.join(cwd, 'apps.d'));
    settings = resolveSettings({ database: { url: db.url } }, { env: {}, cwd });
    providers = new ProviderSet(settings.database.url, { dataDir: settings.dataDir });
    await addApp(app);
  });

  afterAll(async () => {
    if (skip) return;
    // Schemas go with the test's main database.
    if (!schemas) for (const name of created) await providers.main.dropDatabase(name).catch(() => undefined);
    await providers.close();
    await db.drop();
    await fsp.rm(cwd, { recursive: true, force: true });
  });

  it.skipIf(skip)(
    'backs up while 20 writers insert, and restores exactly the rows of one point in time',
    async () => {
      const writers = await Promise.all(Array.from({ length: 20 }, () => openApp(app)));
      let stop = false;
      const written = writers.map(async (w, n) => {
        for (let i = 0; !stop; i++) {
          await w.client.execute('INSERT INTO users (username, password_hash, created_at) VALUES (?, ?, ?)', [
            `w${n}-${i}`,
            'x',
            Date.now(),
          ]);
          await tick();
        }
      });
      try {
        while ((await count(app)) < 200) await tick();
        const before = await count(app);
        const taken = await withOps((ops) => backup(ops, app));
        const after = await count(app);
        stop = true;
        await Promise.all(written);
        expect(taken.members).toEqual(['meta.json', 'manifest.yaml', taken.meta.data, 'secret.json']);
        expect(path.dirname(taken.file)).toBe(path.join(cwd, 'backups'));
        expect(path.basename(taken.file)).toMatch(new RegExp(`^${app}-\\d{8}T\\d{6}Z\\.tar\\.gz$`));
        expect(after).toBeGreaterThan(before);
        for (const w of writers) await w.client.close();

        const result = await withOps((ops) => restore(ops, taken.file));
        expect(result).toMatchObject({ app, created: false, dataVersion: 2 });
        const restored = await usernames(app);
        expect(restored.length).toBeGreaterThanOrEqual(before);
        expect(restored.length).toBeLessThanOrEqual(after);
        // One point in time: each writer's rows are a prefix of what it inserted, in order.
        const byWriter = new Map<string, number[]>();
        for (const u of restored) {
          const [w, i] = u.split('-') as [string, string];
          byWriter.set(w, [...(byWriter.get(w) ?? []), Number(i)]);
        }
        for (const [w, seq] of byWriter) {
          expect(
            [...seq].sort((a, b) => a - b),
            `writer ${w}`,
          ).toEqual(seq.map((_, i) => i));
        }
        const store = await openStateStore(settings.database.url, {
          masterKey: await masterKeyIn(settings.dataDir),
        });
        const [entry] = await store.listHistory(app, 1);
        await store.close();
        expect(entry).toMatchObject({ by: 'test', steps: [{ action: 'restore', result: 'updated' }] });
        expect(entry?.steps[0]?.detail).toContain(taken.file);
      } finally {
        stop = true;
        await Promise.allSettled(written);
        for (const w of writers) await w.client.close().catch(() => undefined);
      }
    },
    60_000,
  );

  it.skipIf(skip)(
    'refuses a damaged archive, newer data, another application or dialect, changing nothing',
    async () => {
      const taken = await withOps((ops) => backup(ops, app));
      await onApp(app, (c) =>
        c.execute('INSERT INTO users (username, password_hash, created_at) VALUES (?, ?, ?)', [
          'after',
          'x',
          1,
        ]),
      );
      const rows = await usernames(app);
      const entries = await history(app);

      const damaged = path.join(cwd, 'damaged.tar.gz');
      await fsp.writeFile(damaged, damagedArchive(await fsp.readFile(taken.file)));
      expect((await caught(withOps((ops) => restore(ops, damaged)))).code).toBe('ARCHIVE_INVALID');

      /** The same archive, well formed, with meta.json saying something else. */
      const rewritten = async (patch: Record<string, unknown>): Promise<string> => {
        const dir = await fsp.mkdtemp(path.join(cwd, 'x-'));
        const read = await readArchive(taken.file, dir);
        const file = path.join(cwd, `patched-${path.basename(dir)}.tar.gz`);
        const { members, ...meta } = read.meta;
        await writeArchive(
          file,
          { ...meta, ...patch },
          Object.keys(members).map((name) => ({ name, file: read.pathOf(name) })),
        );
        return file;
      };
      const newer = await caught(withOps(async (ops) => restore(ops, await rewritten({ dataVersion: 99 }))));
      expect(newer.code).toBe('APP_DATA_NEWER');
      const other = await caught(
        withOps(async (ops) =>
          restore(ops, await rewritten({ application: { name: 'someone-else', version: 1 } })),
        ),
      );
      expect(other.code).toBe('APP_WRONG_APPLICATION');
      const dialect = d.dialect === 'sqlite' ? 'postgres' : 'sqlite';
      const across = await caught(withOps(async (ops) => restore(ops, await rewritten({ dialect }))));
      expect(across.code).toBe('UNSUPPORTED_MODE');

      expect(await usernames(app)).toEqual(rows);
      expect(await history(app)).toBe(entries);
      if (d.dialect === 'sqlite') {
        expect(fs.readdirSync(path.join(settings.dataDir, 'apps')).filter((f) => f.endsWith('.tmp'))).toEqual(
          [],
        );
      }
    },
  );

  it.skipIf(skip)(
    'clones into a new app with the same rows and a new secret, and never overwrites a manifest',
    async () => {
      const dest = `${app}c`;
      created.push(dest);
      const result = await withOps((ops) => clone(ops, app, dest));
      expect(result).toMatchObject({ app: dest, from: app, created: true });
      expect(result.manifestFile).toBe(path.join(cwd, 'apps.d', `${dest}.yaml`));
      expect(await usernames(dest)).toEqual(await usernames(app));
      const store = await openStateStore(settings.database.url, {
        masterKey: await masterKeyIn(settings.dataDir),
      });
      const [srcSecret, destSecret] = [await store.getSecret(app), await store.getSecret(dest)];
      await store.close();
      expect(destSecret).toBeDefined();
      expect(destSecret).not.toBe(srcSecret);
      // A clone is an app like any other: nothing left to do for it.
      expect((await computePlan(settings, { env: {} })).changes.filter((c) => c.app === dest)).toEqual([]);

      // --as refuses a manifest that exists, and creates nothing.
      const taken = await withOps((ops) => backup(ops, app));
      const existing = `${app}x`;
      const file = path.join(cwd, 'apps.d', `${existing}.yaml`);
      await fsp.writeFile(file, '# mine\n');
      const refused = await caught(withOps((ops) => restore(ops, taken.file, { as: existing })));
      expect(refused.code).toBe('MANIFEST_INVALID');
      expect(refused.message).toMatch(/exists already/);
      expect(await fsp.readFile(file, 'utf8')).toBe('# mine\n');
      await fsp.rm(file);
      const check = await openStateStore(settings.database.url, {
        masterKey: await masterKeyIn(settings.dataDir),
      });
      expect(await check.getRecord(existing)).toBeUndefined();

      // --keep-secret under another master key: refused before anything is written.
      const stranger = `${app}s`;
      // (The store is sealed under this data folder's key: another key is refused when it opens.)
      const wrongKey = await caught(
        (async () => {
          const otherKey = await openOpsContext(settings, {
            log,
            env: { APPVISOR_MASTER_KEY: Buffer.alloc(32, 7).toString('base64') },
          });
          try {
            return await restore(otherKey, taken.file, { as: stranger, keepSecret: true });
          } finally {
            await otherKey.close();
          }
        })(),
      );
      expect(wrongKey.code).toBe('MASTER_KEY_INVALID');
      expect(fs.existsSync(path.join(cwd, 'apps.d', `${stranger}.yaml`))).toBe(false);
      expect(await check.getRecord(stranger)).toBeUndefined();

      // --keep-secret: the source's tokens open the clone.
      const kept = `${app}k`;
      created.push(kept);
      await withOps((ops) => restore(ops, taken.file, { as: kept, keepSecret: true }));
      expect(await check.getSecret(kept)).toBe(srcSecret);
      await check.close();
    },
  );

  it.skipIf(skip)(
    'a restore killed with SIGKILL mid-way leaves the old data, and the next one cleans up after it',
    async () => {
      const big = `${app}b`;
      await addApp(big);
      await onApp(big, (c) =>
        c.transaction(async (tx) => {
          const pad = 'p'.repeat(200);
          // A thousand rows a statement: one round trip each on the servers.
          for (let from = 0; from < 60_000; from += 1_000) {
            const rows = Array.from({ length: 1_000 }, (_, k) => [`u${from + k}`, pad, from + k]);
            await tx.execute(
              `INSERT INTO users (username, password_hash, created_at) VALUES ${rows.map(() => '(?, ?, ?)').join(', ')}`,
              rows.flat(),
            );
          }
        }),
      );
      const taken = await withOps((ops) => backup(ops, big));
      await onApp(big, (c) => c.execute("DELETE FROM users WHERE username LIKE 'u1%'"));
      const old = await usernames(big);

      // What the restore's load leaves beside the app's data while it runs: on SQLite a hidden
      // copy of the file, on the servers a marked temporary database or schema.
      const appsDir = path.join(settings.dataDir, 'apps');
      const leftover = new RegExp(`^\\.${big}\\.[0-9a-f]{12}\\.(part|tmp)$`);
      const copies = async (): Promise<string[]> =>
        d.dialect === 'sqlite'
          ? fs.readdirSync(appsDir).filter((f) => leftover.test(f))
          : (await providers.main.listLeftovers())
              .filter((l) => parseOwner(l.owner)?.app === big)
              .map((l) => l.name);
      // Its own process group: SIGKILL takes the CLI and the client tool it runs (pg_restore,
      // mariadb), as a killed service's whole cgroup goes. On SQLite the load is a copy of a few
      // milliseconds: the child is held right before its swap (pause-before-rename.mjs) and
      // killed there; on the servers the load takes seconds, and the kill lands while it runs.
      const sqlite = d.dialect === 'sqlite';
      const child = spawn(
        process.execPath,
        [
          '--import',
          TSX,
          ...(sqlite ? ['--import', PAUSE_BEFORE_RENAME] : []),
          path.join(ROOT, 'src/cli/main.ts'),
          'restore',
          taken.file,
          '--yes',
        ],
        {
          cwd,
          env: {
            ...process.env,
            APPVISOR_DATABASE_URL: db.url,
            ...(sqlite ? { PAUSE_BEFORE_RENAME_TO: path.join(appsDir, `${big}.sqlite`) } : {}),
          },
          stdio: ['ignore', 'ignore', 'pipe'],
          detached: true,
        },
      );
      const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
        child.on('exit', (code, signal) => resolve({ code, signal })),
      );
      // Killed the moment its load begins (the temporary copy beside the app's data appears),
      // or on SQLite once it is held before the swap.
      let gone = false;
      void exited.then(() => {
        gone = true;
      });
      const kill = () => {
        if (!gone) process.kill(-child.pid!, 'SIGKILL');
      };
      const polling = sqlite
        ? undefined
        : (async () => {
            while (!gone) {
              if ((await copies()).length > 0) kill();
              else await new Promise((r) => setTimeout(r, 5));
            }
          })();
      let stderr = '';
      child.stderr?.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        if (sqlite && stderr.includes('paused before the rename')) kill();
      });
      const { signal } = await exited;
      await polling;
      expect(signal, stderr).toBe('SIGKILL');
      if (sqlite)
        expect(stderr).toMatch(new RegExp(`paused before the rename of .*\\.${big}\\.[0-9a-f]{12}\\.tmp`));
      expect(await usernames(big)).toEqual(old);
      // The killed restore's folder, with the archive extracted in it (a whole copy of the data).
      const workOf = async (pid: number): Promise<string[]> =>
        (await fsp.readdir(os.tmpdir())).filter((f) => f.startsWith(`appvisor-restore-${HOST_TAG}-${pid}-`));
      const killedWork = await workOf(child.pid!);
      expect(killedWork).toHaveLength(1);
      expect(await fsp.readdir(path.join(os.tmpdir(), killedWork[0]!))).toContain(taken.meta.data);
      // Its lease runs out; the next restore goes through and leaves nothing half-made behind,
      // the killed one's folder included.
      const again = await withOps((ops) => restore(ops, taken.file));
      expect(again.app).toBe(big);
      expect(await count(big)).toBe(60_000);
      expect(await workOf(child.pid!)).toEqual([]);
      // A marked copy the kill left (it may have got that far) is swept like any leftover.
      expect((await applyPlan(settings, { log, env: {} })).failures).toEqual([]);
      expect(await copies()).toEqual([]);
    },
    60_000,
  );

  it.skipIf(skip)(
    'a scheduled drop backs the app up first, and does not happen when the backup fails',
    async () => {
      const doomed = `${app}d`;
      await addApp(doomed, 'deletionPolicy: drop\ndropAfter: 0s\n');
      await fsp.rm(path.join(cwd, 'apps.d', `${doomed}.yaml`));
      // The backups folder cannot be made: the drop step fails, the data stays.
      const blocked = path.join(cwd, 'not-a-folder');
      await fsp.writeFile(blocked, '');
      const failing = await applyPlan({ ...settings, backupsDir: blocked }, { log, env: {} });
      expect(failing.failures.map((f) => f.app)).toEqual([doomed]);
      const dropAction = schemas ? 'drop-schema' : 'drop-database';
      expect(failing.outcomes.find((o) => o.step.action === dropAction)?.result).toBe('failed');
      expect(await count(doomed)).toBe(0);

      const backups = path.join(cwd, 'drop-backups');
      const done = await applyPlan({ ...settings, backupsDir: backups }, { log, env: {} });
      expect(done.failures).toEqual([]);
      const drop = done.outcomes.find((o) => o.step.action === dropAction);
      expect(drop?.result).toBe('deleted');
      const [file] = await fsp.readdir(backups);
      expect(file).toMatch(new RegExp(`^${doomed}-\\d{8}T\\d{6}Z\\.tar\\.gz$`));
      expect(drop?.step.detail).toContain(path.join(backups, file!));
      expect(
        (await readArchive(path.join(backups, file!), await fsp.mkdtemp(path.join(cwd, 'y-')))).meta.app,
      ).toBe(doomed);
      expect(await exists(doomed)).toBe(false);
    },
  );
});
