// biome-ignore-all lint/suspicious/noTemplateCurlyInString: manifest text, where ${VAR} is interpolation syntax.
import { execFileSync } from 'node:child_process';
import { mkdir, symlink } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codeOf } from '../../src/errors.js';
import { ManifestCache } from '../../src/manifests/cache.js';
import { allErrors, loadManifests, validateManifestText } from '../../src/manifests/load.js';
import type { InvalidFile, ManifestSet } from '../../src/manifests/types.js';
import { manifest, tempDir, writeFiles } from './helpers.js';

const billionLaughs = [
  'apiVersion: appvisor/v1',
  'kind: App',
  'name: bomb',
  'config:',
  '  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
  ...'bcdefghi'.split('').map((l, i) => {
    const prev = 'abcdefgh'[i];
    return `  ${l}: &${l} [${Array(9).fill(`*${prev}`).join(',')}]`;
  }),
].join('\n');

const deepBlock = [
  'apiVersion: appvisor/v1',
  'kind: App',
  'name: deep',
  'config:',
  ...Array.from({ length: 500 }, (_, i) => `${'  '.repeat(i + 1)}k:`),
].join('\n');

interface Expected {
  /** The InvalidFile.name, when the file still yields one. */
  readonly name?: string;
  readonly errors: readonly { line: number; column: number; message: RegExp }[];
}

/** Each hostile file and the one clear error it must produce (file-local, nothing else). */
const HOSTILE: Record<string, Expected> = {
  'syntax.yaml': {
    name: 'syntax',
    errors: [{ line: 5, column: 1, message: /^YAML syntax error: flow sequence .* end with a \]/ }],
  },
  'types.yaml': {
    name: 'types',
    errors: [{ line: 4, column: 10, message: /^enabled must be true or false, got 3$/ }],
  },
  'unknown.yaml': {
    name: 'unknown',
    errors: [{ line: 4, column: 1, message: /^unknown field 'colour'; allowed: apiVersion,/ }],
  },
  'typo.yaml': {
    name: 'typo',
    errors: [
      {
        line: 4,
        column: 12,
        message:
          /^startMode 'with-mian' is not one of: on-first-visit, with-main; did you mean 'with-main'\?$/,
      },
    ],
  },
  'missing.yaml': {
    name: 'missing',
    errors: [{ line: 1, column: 1, message: /^missing required field 'kind'/ }],
  },
  'unset.yaml': {
    name: 'unsetvar',
    errors: [{ line: 4, column: 19, message: /^environment variable NOT_SET_VAR_XYZ is not set/ }],
  },
  'bomb.yaml': { name: 'bomb', errors: [{ line: 6, column: 10, message: /alias bomb/ }] },
  'big.yaml': {
    errors: [{ line: 1, column: 1, message: /^the file is 5 MiB; manifests may be at most 1 MiB$/ }],
  },
  'binary.yaml': { errors: [{ line: 1, column: 1, message: /binary file/ }] },
  'utf8.yaml': { errors: [{ line: 4, column: 19, message: /^the file is not valid UTF-8 text/ }] },
  'deep.yaml': {
    name: 'deep',
    errors: [{ line: 68, column: 130, message: /^nesting is deeper than 64 levels$/ }],
  },
  'deepflow.yaml': {
    name: 'deepflow',
    errors: [{ line: 5, column: 68, message: /^nesting is deeper than 64 levels$/ }],
  },
  'dupkeys.yaml': {
    name: 'dupkeys2',
    errors: [{ line: 4, column: 1, message: /^duplicate key 'name' \(already set on line 3\)$/ }],
  },
  'empty.yaml': { errors: [{ line: 1, column: 1, message: /^the file is empty/ }] },
  'dir.yaml': { errors: [{ line: 1, column: 1, message: /^this is a folder, not a manifest file/ }] },
  'dangling.yaml': {
    errors: [
      { line: 1, column: 1, message: /^this is a symbolic link to a missing file \(missing-target\.yaml\)$/ },
    ],
  },
  'fifo.yaml': { errors: [{ line: 1, column: 1, message: /^this is not a regular file$/ }] },
  'twin-a.yaml': {
    name: 'twin',
    errors: [{ line: 3, column: 7, message: /^app name 'twin' is also used by .*twin-b\.yaml$/ }],
  },
  'twin-b.yaml': {
    name: 'twin',
    errors: [{ line: 3, column: 7, message: /^app name 'twin' is also used by .*twin-a\.yaml$/ }],
  },
  'list.yaml': { errors: [{ line: 1, column: 1, message: /at the top level, found a list$/ }] },
  'scalar.yaml': { errors: [{ line: 1, column: 1, message: /at the top level, found a single value$/ }] },
  'multi.yaml': { name: 'multi', errors: [{ line: 4, column: 1, message: /more than one YAML document/ }] },
};

