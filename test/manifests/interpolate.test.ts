// biome-ignore-all lint/suspicious/noTemplateCurlyInString: manifest text, where ${VAR} is interpolation syntax.
import { describe, expect, it } from 'vitest';
import { expand } from '../../src/manifests/interpolate.js';
import { validateManifestText } from '../../src/manifests/load.js';
import { manifest } from './helpers.js';

const env = { HOST: 'db.local', EMPTY: '', PORT: '5432' };

describe('expand', () => {
  it.each([
    ['no variables', 'plain text', 'plain text'],
    ['a set variable', 'postgres://${HOST}:5432', 'postgres://db.local:5432'],
    ['two variables', '${HOST}:${PORT}', 'db.local:5432'],
    ['a default for an unset variable', '${NOPE:-fallback}', 'fallback'],
    ['a default for an empty variable (as in the shell)', '${EMPTY:-fallback}', 'fallback'],
    ['an empty default', '[${NOPE:-}]', '[]'],
    ['a default with spaces and colons', '${NOPE:-a b:c}', 'a b:c'],
    ['a set but empty variable without default', '[${EMPTY}]', '[]'],
    ['the $${ escape', 'cost: $${HOST}', 'cost: ${HOST}'],
    ['a lone dollar', 'price $5 and $HOST', 'price $5 and $HOST'],
  ])('%s', (_title, input, output) => {
    expect(expand(input, env)).toEqual({ value: output });
  });

  it.each([
    [
      'an unset variable',
      'x ${MISSING_ONE}',
      /^environment variable MISSING_ONE is not set \(set it, or give a default: \$\{MISSING_ONE:-value\}\)$/,
    ],
    ['an unterminated reference', 'x ${HOST', /^unterminated \$\{/],
    ['a bad name', '${1X}', /^\$\{1X\} is not a variable reference/],
    ['an empty reference', '${}', /is not a variable reference/],
  ])('%s is an error', (_title, input, message) => {
    const result = expand(input, env);
    expect('error' in result ? result.error : '').toMatch(message);
  });
});

describe('interpolation in manifests', () => {
  it('applies to values everywhere, not to keys', () => {
    const result = validateManifestText(
      manifest('a', 'displayName: "${HOST}"', 'config:', '  ${HOST}: ${PORT}', '  list: ["${HOST}", x]'),
      'a.yaml',
      env,
    );
    expect(result.ok && result.app.manifest.config).toEqual({ '${HOST}': 5432, list: ['db.local', 'x'] });
    expect(result.ok && result.app.manifest.displayName).toBe('db.local');
  });

  it('reads an unquoted result as YAML would (booleans, whole numbers); quoted stays text', () => {
    const result = validateManifestText(
      manifest('a', 'enabled: ${ON:-false}', 'config:', '  n: ${PORT}', '  q: "${PORT}"'),
      'a.yaml',
      env,
    );
    expect(result.ok && result.app.manifest.enabled).toBe(false);
    expect(result.ok && result.app.manifest.config).toEqual({ n: 5432, q: '5432' });
  });

  it('reports the missing variable at its position and nothing else about that value', () => {
    const result = validateManifestText(manifest('${APP_NAME}', 'displayName: x ${NOPE}'), 'a.yaml', {});
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.invalid.name).toBeUndefined();
      expect(result.invalid.errors.map((e) => `${e.line}:${e.column} ${e.message.split(' (')[0]}`)).toEqual([
        '3:7 environment variable APP_NAME is not set',
        '4:16 environment variable NOPE is not set',
      ]);
    }
  });

  it('never puts a value of the environment into an error', () => {
    const result = validateManifestText(
      manifest('a', 'database:', '  mode: new-connection', '  connection: { url: "${URL}" }'),
      'a.yaml',
      { URL: 'https://user:hunter2@host' },
    );
    expect(result.ok).toBe(false);
    expect(JSON.stringify(result)).not.toContain('hunter2');
  });
});
