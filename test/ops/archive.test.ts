/** The backup archive: streamed .tar.gz, every member hashed, one flipped byte anywhere refused. */
import crypto from 'node:crypto';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppvisorError } from '../../src/errors.js';
import { ARCHIVE_FORMAT_VERSION, readArchive, writeArchive } from '../../src/ops/archive.js';

let dir: string;
let archive: string;
const data = crypto.randomBytes(8_000);

async function freshDir(): Promise<string> {
  return fs.mkdtemp(path.join(dir, 'x-'));
}

/** The gzip header (10 bytes, no optional fields): checked byte by byte, never decoded around. */
function isHeaderByte(i: number): boolean {
  return i < 10;
}

async function refusal(file: string): Promise<AppvisorError> {
  const err = await readArchive(file, await freshDir()).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AppvisorError);
  return err as AppvisorError;
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-archive-'));
  const dataFile = path.join(dir, 'data.sqlite');
  await fs.writeFile(dataFile, data);
  archive = path.join(dir, 'a.tar.gz');
  await writeArchive(
    archive,
    {
      formatVersion: ARCHIVE_FORMAT_VERSION,
      app: 'crm',
      dialect: 'sqlite',
      kind: 'database',
      data: 'data.sqlite',
      dataVersion: 2,
      application: { name: 'appvisor-sample', version: 2 },
      createdAt: '2026-01-02T03:04:05.000Z',
    },
    [
      { name: 'manifest.yaml', text: 'name: crm\n' },
      { name: 'data.sqlite', file: dataFile },
      { name: 'secret.json', text: '{"mode":"shared"}\n' },
    ],
  );
});
afterAll(() => fs.rm(dir, { recursive: true, force: true }));

describe('backup archive', () => {
  it('reads back every member as written, with its sha256 checked', async () => {
    const read = await readArchive(archive, await freshDir());
    expect(read.meta).toMatchObject({ app: 'crm', dataVersion: 2, data: 'data.sqlite' });
    expect(Object.keys(read.meta.members)).toEqual(['manifest.yaml', 'data.sqlite', 'secret.json']);
    expect((await fs.readFile(read.pathOf('data.sqlite'))).equals(data)).toBe(true);
    expect(await read.readText('manifest.yaml')).toBe('name: crm\n');
  });

  it('refuses the archive with one byte flipped, at every position of the file', async () => {
    const bytes = await fs.readFile(archive);
    const bad = path.join(dir, 'bad.tar.gz');
    // Every position of the headers and the end, and a stride through the body.
    const positions = new Set<number>();
    for (let i = 0; i < Math.min(bytes.length, 600); i++) positions.add(i);
    for (let i = Math.max(0, bytes.length - 600); i < bytes.length; i++) positions.add(i);
    for (let i = 0; i < bytes.length; i += 97) positions.add(i);
    // What the archive holds: its tar stream, as gzip decodes it (undefined: it does not decode).
    const decoded = (b: Buffer): Buffer | undefined => {
      try {
        return zlib.gunzipSync(b);
      } catch {
        return undefined;
      }
    };
    const original = decoded(bytes)!;
    let same = 0;
    for (const i of positions) {
      const copy = Buffer.from(bytes);
      copy[i] = copy[i]! ^ 0xff;
      await fs.writeFile(bad, copy);
      // Deflate has more than one encoding of a run (a match into the tar's zero padding at
      // another distance decodes to the same zeros): such a flip changes no byte the archive
      // holds. A flip that changes what it holds, or its gzip header, is always refused.
      if (decoded(copy)?.equals(original) && !isHeaderByte(i)) {
        same++;
        expect((await readArchive(bad, await freshDir())).meta.app, `byte ${i}`).toBe('crm');
        continue;
      }
      const err = await refusal(bad);
      expect(err.code, `byte ${i}`).toBe('ARCHIVE_INVALID');
    }
    // Only a handful of the positions can be such a twin encoding.
    expect(same).toBeLessThan(positions.size / 50);
  }, 60_000);

  it('refuses a truncated file, an empty one and one that is not gzip', async () => {
    const bytes = await fs.readFile(archive);
    const bad = path.join(dir, 'short.tar.gz');
    for (const content of [bytes.subarray(0, bytes.length - 10), Buffer.alloc(0), Buffer.from('hello')]) {
      await fs.writeFile(bad, content);
      expect((await refusal(bad)).code).toBe('ARCHIVE_INVALID');
    }
    expect((await refusal(path.join(dir, 'missing.tar.gz'))).message).toMatch(/missing\.tar\.gz/);
  });

  it('refuses a well-formed archive whose member does not match meta.json, or lacks one', async () => {
    const read = await readArchive(archive, await freshDir());
    const repack = async (name: string, members: Record<string, Buffer>): Promise<string> => {
      const file = path.join(dir, name);
      const pack = tar.pack();
      const written = pipeline(pack, zlib.createGzip(), createWriteStream(file));
      for (const [member, content] of Object.entries(members)) pack.entry({ name: member }, content);
      pack.finalize();
      await written;
      return file;
    };
    const meta = Buffer.from(JSON.stringify(read.meta));
    const manifest = Buffer.from('name: crm\n');
    const secret = Buffer.from('{"mode":"shared"}\n');
    const changed = Buffer.from(data);
    changed[100] = changed[100]! ^ 1;
    const mismatch = await repack('mismatch.tar.gz', {
      'meta.json': meta,
      'manifest.yaml': manifest,
      'data.sqlite': changed,
      'secret.json': secret,
    });
    expect((await refusal(mismatch)).message).toMatch(/data\.sqlite does not match its sha256/);
    const lacking = await repack('lacking.tar.gz', {
      'meta.json': meta,
      'manifest.yaml': manifest,
      'data.sqlite': data,
    });
    expect((await refusal(lacking)).message).toMatch(/secret\.json is missing/);
    const extra = await repack('extra.tar.gz', {
      'meta.json': meta,
      'manifest.yaml': manifest,
      'data.sqlite': data,
      'secret.json': secret,
      'evil.sh': Buffer.from('x'),
    });
    expect((await refusal(extra)).message).toMatch(/unexpected member evil\.sh/);
    const climbing = await repack('escape.tar.gz', { '../meta.json': meta });
    expect((await refusal(climbing)).message).toMatch(/unexpected member name/);
  });
});