describe('loadManifests on a folder of hostile files', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let set: ManifestSet;
  let elapsedMs: number;

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir());
    await writeFiles(dir, {
      'syntax.yaml': manifest('syntax', 'displayName: [broken', 'enabled: true'),
      'types.yaml': manifest('types', 'enabled: 3'),
      'unknown.yaml': manifest('unknown', 'colour: red'),
      'typo.yaml': manifest('typo', 'startMode: with-mian'),
      'missing.yaml': 'apiVersion: appvisor/v1\nname: missing\n',
      'unset.yaml': manifest('unsetvar', 'displayName: "CRM ${NOT_SET_VAR_XYZ}"'),
      'bomb.yaml': billionLaughs,
      'big.yaml': Buffer.alloc(5 * 1024 * 1024, 'a'),
      'binary.yaml': Buffer.from('apiVersion: appvisor/v1\n\x00\x01\x02binary', 'latin1'),
      'deep.yaml': `${deepBlock} x\n`,
      'deepflow.yaml': manifest('deepflow', 'config:', `  x: ${'['.repeat(500)}${']'.repeat(500)}`),
      'dupkeys.yaml': manifest('dupkeys', 'name: dupkeys2'),
      'empty.yaml': '',
      'twin-a.yaml': manifest('twin'),
      'twin-b.yaml': manifest('twin'),
      'list.yaml': '- a\n- b\n',
      'scalar.yaml': 'just text\n',
      'multi.yaml': `${manifest('multi')}---\n${manifest('multi2')}`,
      'good-one.yaml': manifest('good-one'),
      'good-two.yml': manifest('good-two'),
      // Not manifests: never read.
      '.hidden.yaml': 'not: [valid',
      'x.yaml~': 'not: [valid',
      'x.yaml.swp': 'not: [valid',
      'x.tmp': 'not: [valid',
      'notes.txt': 'not: [valid',
    });
    // The bad bytes sit on line 4 after "displayName: café " (18 characters).
    await writeFiles(dir, {
      'utf8.yaml': Buffer.concat([
        Buffer.from('apiVersion: appvisor/v1\nkind: App\nname: utf\ndisplayName: café '),
        Buffer.from([0xff, 0xfe, 0x0a]),
      ]),
    });
    await mkdir(path.join(dir, 'dir.yaml'));
    await mkdir(path.join(dir, 'sub'));
    await writeFiles(path.join(dir, 'sub'), { 'inner.yaml': 'not: [valid' });
    await symlink('missing-target.yaml', path.join(dir, 'dangling.yaml'));
    execFileSync('mkfifo', [path.join(dir, 'fifo.yaml')]);
    const started = performance.now();
    set = await loadManifests(dir, { env: {}, displayDir: 'apps.d' });
    elapsedMs = performance.now() - started;
  });
  afterAll(() => cleanup());

  it('still loads the valid files', () => {
    expect(set.apps.map((app) => [app.file, app.manifest.name])).toEqual([
      ['apps.d/good-one.yaml', 'good-one'],
      ['apps.d/good-two.yml', 'good-two'],
    ]);
  });

  it('reads only *.yaml / *.yml directly in the folder, skipping hidden and temporary files', () => {
    const files = [...set.apps, ...set.invalid].map((f) => f.file).sort();
    expect(files).toEqual(
      [...Object.keys(HOSTILE), 'good-one.yaml', 'good-two.yml'].map((name) => `apps.d/${name}`).sort(),
    );
  });

  it.each(Object.entries(HOSTILE))('%s gives one clear error at its position', (name, expected) => {
    const invalid = set.invalid.find((f) => f.file === `apps.d/${name}`) as InvalidFile;
    expect(invalid, name).toBeDefined();
    expect(invalid.errors).toHaveLength(expected.errors.length);
    expected.errors.forEach((want, i) => {
      const got = invalid.errors[i]!;
      expect({ line: got.line, column: got.column }, got.message).toEqual({
        line: want.line,
        column: want.column,
      });
      expect(got.message).toMatch(want.message);
      expect(got.file).toBe(`apps.d/${name}`);
    });
    expect(invalid.name).toBe(expected.name);
  });

  it('does not stall on any of them', () => {
    // The 5 MiB file is never read and the deep ones stop at the depth limit.
    expect(elapsedMs).toBeLessThan(5_000);
  });

  it('sorts all errors by file, then line', () => {
    const errors = allErrors(set);
    const keys = errors.map((e) => [e.file, e.line, e.column] as const);
    const sorted = [...keys].sort((a, b) =>
      a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1] || a[2] - b[2],
    );
    expect(keys).toEqual(sorted);
  });

  it('returns frozen values', () => {
    expect(Object.isFrozen(set)).toBe(true);
    expect(Object.isFrozen(set.apps)).toBe(true);
    expect(Object.isFrozen(set.apps[0]!.manifest.database)).toBe(true);
  });
});

