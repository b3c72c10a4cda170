import { chmod, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decodeText,
  isManifestFileName,
  listManifestFiles,
  readTextFileSync,
} from '../../src/manifests/files.js';
import { tempDir } from './helpers.js';

describe('isManifestFileName', () => {
  it.each([
    ['crm.yaml', true],
    ['crm.yml', true],
    ['a-b_c.yaml', true],
    ['.crm.yaml', false],
    ['.#crm.yaml', false],
    ['crm.yaml~', false],
    ['crm.yaml.swp', false],
    ['crm.yaml.tmp', false],
    ['crm.tmp', false],
    ['crm.json', false],
    ['crm.yaml.bak', false],
    ['crm', false],
  ])('%s → %s', (name, expected) => {
    expect(isManifestFileName(name)).toBe(expected);
  });
});

describe('decodeText', () => {
  it('drops a UTF-8 byte order mark', () => {
    expect(decodeText(Buffer.from('\uFEFFname: x', 'utf8'))).toEqual({ ok: true, text: 'name: x' });
  });

  it.each([
    ['a lone continuation byte', Buffer.from([0x61, 0x0a, 0x62, 0x80]), { line: 2, column: 2 }],
    ['an overlong encoding', Buffer.from([0xc0, 0xaf]), { line: 1, column: 1 }],
    [
      'a truncated sequence after valid text',
      Buffer.from([0xc3, 0xa9, 0x0a, 0x0a, 0xe2, 0x82]),
      { line: 3, column: 1 },
    ],
    ['a UTF-16 surrogate', Buffer.from([0x61, 0xed, 0xa0, 0x80]), { line: 1, column: 2 }],
  ])('points at %s', (_title, bytes, position) => {
    const result = decodeText(bytes);
    expect(result.ok).toBe(false);
    if (!result.ok) expect({ line: result.problem.line, column: result.problem.column }).toEqual(position);
  });

  it('calls text with NUL bytes binary (UTF-16 too)', () => {
    const result = decodeText(Buffer.from('name: x', 'utf16le'));
    expect(result.ok ? '' : result.problem.message).toMatch(/binary file/);
  });
});

describe('readTextFileSync and listManifestFiles', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir());
  });
  afterAll(() => cleanup());

  it('reads a file through a symlink', async () => {
    await writeFile(path.join(dir, 'real.txt'), 'name: x\n');
    await symlink('real.txt', path.join(dir, 'link.yaml'));
    expect(readTextFileSync(path.join(dir, 'link.yaml'))).toEqual({ ok: true, text: 'name: x\n' });
  });

  it('reports a symlink loop', async () => {
    await symlink('loop.yaml', path.join(dir, 'loop.yaml'));
    const result = readTextFileSync(path.join(dir, 'loop.yaml'));
    expect(result.ok ? '' : result.problem.message).toMatch(/loops back on itself/);
  });

  it('checks the size limit before reading', async () => {
    await writeFile(path.join(dir, 'limit.yaml'), 'x'.repeat(101));
    const result = readTextFileSync(path.join(dir, 'limit.yaml'), 100);
    expect(result.ok ? '' : result.problem.message).toBe('the file is 1 KiB; manifests may be at most 1 KiB');
    expect(readTextFileSync(path.join(dir, 'limit.yaml'), 101).ok).toBe(true);
  });

  it.runIf(process.getuid?.() !== 0)('reports a file it may not read', async () => {
    await writeFile(path.join(dir, 'secret.yaml'), 'name: x\n');
    await chmod(path.join(dir, 'secret.yaml'), 0o000);
    const result = readTextFileSync(path.join(dir, 'secret.yaml'));
    expect(result.ok ? '' : result.problem.message).toBe('cannot read the file: permission denied');
  });

  it('lists manifest names sorted, saying which are regular files', async () => {
    await writeFile(path.join(dir, 'plain.yaml'), 'name: x\n');
    const files = await listManifestFiles(dir);
    const names = files.map((file) => file.name);
    expect(names).toEqual([...names].sort());
    expect(names).not.toContain('real.txt');
    expect(files).toContainEqual({ name: 'link.yaml', regular: false });
    expect(files).toContainEqual({ name: 'plain.yaml', regular: true });
  });

  it('reads a file listed as regular with the same size limit and result', async () => {
    await writeFile(path.join(dir, 'listed.yaml'), 'x'.repeat(101));
    const file = path.join(dir, 'listed.yaml');
    expect(readTextFileSync(file, 101, true)).toEqual(readTextFileSync(file, 101));
    expect(readTextFileSync(file, 100, true)).toEqual(readTextFileSync(file, 100));
    expect(readTextFileSync(file, 100, true).ok).toBe(false);
    const large = path.join(dir, 'large.yaml');
    await writeFile(large, 'y'.repeat(100 * 1024));
    expect(readTextFileSync(large, undefined, true)).toEqual({ ok: true, text: 'y'.repeat(100 * 1024) });
  });

  it('says when the apps folder is a file', async () => {
    await expect(listManifestFiles(path.join(dir, 'real.txt'), 'real.txt')).rejects.toThrow(
      'apps folder real.txt is not a folder',
    );
  });
});
