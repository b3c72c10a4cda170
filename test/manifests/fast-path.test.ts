// biome-ignore-all lint/suspicious/noTemplateCurlyInString: manifest text, where ${VAR} is interpolation syntax.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkManifestText } from '../../src/manifests/check-file.js';
import { fastParse } from '../../src/manifests/fast-parse.js';
import { loadManifests } from '../../src/manifests/load.js';
import { manifest, tempDir, writeFiles } from './helpers.js';

const ENV = { GREETING: 'hi', NUM: '42', T: 'true', EMPTY: '', URL: 'postgres://u:p@db:5432', HASH: 'a #b' };

/** Valid manifests in the shapes people write: each must take the fast path. */
const WELL_FORMED: Record<string, string> = {
  'block.yaml': [
    '# yaml-language-server: $schema=../schema/app.schema.json',
    'apiVersion: appvisor/v1',
    'kind: App',
    'name: block',
    'displayName: "Block app"  # a comment',
    'startMode: with-main',
    'database:',
    '  mode: new-database',
    '  name: block_db',
    'jwt:',
    '  secret: shared',
    'domains:',
    '  - block.example.com',
    "  - 'Other.Example.com'",
    'config:',
    '  greeting: "${GREETING:-hello} there"',
    '  count: ${NUM}',
    '  flag: ${T}',
    "  quoted: '${T}'",
    '  hash: ${HASH}',
    '  features: [search, export, "a, b", x y]',
    '  limits: { users: 50, storageMb: 512, nested: {a: [1, +2, 007, ~, null, TRUE]} }',
    '  empty:',
    "  apostrophe: 'it''s'",
    '  colon: x:y',
    '  list:',
    '  - one',
    '  - two # trailing',
    '',
    'deletionPolicy: drop',
    'dropAfter: 24h',
    '',
  ].join('\n'),
  'flow.yaml':
    'apiVersion: appvisor/v1\nkind: App\nname: flow\ndatabase: {mode: new-connection, name: other, connection: {url: "${URL}"}}\ndomains: [flow.example.com]\n',
  'schema.yaml': manifest('schema-app', 'database:', '  mode: new-schema', '  schema: schema_s'),
  'crlf.yaml': manifest('crlf', 'enabled: false', 'domains: [crlf.example.com]').replaceAll('\n', '\r\n'),
  'minimal.yaml': manifest('minimal'),
};

/** Files the fast path leaves to the full pipeline: it reports them, or reads what the fast path does not. */
const REFUSED: Record<string, string> = {
  'anchor.yaml': manifest('anchor', 'config:', '  a: &x [1, 2]', '  b: *x'),
  bomb: [
    manifest('bomb', 'config:', '  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]').trimEnd(),
    ...'bcdefghi'.split('').map((l, i) => `  ${l}: &${l} [${Array(9).fill(`*${'abcdefgh'[i]}`).join(',')}]`),
    '',
  ].join('\n'),
  'deep.yaml': manifest(
    'deep',
    'config:',
    ...Array.from({ length: 70 }, (_, i) => `${'  '.repeat(i + 1)}k:`),
  ),
  'deep-but-fine.yaml': manifest(
    'deepfine',
    'config:',
    ...Array.from({ length: 20 }, (_, i) => `${'  '.repeat(i + 1)}k:`),
  ),
  'deepflow.yaml': manifest('deepflow', 'config:', `  x: ${'['.repeat(70)}${']'.repeat(70)}`),
  'long.yaml': manifest('long', 'config:', ...Array.from({ length: 2000 }, (_, i) => `  k${i}: [a, b, c]`)),
  'tokens.yaml': manifest('tokens', 'config:', `  x: [${Array(60_000).fill('a').join(',')}]`),
  'duplicate.yaml': manifest('dup', 'name: dup2'),
  'duplicate-nested.yaml': manifest('dupnested', 'config:', '  a: 1', '  b: 2', '  a: 3'),
  'duplicate-flow.yaml': manifest('dupflow', 'config: { a: 1, b: [x], a: 2 }'),
  'multi.yaml': `${manifest('multi')}---\n${manifest('multi2')}`,
  'unset.yaml': manifest('unset', 'displayName: "CRM ${NOT_SET_VAR_XYZ}"'),
  'tag.yaml': manifest('tag', 'displayName: !!str yes'),
  'tab.yaml': manifest('tab', 'displayName:\tx'),
  'unicode.yaml': manifest('unicode', 'displayName: Café'),
  'escape.yaml': manifest('escape', 'displayName: "a\\tb"'),
  'block-scalar.yaml': manifest('blockscalar', 'displayName: |', '  two', '  lines'),
  'continued.yaml': manifest('continued', 'displayName: two', '  lines'),
  'proto.yaml': manifest('proto', 'config:', '  __proto__: {polluted: true}'),
  'float.yaml': manifest('float', 'config:', '  x: 1.5', '  y: .inf', '  z: 0x1f'),
  'syntax.yaml': manifest('syntax', 'displayName: [broken', 'enabled: true'),
  'unknown.yaml': manifest('unknown', 'colour: red'),
  'types.yaml': manifest('types', 'enabled: yes'),
  'empty.yaml': '',
  'comments.yaml': '# nothing here\n',
  'list.yaml': '- a\n- b\n',
  'indented.yaml': manifest('indented').replaceAll(/^/gm, '  '),
};