describe('cross-file checks', () => {
  const cases: {
    title: string;
    files: Record<string, string>;
    invalid: Record<string, { line: number; column: number; message: RegExp }[]>;
  }[] = [
    {
      title: 'the same database name',
      files: {
        'a.yaml': manifest('a', 'database:', '  name: shared'),
        'b.yaml': manifest('b', 'database:', '  name: shared'),
        'c.yaml': manifest('c'),
      },
      invalid: {
        'a.yaml': [{ line: 5, column: 9, message: /^database 'shared' is also used by dir\/b\.yaml$/ }],
        'b.yaml': [{ line: 5, column: 9, message: /^database 'shared' is also used by dir\/a\.yaml$/ }],
      },
    },
    {
      title: 'an explicit database name equal to another app’s default one',
      files: { 'a.yaml': manifest('a', 'database: { name: b }'), 'b.yaml': manifest('b') },
      invalid: {
        'a.yaml': [{ line: 4, column: 19, message: /^database 'b' is also used by dir\/b\.yaml$/ }],
        'b.yaml': [{ line: 3, column: 7, message: /^database 'b' is also used by dir\/a\.yaml$/ }],
      },
    },
    {
      title: 'names that differ only in - and _',
      files: { 'x.yaml': manifest('a-b'), 'y.yaml': manifest('a_b') },
      invalid: {
        'x.yaml': [
          {
            line: 3,
            column: 7,
            message: /^app name 'a-b' and 'a_b' \(dir\/y\.yaml\) both map to the database name 'a_b'/,
          },
        ],
        'y.yaml': [
          {
            line: 3,
            column: 7,
            message: /^app name 'a_b' and 'a-b' \(dir\/x\.yaml\) both map to the database name 'a_b'/,
          },
        ],
      },
    },
    {
      title: 'names that differ only in - and _, even with their own database names',
      files: {
        'x.yaml': manifest('a-b', 'database: { name: one }'),
        'y.yaml': manifest('a_b', 'database: { name: two }'),
      },
      invalid: {
        'x.yaml': [{ line: 3, column: 7, message: /both map to the database name 'a_b'/ }],
        'y.yaml': [{ line: 3, column: 7, message: /both map to the database name 'a_b'/ }],
      },
    },
    {
      title: 'the same schema',
      files: {
        'a.yaml': manifest('a', 'database:', '  mode: new-schema', '  schema: s1'),
        'b.yaml': manifest('b', 'database:', '  mode: new-schema', '  schema: s1'),
        'c.yaml': manifest('c', 'database:', '  mode: new-schema'),
      },
      invalid: {
        'a.yaml': [{ line: 6, column: 11, message: /^schema 's1' is also used by dir\/b\.yaml$/ }],
        'b.yaml': [{ line: 6, column: 11, message: /^schema 's1' is also used by dir\/a\.yaml$/ }],
      },
    },
    {
      title: 'the same database on the same other server (password never shown)',
      files: {
        'a.yaml': manifest(
          'a',
          'database:',
          '  mode: new-connection',
          '  name: x',
          '  connection: { url: "postgres://u:secret@db:5432" }',
        ),
        'b.yaml': manifest(
          'b',
          'database:',
          '  mode: new-connection',
          '  name: x',
          '  connection: { url: "postgres://u:secret@db:5432" }',
        ),
        'c.yaml': manifest(
          'c',
          'database:',
          '  mode: new-connection',
          '  name: x',
          '  connection: { url: "postgres://u:secret@other:5432" }',
        ),
      },
      invalid: {
        'a.yaml': [
          {
            line: 6,
            column: 9,
            message: /^database 'x' on postgres:\/\/db:5432 is also used by dir\/b\.yaml$/,
          },
        ],
        'b.yaml': [
          {
            line: 6,
            column: 9,
            message: /^database 'x' on postgres:\/\/db:5432 is also used by dir\/a\.yaml$/,
          },
        ],
      },
    },
    {
      title: 'the same domain, in any case',
      files: {
        'a.yaml': manifest('a', 'domains: [a.example.com, shared.example.com]'),
        'b.yaml': manifest('b', 'domains:', '  - Shared.Example.com'),
      },
      invalid: {
        'a.yaml': [
          { line: 4, column: 26, message: /^domain 'shared\.example\.com' is also used by dir\/b\.yaml$/ },
        ],
        'b.yaml': [
          { line: 5, column: 5, message: /^domain 'shared\.example\.com' is also used by dir\/a\.yaml$/ },
        ],
      },
    },
    {
      title: 'a name also claimed by a file that is invalid for another reason',
      files: { 'a.yaml': manifest('crm'), 'b.yaml': manifest('crm', 'enabled: maybe') },
      invalid: {
        'a.yaml': [{ line: 3, column: 7, message: /^app name 'crm' is also used by dir\/b\.yaml$/ }],
        'b.yaml': [
          { line: 3, column: 7, message: /^app name 'crm' is also used by dir\/a\.yaml$/ },
          { line: 4, column: 10, message: /^enabled must be true or false, got 'maybe'$/ },
        ],
      },
    },
  ];

  it.each(cases)('$title: an error on each file involved', async ({ files, invalid }) => {
    const { dir, cleanup } = await tempDir();
    try {
      await writeFiles(dir, files);
      const set = await loadManifests(dir, { env: {}, displayDir: 'dir' });
      const got = Object.fromEntries(
        set.invalid.map((f) => [
          path.basename(f.file),
          f.errors.map((e) => ({ line: e.line, column: e.column, message: e.message })),
        ]),
      );
      expect(Object.keys(got).sort()).toEqual(Object.keys(invalid).sort());
      for (const [file, want] of Object.entries(invalid)) {
        expect(got[file]).toHaveLength(want.length);
        want.forEach((w, i) => {
          expect(got[file]![i]!.message).toMatch(w.message);
          expect(
            { line: got[file]![i]!.line, column: got[file]![i]!.column },
            got[file]![i]!.message,
          ).toEqual({
            line: w.line,
            column: w.column,
          });
        });
        expect(JSON.stringify(got[file])).not.toContain('secret');
      }
      const validNames = Object.keys(files).filter((f) => !(f in invalid));
      expect(set.apps.map((a) => path.basename(a.file))).toEqual(validNames);
    } finally {
      await cleanup();
    }
  });
});

