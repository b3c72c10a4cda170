import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createBearerCheck } from '../../src/admin/auth.js';
import { type ResolveAdminTokenOptions, resolveAdminToken as resolve } from '../../src/admin/token.js';
import { AppvisorError } from '../../src/errors.js';
import { TABLES } from '../../src/state/dialect.js';
import { openStateStore } from '../../src/state/store.js';
import { tokenHash } from '../../src/state/tokens.js';
import type { StateStore } from '../../src/state/types.js';
import { dialectsUnderTest, type TestDatabase } from '../state/dialects.js';
import { MemoryLog } from './fakes.js';

let dir: string;
let log: MemoryLog;
/** A SQLite state store beside the data dir, for the tests of the file's handling. */
let local: StateStore;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'appvisor-token-'));
  log = new MemoryLog();
  local = await openStateStore(`sqlite:${dir}.sqlite`);
});
afterEach(async () => {
  await local.close();
  await rm(dir, { recursive: true, force: true });
  await rm(`${dir}.sqlite`, { force: true });
});

const resolveAdminToken = (opts: Omit<ResolveAdminTokenOptions, 'store'>) =>
  resolve({ store: local, ...opts });

const modeOf = async (file: string): Promise<number> => (await stat(file)).mode & 0o777;

describe('resolveAdminToken', () => {
  it('takes APPVISOR_ADMIN_TOKEN first and writes nothing', async () => {
    await writeFile(join(dir, 'admin-token'), 'from-the-file-0123456789\n', { mode: 0o600 });
    const env = { APPVISOR_ADMIN_TOKEN: 'from-the-environment-42' };
    const result = await resolveAdminToken({ env, dataDir: dir, log });
    expect(result).toEqual({ token: 'from-the-environment-42', source: 'env' });
    expect(log.lines).toEqual([]);
    expect(await local.listAdminTokens()).toEqual([]);
  });

  it.each(['short', '  fifteen-chars  ', '15-characters!!'])(
    'refuses a short APPVISOR_ADMIN_TOKEN %j with CONFIG_INVALID',
    async (value) => {
      const run = resolveAdminToken({ env: { APPVISOR_ADMIN_TOKEN: value }, dataDir: dir, log });
      await expect(run).rejects.toBeInstanceOf(AppvisorError);
      await expect(run).rejects.toMatchObject({
        code: 'CONFIG_INVALID',
        message: /APPVISOR_ADMIN_TOKEN.*16/,
      });
    },
  );

  it('reads the token file, trimmed, and does not log the token', async () => {
    const file = join(dir, 'admin-token');
    await writeFile(file, 'kept-in-the-file-0123456789\n', { mode: 0o600 });
    const result = await resolveAdminToken({ env: {}, dataDir: dir, log });
    expect(result).toEqual({ token: 'kept-in-the-file-0123456789', source: 'file', file });
    expect(JSON.stringify(log.lines)).not.toContain('kept-in-the-file');
  });

  it('tightens a token file readable by others to 0600 and warns', async () => {
    const file = join(dir, 'admin-token');
    await writeFile(file, 'kept-in-the-file-0123456789\n');
    await chmod(file, 0o644);
    const result = await resolveAdminToken({ env: {}, dataDir: dir, log });
    expect(result.source).toBe('file');
    expect(await modeOf(file)).toBe(0o600);
    expect(log.lines[0]).toMatchObject({ level: 'warn', obj: { file, mode: '644' } });
    expect(JSON.stringify(log.lines)).not.toContain('kept-in-the-file');
  });

  it('refuses a token file that is too short', async () => {
    await writeFile(join(dir, 'admin-token'), 'tiny\n', { mode: 0o600 });
    await expect(resolveAdminToken({ env: {}, dataDir: dir, log })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: /admin-token/,
    });
  });

  it('generates a token on first start: mode 0600, data dir created, logged once', async () => {
    const dataDir = join(dir, 'nested', 'data');
    const first = await resolveAdminToken({ env: {}, dataDir, log });
    const file = join(dataDir, 'admin-token');
    expect(first.source).toBe('generated');
    expect(first.file).toBe(file);
    expect(first.token).toMatch(/^[A-Za-z0-9_-]{43}$/); // 32 bytes, base64url
    expect((await readFile(file, 'utf8')).trim()).toBe(first.token);
    expect(await modeOf(file)).toBe(0o600);
    expect(log.lines).toHaveLength(1);
    expect(log.lines[0]).toMatchObject({ level: 'info', obj: { adminToken: first.token, file } });
    expect(log.lines[0]!.msg).toContain(first.token);
    expect(JSON.stringify(log.lines[0])).toContain('APPVISOR_ADMIN_TOKEN');

    const second = await resolveAdminToken({ env: {}, dataDir, log });
    expect(second).toEqual({ token: first.token, source: 'file', file });
    expect(log.lines).toHaveLength(1);
  });

  it('two first starts at once on one data dir and store keep one token and leave no temp files', async () => {
    const results = await Promise.all([
      resolveAdminToken({ env: {}, dataDir: dir, log }),
      resolveAdminToken({ env: {}, dataDir: dir, log }),
    ]);
    const winners = results.filter((r) => r.source === 'generated');
    expect(winners).toHaveLength(1);
    const winner = winners[0]!;
    // The other found the stored token (or, late enough, the winner's file): never its own.
    for (const other of results.filter((r) => r !== winner))
      expect([undefined, winner.token]).toContain(other.token);
    expect((await readFile(join(dir, 'admin-token'), 'utf8')).trim()).toBe(winner.token);
    expect(await readdir(dir)).toEqual(['admin-token']);
  });

  it('an empty APPVISOR_ADMIN_TOKEN counts as unset', async () => {
    const result = await resolveAdminToken({ env: { APPVISOR_ADMIN_TOKEN: '' }, dataDir: dir, log });
    expect(result.source).toBe('generated');
  });
});

