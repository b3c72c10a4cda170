import { describe, expect, it } from 'vitest';
import { MAX_DEPTH, MAX_TOKENS } from '../../src/manifests/limits.js';
import { parseYaml } from '../../src/manifests/parse.js';

const MIB = 1024 * 1024;

function problemsOf(text: string): { line: number; column: number; message: string }[] {
  const parsed = parseYaml(text);
  return parsed.problems.map((p) => ({ ...parsed.source.position(p.offset), message: p.message }));
}

describe('parseYaml: inputs that would crash or stall the yaml library', () => {
  // Each of these takes the yaml library seconds (or all memory) on its own; the guard stops
  // them within the token or depth limit.
  const cases: [string, string, RegExp][] = [
    ['1 MiB of [', '['.repeat(MIB - 1), /nesting is deeper than 64 levels/],
    ['1 MiB of {a: ', '{a: '.repeat(MIB / 4 - 1), /nesting is deeper than 64 levels/],
    ['500k nested sequences "- - - …"', `${'- '.repeat(MIB / 2 - 1)}`, /nesting is deeper than 64 levels/],
    ['500k nested complex keys "? ? ? …"', `${'? '.repeat(MIB / 2 - 1)}`, /nesting is deeper than 64 levels/],
    ['a flat flow list of 300k items', `[${'1,'.repeat(300_000)}1]`, /more than 50000 YAML tokens/],
    [
      '60k keys',
      Array.from({ length: 60_000 }, (_, i) => `k${i}: v`).join('\n'),
      /more than 50000 YAML tokens/,
    ],
    ['1 MiB of blank lines', '\n'.repeat(MIB - 1), /more than 50000 YAML tokens/],
  ];

  it.each(cases)('%s: one problem, quickly', (_title, text, message) => {
    const started = performance.now();
    const problems = problemsOf(text);
    expect(performance.now() - started).toBeLessThan(1_500);
    expect(problems).toHaveLength(1);
    expect(problems[0]!.message).toMatch(message);
  });

  it('reports where the depth limit is crossed', () => {
    const text = `config:\n  x: ${'['.repeat(100)}`;
    expect(problemsOf(text)).toEqual([
      { line: 2, column: 6 + MAX_DEPTH - 2, message: `nesting is deeper than ${MAX_DEPTH} levels` },
    ]);
  });

  it('accepts nesting up to the limit', () => {
    const depth = MAX_DEPTH - 1;
    const text = `a: ${'['.repeat(depth)}${']'.repeat(depth)}\n`;
    expect(problemsOf(text)).toEqual([]);
  });

  it('counts block nesting by indentation, and not in block scalars or comments', () => {
    const lines = ['a: |'];
    for (let i = 1; i < 200; i++) lines.push(`${' '.repeat(i + 2)}text`);
    lines.push('b:');
    for (let i = 1; i < 30; i++) lines.push(`${'  '.repeat(i)}k${i}:`);
    lines.push(`${'  '.repeat(30)}leaf`);
    lines.push(...Array.from({ length: 100 }, (_, i) => `${' '.repeat(i)}# comment`));
    expect(problemsOf(lines.join('\n'))).toEqual([]);
  });

  it(`stops at ${MAX_TOKENS} tokens`, () => {
    const fine = Array.from({ length: 5_000 }, (_, i) => `k${i}: v`).join('\n');
    expect(problemsOf(fine)).toEqual([]);
  });
});

describe('parseYaml: what a manifest never needs', () => {
  const cases: [string, string, { line: number; column: number; message: RegExp }[]][] = [
    [
      'duplicate keys',
      'a: 1\nb: 2\na: 3\n',
      [{ line: 3, column: 1, message: /^duplicate key 'a' \(already set on line 1\)$/ }],
    ],
    [
      'duplicate keys in a nested map',
      'a:\n  x: 1\n  x: 2\n',
      [{ line: 3, column: 3, message: /^duplicate key 'x'/ }],
    ],
    ['a list as a key', '? [a, b]\n: 1\n', [{ line: 1, column: 3, message: /^keys must be plain values/ }]],
    [
      'an alias to its own ancestor',
      'a: &x [1, *x]\n',
      [{ line: 1, column: 11, message: /refers to a node that contains it/ }],
    ],
    [
      'an alias to an unknown anchor',
      'a: *nope\n',
      [{ line: 1, column: 4, message: /refers to no anchor &nope/ }],
    ],
    ['an unknown tag', 'a: !foo x\n', [{ line: 1, column: 4, message: /^unsupported YAML tag/ }]],
    [
      'tabs as indentation',
      'a:\n\tb: 1\n',
      [{ line: 2, column: 1, message: /^YAML syntax error: tabs are not allowed/ }],
    ],
    ['two documents', 'a: 1\n---\nb: 2\n', [{ line: 2, column: 1, message: /more than one YAML document/ }]],
  ];

  it.each(cases)('%s', (_title, text, expected) => {
    const problems = problemsOf(text);
    expect(problems).toHaveLength(expected.length);
    expected.forEach((want, i) => {
      expect(problems[i]!.message).toMatch(want.message);
      expect({ line: problems[i]!.line, column: problems[i]!.column }).toEqual({
        line: want.line,
        column: want.column,
      });
    });
  });

  it.each([
    ['a double quote', 'apiVersion: appvisor/v1\nkind: App\nname: "crm\n', 3, 7, '"'],
    ['a single quote', "name: 'crm\nkind: App\n", 1, 7, "'"],
    ['a nested value, more lines following', 'a:\n  b: "x\n  c: 1\n  d: 2\n', 2, 6, '"'],
    ['after an escaped quote', 'a: "ok"\nb: "x \\" y\nc: 1\n', 2, 4, '"'],
    ['after a doubled single quote', "a: 'it''s\n", 1, 4, "'"],
    ['in a flow list (and nothing after it)', 'domains: [a.com, "b.com]\nx: 1\n', 1, 18, '"'],
    ['without a newline at the end', 'name: "crm', 1, 7, '"'],
  ])('reports an unclosed quote where it opens: %s', (_title, text, line, column, quote) => {
    expect(problemsOf(text)).toEqual([
      { line, column, message: `YAML syntax error: the quote (${quote}) opened here is never closed` },
    ]);
  });

  it.each([
    ['', true],
    ['# only a comment\n', true],
    ['---\n', true],
    ['a: 1\n---\n', false],
  ])('empty text %j → empty: %s', (text, empty) => {
    const parsed = parseYaml(text);
    expect(parsed.empty).toBe(empty);
    expect(parsed.problems.length > 0).toBe(empty);
  });

  it('keeps a trailing empty document out of the way', () => {
    const parsed = parseYaml('a: 1\n---\n');
    expect(parsed.problems).toEqual([]);
    expect(parsed.doc?.toJS()).toEqual({ a: 1 });
  });

  it('leaves process.env as it was', () => {
    const before = process.env;
    parseYaml('a: 1\n');
    expect(process.env).toBe(before);
  });
});