describe('loadManifests', () => {
  it('fails clearly when the folder does not exist', async () => {
    const err = await loadManifests('/nonexistent/apps.d', { displayDir: 'nowhere' }).catch(
      (e: unknown) => e,
    );
    expect(codeOf(err)).toBe('CONFIG_INVALID');
    expect((err as Error).message).toBe(
      'apps folder nowhere does not exist (set it with --dir, APPVISOR_APPS_DIR or appsDir in appvisor.yaml)',
    );
  });

  it('names files relative to the working directory by default', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      await writeFiles(dir, { 'a.yaml': manifest('a') });
      const outside = await loadManifests(dir, { env: {} });
      expect(outside.apps[0]!.file).toBe(path.join(dir, 'a.yaml'));
      expect(outside.dir).toBe(dir);
      const cwd = process.cwd();
      process.chdir(path.dirname(dir));
      try {
        const inside = await loadManifests(dir, { env: {} });
        expect(inside.apps[0]!.file).toBe(path.join(path.basename(dir), 'a.yaml'));
      } finally {
        process.chdir(cwd);
      }
    } finally {
      await cleanup();
    }
  });

  it('takes ${VAR} from the given environment', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      await writeFiles(dir, { 'a.yaml': manifest('a', 'displayName: ${TITLE}', 'enabled: ${ON:-false}') });
      const set = await loadManifests(dir, { env: { TITLE: 'Hello' } });
      expect(set.apps[0]!.manifest.displayName).toBe('Hello');
      expect(set.apps[0]!.manifest.enabled).toBe(false);
    } finally {
      await cleanup();
    }
  });

  it('reuses a cached check only while the text and the variables it reads are unchanged', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      await writeFiles(dir, { 'a.yaml': manifest('a', 'displayName: ${TITLE}'), 'b.yaml': manifest('b') });
      const cache = new ManifestCache();
      const first = await loadManifests(dir, { env: { TITLE: 'One' }, cache });
      const second = await loadManifests(dir, { env: { TITLE: 'One', OTHER: 'x' }, cache });
      expect(second.apps[0]!.manifest).toBe(first.apps[0]!.manifest);
      const third = await loadManifests(dir, { env: { TITLE: 'Two' }, cache });
      expect(third.apps[0]!.manifest.displayName).toBe('Two');
      await writeFiles(dir, { 'b.yaml': manifest('b', 'displayName: Bee') });
      const fourth = await loadManifests(dir, { env: { TITLE: 'Two' }, cache });
      expect(fourth.apps[1]!.manifest.displayName).toBe('Bee');
      expect(fourth.apps[1]!.hash).not.toBe(third.apps[1]!.hash);
      expect(cache.size).toBe(2);
    } finally {
      await cleanup();
    }
  });
});

