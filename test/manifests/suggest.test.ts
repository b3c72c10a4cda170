import { describe, expect, it } from 'vitest';
import { closest, didYouMean, editDistance } from '../../src/manifests/suggest.js';

describe('editDistance', () => {
  it.each([
    ['', '', 0],
    ['abc', 'abc', 0],
    ['abc', 'ABC', 0],
    ['kitten', 'sitting', 3],
    ['with-mian', 'with-main', 2],
    ['', 'abc', 3],
  ])('%s → %s = %d', (a, b, d) => {
    expect(editDistance(a, b)).toBe(d);
  });
});

describe('closest / didYouMean', () => {
  const modes = ['new-database', 'new-connection', 'new-schema'];
  it.each([
    ['new-databse', 'new-database'],
    ['New-Schema', 'new-schema'],
    ['newconnection', 'new-connection'],
    ['postgres', undefined],
    ['x', undefined],
    // The distinctive word alone.
    ['schema', 'new-schema'],
    ['Database', 'new-database'],
    ['connection', 'new-connection'],
    // A word every candidate has is no hint, nor is a fragment of a word.
    ['new', undefined],
    ['data', undefined],
    ['new-', undefined],
  ])('%s → %s', (input, expected) => {
    expect(closest(input, modes)).toBe(expected);
  });

  it.each([
    ['main', 'with-main'],
    ['first-visit', 'on-first-visit'],
    ['visit', 'on-first-visit'],
    ['on', undefined],
  ])('start mode %s → %s', (input, expected) => {
    expect(closest(input, ['on-first-visit', 'with-main'])).toBe(expected);
  });

  it('phrases the hint, and gives none for an exact match or a far miss', () => {
    expect(didYouMean('shard', ['own', 'shared'])).toBe("; did you mean 'shared'?");
    expect(didYouMean('own', ['own', 'shared'])).toBe('');
    expect(didYouMean('something-else', ['own', 'shared'])).toBe('');
  });
});