describe('the fast path', () => {
  it.each(Object.entries(WELL_FORMED))('takes %s, with the full pipeline’s result', (_name, text) => {
    expect(fastParse(text, ENV)).toBeDefined();
    const fast = checkManifestText(text, ENV);
    expect(fast.manifest).toBeDefined();
    expect(JSON.stringify(fast)).toBe(JSON.stringify(checkManifestText(text, ENV, { fastPath: false })));
  });

  it.each(Object.entries(REFUSED))('leaves %s to the full pipeline', (_name, text) => {
    // Either the fast reader refuses the text, or the file has problems that the full pipeline reports.
    const read = fastParse(text, ENV);
    expect(read === undefined || checkManifestText(text, ENV).problems.length > 0).toBe(true);
    expect(JSON.stringify(checkManifestText(text, ENV))).toBe(
      JSON.stringify(checkManifestText(text, ENV, { fastPath: false })),
    );
  });

  it('keeps every hostile-input limit: the message is the full pipeline’s', () => {
    const message = (text: string) => checkManifestText(text, ENV).problems.map((p) => p.message);
    expect(message(REFUSED.bomb!)).toEqual(['aliases expand to too much data (a YAML alias bomb?)']);
    expect(message(REFUSED['deep.yaml']!)).toEqual(['nesting is deeper than 64 levels']);
    expect(message(REFUSED['deepflow.yaml']!)).toEqual(['nesting is deeper than 64 levels']);
    expect(message(REFUSED['tokens.yaml']!)[0]).toMatch(
      /^the file is too complex: more than 50000 YAML tokens/,
    );
    expect(message(REFUSED['duplicate.yaml']!)).toEqual(["duplicate key 'name' (already set on line 3)"]);
    expect(fastParse(REFUSED['duplicate-nested.yaml']!, ENV)).toBeUndefined();
    expect(fastParse(REFUSED['duplicate-flow.yaml']!, ENV)).toBeUndefined();
    expect(message(REFUSED['multi.yaml']!)[0]).toMatch(/more than one YAML document/);
  });

  it('gives the same result as the full pipeline on thousands of damaged manifests', () => {
    // Deterministic: the same damage every run. Each text either takes the fast path with the
    // full pipeline's exact result, or is left to the full pipeline.
    let seed = 10;
    const random = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
    const bases = Object.values(WELL_FORMED);
    const bits = [
      ' ',
      '  ',
      '\n',
      '\r\n',
      '\r',
      '\t',
      '#',
      ' #',
      ':',
      ': ',
      '- ',
      '[',
      ']',
      '{',
      '}',
      ',',
      '"',
    ];
    bits.push(
      "'",
      "''",
      '\\',
      '&a',
      '*a',
      '!',
      '|',
      '>',
      '%',
      '@',
      '`',
      '? ',
      '---',
      '...',
      '$',
      '${',
      '${NUM}',
    );
    bits.push(
      '$${',
      '0x1',
      '1.5',
      '.inf',
      '-1',
      'é',
      '\u2028',
      'true',
      'null',
      '~',
      '__proto__',
      'name',
      'a: b',
    );
    let fast = 0;
    for (let round = 0; round < 3000; round++) {
      let text = pick(bases);
      for (let n = 1 + Math.floor(random() * 3); n > 0; n--) {
        const at = Math.floor(random() * (text.length + 1));
        const how = random();
        if (how < 0.45) text = text.slice(0, at) + pick(bits) + text.slice(at);
        else if (how < 0.7) text = text.slice(0, at) + text.slice(at + 1 + Math.floor(random() * 3));
        else {
          const lines = text.split('\n');
          const a = Math.floor(random() * lines.length);
          const b = Math.floor(random() * lines.length);
          if (how < 0.8) lines.splice(b, 0, lines[a]!);
          else if (how < 0.9) [lines[a], lines[b]] = [lines[b]!, lines[a]!];
          else lines[a] = ` ${lines[a]}`;
          text = lines.join('\n');
        }
      }
      const result = JSON.stringify(checkManifestText(text, ENV));
      const full = JSON.stringify(checkManifestText(text, ENV, { fastPath: false }));
      if (result !== full) expect({ text, result }).toEqual({ text, result: full });
      if (fastParse(text, ENV)) fast++;
    }
    // The damage leaves many texts well-formed: the comparison covers the fast path too.
    expect(fast).toBeGreaterThan(300);
  });
});

