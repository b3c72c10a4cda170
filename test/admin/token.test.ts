import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resolveAdminToken } from '../../src/admin/token.js';
import { AppvisorError } from '../../src/errors.js';
import { MemoryLog } from './fakes.js';

let dir: string;
let log: MemoryLog;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'appvisor-token-'));
  log = new MemoryLog();
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const modeOf = async (file: string): Promise<number> => (await stat(file)).mode & 0o777;

describe('resolveAdminToken', () => {
  it('takes APPVISOR_ADMIN_TOKEN first and writes nothing', async () => {
    await writeFile(join(dir, 'admin-token'), 'from-the-file-0123456789\n', { mode: 0o600 });
    const env = { APPVISOR_ADMIN_TOKEN: 'from-the-environment-42' };
    const result = await resolveAdminToken({ env, dataDir: dir, log });
    expect(result).toEqual({ token: 'from-the-environment-42', source: 'env' });
    expect(log.lines).toEqual([]);
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
    expect(log.lines).toEqual([]);
  });

  it('tightens a token file readable by others to 0600 and warns', async () => {
    const file = join(dir, 'admin-token');
    await writeFile(file, 'kept-in-the-file-0123456789\n');
    await chmod(file, 0o644);
    const result = await resolveAdminToken({ env: {}, dataDir: dir, log });
    expect(result.source).toBe('file');
    expect(await modeOf(file)).toBe(0o600);
    expect(log.lines).toMatchObject([{ level: 'warn', obj: { file, mode: '644' } }]);
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

  it('two first starts at once agree on one token and leave no temp files', async () => {
    const [a, b] = await Promise.all([
      resolveAdminToken({ env: {}, dataDir: dir, log }),
      resolveAdminToken({ env: {}, dataDir: dir, log }),
    ]);
    expect(a.token).toBe(b.token);
    expect((await readFile(join(dir, 'admin-token'), 'utf8')).trim()).toBe(a.token);
    expect(await readdir(dir)).toEqual(['admin-token']);
  });

  it('an empty APPVISOR_ADMIN_TOKEN counts as unset', async () => {
    const result = await resolveAdminToken({ env: { APPVISOR_ADMIN_TOKEN: '' }, dataDir: dir, log });
    expect(result.source).toBe('generated');
  });
});
