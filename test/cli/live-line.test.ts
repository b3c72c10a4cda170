/** The live progress line: drawn in place only on a terminal that can redraw, cut to its width. */
import { describe, expect, it } from 'vitest';
import { liveLine } from '../../src/cli/live-line.js';

function output(isTTY: boolean, columns?: number) {
  const out = { text: '', isTTY, columns, write: (t: string) => (out.text += t) };
  return out;
}

describe('liveLine', () => {
  it.each([
    ['a pipe', output(false), {}],
    ['TERM=dumb', output(true, 80), { TERM: 'dumb' }],
  ])('prints nothing on %s', (_what, out, env) => {
    const line = liveLine(out, env);
    line.update('backing up crm: 1.0 MiB');
    line.clear();
    expect(out.text).toBe('');
  });

  it('draws at the line start, cut to the width, and erases it on clear', () => {
    const out = output(true, 20);
    const line = liveLine(out, {});
    line.update('backing up crm: dumping the data, 1.0 MiB');
    expect(out.text).toBe('\r\u001b[2Kbacking up crm: dum');
    line.clear();
    expect(out.text.endsWith('\r\u001b[2K')).toBe(true);
  });

  it('takes a terminal that reports no width as 80 columns', () => {
    const out = output(true, 0);
    liveLine(out, {}).update('restoring crm.tar.gz: reading the archive');
    expect(out.text).toBe('\r\u001b[2Krestoring crm.tar.gz: reading the archive');
  });
});
