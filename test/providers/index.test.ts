import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { MysqlProvider } from '../../src/dialects/mysql/provider.js';
import { PostgresProvider } from '../../src/dialects/postgres/provider.js';
import { parseDatabaseUrl } from '../../src/dialects/registry.js';
import { SqliteProvider } from '../../src/dialects/sqlite/provider.js';
import { createProvider } from '../../src/providers/index.js';

describe('createProvider', () => {
  it.each([
    ['sqlite:data/main.sqlite', SqliteProvider, 'sqlite'],
    ['postgres://app:secret@db.example:5433/main', PostgresProvider, 'postgres://app@db.example:5433'],
    ['postgresql://app@db.example/main', PostgresProvider, 'postgres://app@db.example:5432'],
    ['mysql://app:secret@db.example/main', MysqlProvider, 'mysql://app@db.example:3306'],
    ['mariadb://app:secret@db.example:3307', MysqlProvider, 'mysql://app@db.example:3307'],
  ])('picks the provider for %s and names its server without the password', async (url, type, server) => {
    const provider = createProvider(url, { dataDir: os.tmpdir() });
    try {
      expect(provider).toBeInstanceOf(type);
      expect(provider.server.startsWith(server)).toBe(true);
      expect(provider.server).not.toContain('secret');
    } finally {
      await provider.close();
    }
  });

  it('accepts a parsed URL', async () => {
    const provider = createProvider(parseDatabaseUrl('postgres://u@h/db'), { dataDir: os.tmpdir() });
    expect(provider.dialect).toBe('postgres');
    await provider.close();
  });

  it('rejects an unsupported scheme with CONFIG_INVALID', () => {
    expect(() => createProvider('oracle://x', { dataDir: os.tmpdir() })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
  });
});