describe('validateManifestText', () => {
  it('returns the manifest with its hash for a valid text', () => {
    const result = validateManifestText(manifest('solo'), 'solo.yaml', {});
    expect(result.ok).toBe(true);
    if (result.ok) {
      expect(result.app.file).toBe('solo.yaml');
      expect(result.app.manifest.name).toBe('solo');
      expect(result.app.hash).toMatch(/^[0-9a-f]{64}$/);
    }
  });

  it('returns the errors, with the name when the file has one', () => {
    const result = validateManifestText(manifest('solo', 'bogus: 1'), 'solo.yaml', {});
    expect(result).toEqual({
      ok: false,
      invalid: {
        file: 'solo.yaml',
        name: 'solo',
        errors: [
          { file: 'solo.yaml', line: 4, column: 1, message: expect.stringMatching(/^unknown field 'bogus'/) },
        ],
      },
    });
  });

  it('rejects text over 1 MiB and NUL bytes', () => {
    const big = validateManifestText(`${manifest('big')}# ${'x'.repeat(1024 * 1024)}`, 'big.yaml', {});
    expect(big.ok ? [] : big.invalid.errors.map((e) => e.message)).toEqual([expect.stringMatching(/1 MiB/)]);
    const nul = validateManifestText(`${manifest('nul')}\0`, 'nul.yaml', {});
    expect(nul.ok ? [] : nul.invalid.errors.map((e) => e.message)).toEqual([
      expect.stringMatching(/NUL bytes/),
    ]);
  });
});

describe('many errors in one file', () => {
  it('reports the first ones and sums up the rest', () => {
    const domains = Array.from({ length: 30 }, (_, i) => `  - bad host ${i}`);
    const result = validateManifestText(manifest('many', 'domains:', ...domains), 'many.yaml', {});
    expect(result.ok).toBe(false);
    if (!result.ok) {
      const errors = result.invalid.errors;
      expect(errors).toHaveLength(20);
      expect(errors[18]!.message).toMatch(/^domains\[18\] 'bad host 18' is not valid/);
      expect(errors[19]).toMatchObject({
        line: 24,
        column: 5,
        message: '11 more problems from here on (fix the ones above first)',
      });
    }
  });
});
