/** `plan` reads the store through openStateReader and must leave every byte where it was. */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateSecret } from '../../src/providers/secrets.js';
import { openStateReader } from '../../src/state/reader.js';
import { openStateStore } from '../../src/state/store.js';
import { TEST_MASTER_KEY } from '../helpers/master-key.js';
import { fullRecord, historyEntry, minimalRecord, stored } from './fixtures.js';

/** Every file in `dir` with its size, modification time and content hash. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of fs.readdirSync(dir).sort()) {
    const file = path.join(dir, name);
    const stat = fs.statSync(file);
    const hash = crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
    out[name] = `${stat.size} ${stat.mtimeMs} ${hash}`;
  }
  return out;
}

describe('state reader on SQLite', () => {
  let dir: string;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'appvisor-reader-'));
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('creates neither the file nor its folder when the store does not exist', async () => {
    const url = `sqlite:${path.join(dir, 'data', 'main.sqlite')}`;
    const reader = await openStateReader(url);
    expect(reader.storeId).toBeUndefined();
    expect(reader.target).toBe(url);
    expect(await reader.listRecords()).toEqual([]);
    expect(await reader.getSecret('main')).toBeUndefined();
    expect(await reader.listHistory('crm')).toEqual([]);
    await reader.close();
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('resolves relative paths against cwd without creating anything there', async () => {
    const reader = await openStateReader('sqlite:data/main.sqlite', { cwd: dir });
    expect(reader.target).toBe(`sqlite:${path.join(dir, 'data', 'main.sqlite')}`);
    await reader.close();
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('leaves an existing store byte for byte as it was, with no side files', async () => {
    const url = `sqlite:${path.join(dir, 'main.sqlite')}`;
    const store = await openStateStore(url, { masterKey: TEST_MASTER_KEY });
    const fence = await store.beginTerm();
    await store.putRecord(fullRecord('crm'), fence);
    await store.ensureSecret('main', generateSecret(), fence);
    await store.finishRun(undefined, historyEntry('crm', 1), fence);
    await store.close();
    const before = snapshot(dir);
    expect(Object.keys(before)).toEqual(['main.sqlite']);

    const reader = await openStateReader(url);
    expect(reader.storeId).toBe(store.storeId);
    expect(await reader.listRecords()).toEqual([stored(fullRecord('crm'))]);
    expect(await reader.getSecret('main')).toBeDefined();
    expect(await reader.listHistory('crm')).toHaveLength(1);
    await reader.close();

    expect(snapshot(dir)).toEqual(before);
  });

  it('reads the live state of a store another handle is writing', async () => {
    const url = `sqlite:${path.join(dir, 'main.sqlite')}`;
    const store = await openStateStore(url, { masterKey: TEST_MASTER_KEY });
    const fence = await store.beginTerm();
    await store.putRecord(minimalRecord('crm'), fence);
    const reader = await openStateReader(url);
    try {
      expect((await reader.listRecords()).map((r) => r.name)).toEqual(['crm']);
      await store.putRecord(minimalRecord('support'), fence);
      expect((await reader.listRecords()).map((r) => r.name)).toEqual(['crm', 'support']);
    } finally {
      await reader.close();
      await store.close();
    }
    expect(fs.readdirSync(dir)).toEqual(['main.sqlite']);
  });

  it('reads an in-memory store as empty', async () => {
    const reader = await openStateReader('sqlite::memory:');
    expect(reader.storeId).toBeUndefined();
    expect(await reader.listRecords()).toEqual([]);
    await reader.close();
  });
});