const dialects = await dialectsUnderTest();

for (const { dialect, available, create } of dialects) {
  describe.skipIf(!available)(`admin tokens shared by replicas on ${dialect}`, () => {
    let db: TestDatabase;
    const opened: StateStore[] = [];
    const checks: (() => void)[] = [];
    const open = async (): Promise<StateStore> => {
      const store = await openStateStore(db.url, { maxConnections: 2 });
      opened.push(store);
      return store;
    };
    /** One replica: its own store handle and data dir. */
    const replica = async (name: string) => {
      const store = await open();
      const dataDir = join(dir, name, 'data');
      const replicaLog = new MemoryLog();
      // Built on first use, after the token is resolved, as serve builds it.
      let check: ReturnType<typeof createBearerCheck> | undefined;
      const accepts = async (token: string | undefined) => {
        if (!check) {
          check = createBearerCheck({ store, refreshMs: 200, missRefreshMs: 100 });
          checks.push(check.close);
        }
        return (await check({ headers: { authorization: `Bearer ${token}` } } as never)) !== undefined;
      };
      return {
        store,
        dataDir,
        log: replicaLog,
        file: join(dataDir, 'admin-token'),
        accepts,
        resolve: (env: Record<string, string> = {}) => resolve({ env, dataDir, store, log: replicaLog }),
      };
    };
    const storedRows = () => db.sql(`SELECT * FROM ${db.store(TABLES.tokens)}`);

    beforeEach(async () => {
      db = await create();
    });
    afterEach(async () => {
      for (const close of checks.splice(0)) close();
      await Promise.all(opened.splice(0).map((s) => s.close()));
      await db.drop();
    });

    it('two replicas starting at once: one generates and stores the token, both accept it and only it', async () => {
      const [one, two] = [await replica('one'), await replica('two')];
      const [a, b] = await Promise.all([one.resolve(), two.resolve()]);
      const [winner, loser] = a.source === 'generated' ? [one, two] : [two, one];
      const won = a.source === 'generated' ? a : b;
      expect([a.source, b.source].sort()).toEqual(['generated', 'store']);
      expect((a.source === 'generated' ? b : a).token).toBeUndefined();

      // Only the winner wrote the file; the loser kept no token of its own anywhere.
      expect((await readFile(winner.file, 'utf8')).trim()).toBe(won.token);
      await expect(stat(loser.file)).rejects.toMatchObject({ code: 'ENOENT' });
      const rows = await storedRows();
      expect(rows).toEqual([
        expect.objectContaining({ name: 'default', scope: 'admin', hash: tokenHash(won.token!) }),
      ]);
      expect(JSON.stringify(rows)).not.toContain(won.token);

      expect(await one.accepts(won.token)).toBe(true);
      expect(await two.accepts(won.token)).toBe(true);
      expect(await one.accepts('some-other-token-0123456789')).toBe(false);
      expect(loser.log.lines).toMatchObject([
        {
          level: 'info',
          msg: expect.stringMatching(/another replica.*data\/admin-token.*APPVISOR_ADMIN_TOKEN/),
        },
      ]);
      expect(JSON.stringify(loser.log.lines)).not.toContain(won.token);
    });

    it('imports an admin-token file from before tokens were stored, so every replica accepts it', async () => {
      const [old, other] = [await replica('old'), await replica('other')];
      await mkdir(old.dataDir, { recursive: true });
      await writeFile(old.file, 'token-from-an-older-appvisor-0123\n', { mode: 0o600 });
      expect(await old.resolve()).toEqual({
        token: 'token-from-an-older-appvisor-0123',
        source: 'file',
        file: old.file,
      });
      expect(old.log.lines).toMatchObject([{ level: 'info', msg: expect.stringContaining('now stored') }]);
      expect(await other.resolve()).toEqual({ token: undefined, source: 'store' });
      expect(await other.accepts('token-from-an-older-appvisor-0123')).toBe(true);
      expect(JSON.stringify(await storedRows())).not.toContain('token-from-an-older-appvisor');
    });

    it('a replica whose file holds another token: the store wins, the file is left and called stale', async () => {
      const [first, late] = [await replica('first'), await replica('late')];
      const { token } = await first.resolve();
      await mkdir(late.dataDir, { recursive: true });
      await writeFile(late.file, 'an-old-token-of-this-replica-0123\n', { mode: 0o600 });

      expect(await late.resolve()).toEqual({ token: undefined, source: 'store' });
      expect(late.log.lines).toMatchObject([
        { level: 'warn', msg: expect.stringContaining('stale'), obj: { file: late.file } },
      ]);
      expect(await readFile(late.file, 'utf8')).toBe('an-old-token-of-this-replica-0123\n');
      expect(await late.accepts(token)).toBe(true);
      expect(await late.accepts('an-old-token-of-this-replica-0123')).toBe(false);
    });

    it('APPVISOR_ADMIN_TOKEN is used as before: nothing stored, no file', async () => {
      const one = await replica('one');
      expect(await one.resolve({ APPVISOR_ADMIN_TOKEN: 'from-the-environment-0123' })).toEqual({
        token: 'from-the-environment-0123',
        source: 'env',
      });
      expect(await storedRows()).toEqual([]);
      await expect(stat(one.file)).rejects.toMatchObject({ code: 'ENOENT' });
    });
  });
}
