import { describe, expect, it } from 'vitest';
import { applyDefaults, deepFreeze } from '../../src/manifests/defaults.js';
import { manifestHash, stableStringify } from '../../src/manifests/hash.js';
import { validateManifestText } from '../../src/manifests/load.js';
import type { AppManifest } from '../../src/manifests/types.js';
import { manifest } from './helpers.js';

function load(text: string): AppManifest {
  const result = validateManifestText(text, 'x.yaml', {});
  if (!result.ok) throw new Error(JSON.stringify(result.invalid.errors));
  return result.app.manifest;
}

describe('applyDefaults', () => {
  it('fills in every default of SPEC §3', () => {
    expect(load(manifest('my-app'))).toEqual({
      apiVersion: 'appvisor/v1',
      kind: 'App',
      name: 'my-app',
      displayName: 'my-app',
      enabled: true,
      startMode: 'on-first-visit',
      environment: 'local',
      database: { mode: 'new-database', name: 'my_app', adopt: false },
      upgrade: true,
      jwt: { secret: 'own' },
      domains: [],
      config: {},
      deletionPolicy: 'retain',
    });
  });

  it.each([
    [
      'new-schema without schema → the app name',
      ['  mode: new-schema'],
      { mode: 'new-schema', name: 'my_app', schema: 'my-app', adopt: false },
    ],
    [
      'new-schema with schema',
      ['  mode: new-schema', '  schema: s1'],
      { mode: 'new-schema', name: 'my_app', schema: 's1', adopt: false },
    ],
    [
      'new-connection',
      ['  mode: new-connection', '  name: remote', '  adopt: true', '  connection: { url: "mysql://h" }'],
      { mode: 'new-connection', name: 'remote', connection: { url: 'mysql://h' }, adopt: true },
    ],
  ])('database: %s', (_title, lines, database) => {
    expect(load(manifest('my-app', 'database:', ...lines)).database).toEqual(database);
  });

  it('keeps what the manifest sets and lower-cases domains', () => {
    const m = load(
      manifest(
        'a',
        'displayName: Alpha',
        'enabled: false',
        'startMode: with-main',
        'upgrade: false',
        'jwt: { secret: shared }',
        'domains: [A.Example.com]',
        'config: { nested: { list: [1, 2] } }',
        'deletionPolicy: drop',
      ),
    );
    expect(m).toMatchObject({
      displayName: 'Alpha',
      enabled: false,
      startMode: 'with-main',
      upgrade: false,
      jwt: { secret: 'shared' },
      domains: ['a.example.com'],
      config: { nested: { list: [1, 2] } },
      deletionPolicy: 'drop',
    });
  });

  it('deep-freezes the result, config included', () => {
    const m = load(manifest('a', 'config: { nested: { list: [1] } }'));
    const nested = (m.config as { nested: { list: number[] } }).nested;
    expect(Object.isFrozen(m) && Object.isFrozen(m.database) && Object.isFrozen(m.domains)).toBe(true);
    expect(Object.isFrozen(nested) && Object.isFrozen(nested.list)).toBe(true);
    expect(() => {
      (m as { name: string }).name = 'b';
    }).toThrow(TypeError);
  });

  it('deepFreeze copes with shared subtrees', () => {
    const shared = { a: 1 };
    const value = deepFreeze({ x: shared, y: [shared] });
    expect(Object.isFrozen(value.y[0])).toBe(true);
  });

  it('does not apply defaults the schema would reject', () => {
    expect(
      applyDefaults({ apiVersion: 'appvisor/v1', kind: 'App', name: 'b' }).database.schema,
    ).toBeUndefined();
  });
});

describe('manifestHash', () => {
  it('ignores formatting, comments, key order and spelled-out defaults', () => {
    const a = load(manifest('a', 'config: { x: 1, y: [1, 2] }'));
    const b = load(
      [
        '# a comment',
        'kind: App',
        'name: a',
        'apiVersion: "appvisor/v1"',
        'enabled: true',
        'config:',
        '  y:',
        '    - 1',
        '    - 2',
        '  x: 1',
      ].join('\n'),
    );
    expect(manifestHash(a)).toBe(manifestHash(b));
    expect(manifestHash(a)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('changes with any value', () => {
    const base = manifestHash(load(manifest('a')));
    expect(manifestHash(load(manifest('a', 'enabled: false')))).not.toBe(base);
    expect(manifestHash(load(manifest('a', 'config: { k: 1 }')))).not.toBe(base);
  });

  it('stableStringify sorts keys at every level and keeps __proto__ an ordinary key', () => {
    expect(stableStringify({ b: 1, a: { d: [{ z: 1, y: 2 }], c: null } })).toBe(
      '{"a":{"c":null,"d":[{"y":2,"z":1}]},"b":1}',
    );
    const withProto = JSON.parse('{"__proto__": {"x": 1}, "a": 2}') as object;
    expect(stableStringify(withProto)).toBe('{"__proto__":{"x":1},"a":2}');
  });

  it('stableStringify writes what JSON.stringify with a key-sorting replacer writes (hashes stay as stored)', () => {
    const sortKeys = (_key: string, value: unknown): unknown => {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
      const sorted: Record<string, unknown> = Object.create(null);
      for (const key of Object.keys(value).sort()) sorted[key] = (value as Record<string, unknown>)[key];
      return sorted;
    };
    const values: unknown[] = [
      load(
        manifest('a', 'domains: [a.example.com]', 'config: { z: [1, "two", true, null], a: { y: 1, b: 2 } }'),
      ),
      { 10: 'ten', 9: 'nine', b: 'b', a: 'a' },
      { quote: 'say "hi"\n', control: '\u0001\t', unicode: 'café \u2028 😀', lone: '\ud800' },
      { 'k"ey': '\\', del: '\u007f', unit: '\u001f', low: '\udc00', '01': 'not an index', '-1': 'nor this' },
      { nan: Number.NaN, inf: Number.POSITIVE_INFINITY, negZero: -0, big: 1e21, small: 1e-7 },
      { skipped: undefined, fn: () => 1, list: [undefined, () => 1] },
      { date: new Date(0), nested: { toJSON: () => 'x' } },
      [],
      {},
      'text',
      42,
      null,
    ];
    for (const value of values)
      expect(stableStringify(value)).toBe(JSON.stringify(value, sortKeys) ?? 'null');
  });
});
