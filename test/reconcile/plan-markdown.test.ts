/** The markdown plan (a pull-request comment) rendered from plans built by hand. */
import { describe, expect, it } from 'vitest';
import type { Plan, Step } from '../../src/reconcile/model.js';
import { MARKDOWN_FOLD_AFTER, planToMarkdown, summaryLine } from '../../src/reconcile/plan-markdown.js';

const NOW = Date.parse('2026-12-07T12:00:00Z');

function creates(n: number): Step[] {
  return Array.from({ length: n }, (_, i) => ({
    app: `app${i}`,
    action: 'create-database' as const,
    detail: `database app${i} on sqlite sqlite:data`,
  }));
}

describe('planToMarkdown', () => {
  it('counts per step by sign, and lists refusals and destructive steps first', () => {
    const plan: Plan = {
      changes: [
        { app: 'a', action: 'create-database', detail: 'database a' },
        { app: 'a', action: 'generate-secret', detail: 'jwt.secret: own; value (sensitive)' },
        { app: 'b', action: 'update-record', detail: 'displayName changed' },
        { app: 'c', action: 'orphan', detail: 'manifest removed; data kept' },
        {
          app: 'c',
          action: 'drop-database',
          detail: 'database c (deletionPolicy: drop; due 2026-12-08T12:00:00Z)',
          dueAt: '2026-12-08T12:00:00Z',
        },
        { app: 'd', action: 'refuse', detail: 'database d belongs to app e', code: 'ADOPT_REFUSED' },
      ],
      errors: [],
    };
    expect(summaryLine(plan)).toBe('2 to create, 1 to change, 2 to remove, 1 refused');
    const md = planToMarkdown(plan, { now: NOW });
    const rows = md.split('\n').filter((l) => /^\| [-+~!] \|/.test(l));
    expect(rows.map((r) => r.split(' | ')[2])).toEqual([
      'orphan',
      'drop-database (scheduled)',
      'refuse',
      'create-database',
      'generate-secret',
      'update-record',
    ]);
    expect(md).not.toContain('<details>');
    // Once its time has come the drop is no longer "scheduled": this apply carries it out.
    expect(planToMarkdown(plan, { now: Date.parse('2026-12-09T00:00:00Z') })).toContain(
      '| - | c | drop-database | ',
    );
  });

  it(`folds a plan of more than ${MARKDOWN_FOLD_AFTER} steps into <details>, keeping refusals and drops in view`, () => {
    const atLimit = planToMarkdown({ changes: creates(MARKDOWN_FOLD_AFTER), errors: [] }, { now: NOW });
    expect(atLimit).not.toContain('<details>');
    const long: Plan = {
      changes: [
        ...creates(MARKDOWN_FOLD_AFTER),
        { app: 'old', action: 'orphan', detail: 'manifest removed' },
      ],
      errors: [],
    };
    const md = planToMarkdown(long, { now: NOW });
    const [visible, folded] = md.split('<details>');
    expect(folded).toMatch(/^\n<summary>All 13 steps<\/summary>\n/);
    expect(folded).toContain('| + | app11 | create-database |');
    expect(folded).toContain('| - | old | orphan |');
    expect(folded?.trimEnd().endsWith('</details>')).toBe(true);
    expect(visible).toContain('**Refusals and destructive steps:**');
    expect(visible).toContain('| - | old | orphan |');
    expect(visible).not.toContain('app0');
  });

  it('escapes details so that they cannot break the table or inject HTML', () => {
    const detail = 'a | b `code` <img src=x onerror=alert(1)> </details> *bold* [x](y)\nnext';
    const md = planToMarkdown(
      { changes: [{ app: 'x', action: 'refuse', detail }], errors: [] },
      { now: NOW },
    );
    const row = md.split('\n').find((l) => l.startsWith('| ! |'));
    expect(row).toBe(
      '| ! | x | refuse | a \\| b \\`code\\` &lt;img src=x onerror=alert(1)&gt; &lt;/details&gt; \\*bold\\* \\[x\\](y) next |',
    );
    // Every cell separator left is one of the row's own four columns.
    expect(row?.replace(/\\\|/g, '').split('|')).toHaveLength(6);
    expect(md).not.toMatch(/<(?!\/?details|summary)/);
  });

  it('shows the empty-set guard and manifest errors with file:line:col', () => {
    const md = planToMarkdown(
      {
        changes: [],
        errors: [{ file: 'apps.d/w`iki.yaml', line: 4, column: 12, message: "startMode 'x' <is> bad" }],
        guard: 'no valid manifest left: 3 removals held back; pass --allow-empty',
      },
      { now: NOW },
    );
    expect(md).toMatch(/^### appvisor plan\n\n0 to create, 0 to change, 0 to remove, 0 refused\n/);
    expect(md).toContain('> **Held back:** no valid manifest left: 3 removals held back; pass --allow-empty');
    expect(md).toContain("- `apps.d/w'iki.yaml:4:12` startMode 'x' &lt;is&gt; bad");
    expect(md).toContain('No changes.');
  });
});