describe('loadManifests with and without the fast path', () => {
  let dir: string;
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir());
    await writeFiles(dir, {
      ...WELL_FORMED,
      ...Object.fromEntries(
        Object.entries(REFUSED).map(([name, text]) => [`${name.replace('.yaml', '')}.yaml`, text]),
      ),
      // Conflicts across files, between fast and full files.
      'twin-a.yaml': manifest('twin', 'domains: [shared.example.com]'),
      'twin-b.yaml': manifest('twin', 'displayName: "x"'),
      'shares-domain.yaml': manifest('shares-domain', 'domains:', '  - SHARED.example.com'),
      'shares-db.yaml': manifest('shares-db', 'database: {name: block_db}'),
      'dash-name.yaml': manifest('a-b'),
      'underscore-name.yaml': manifest('a_b', 'displayName: !!str tagged'),
      'shares-schema.yaml': manifest('other-schema', 'database:', '  mode: new-schema', '  schema: schema_s'),
      'binary.yaml': Buffer.from('apiVersion: appvisor/v1\n\x00\x01\x02binary', 'latin1'),
      'utf8.yaml': Buffer.concat([
        Buffer.from(manifest('utf8', 'displayName: "')),
        Buffer.from([0xff, 0x22, 0x0a]),
      ]),
      'big.yaml': Buffer.alloc(2 * 1024 * 1024, 'a'),
    });
  });
  afterAll(() => cleanup());

  it('gives the same ManifestSet: apps, hashes, and every error with its line, column and message', async () => {
    const fast = await loadManifests(dir, { env: ENV });
    const full = await loadManifests(dir, { env: ENV, fastPath: false });
    expect(fast.apps.length).toBeGreaterThan(5);
    expect(fast.invalid.length).toBeGreaterThan(15);
    expect(fast.invalid.some((file) => file.errors.some((e) => /also used by/.test(e.message)))).toBe(true);
    expect(JSON.stringify(fast)).toBe(JSON.stringify(full));
    expect(fast).toEqual(full);
  });
});
