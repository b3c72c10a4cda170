import { ACTION_SIGN, type Action, type Plan, type Step } from './model.js';
import { isScheduled } from './planner.js';

/**
 * `plan --format markdown`: the plan as a pull-request comment (SPEC §8.7). Pure: the plan and
 * the time it is read at in, markdown out.
 *
 * The summary counts steps, not apps: an app that is created (database, secret, record) counts
 * three times under "to create". Per step is what the table below lists line by line, so the
 * numbers can be checked against it; an app with a step of several signs (a removal that orphans
 * and schedules a drop) would have no single honest sign to count under.
 */

/** Past this many steps the full list folds into a `<details>` block. */
export const MARKDOWN_FOLD_AFTER = 12;

/** Steps that lose something or that this apply will not do: shown before the rest. */
const ATTENTION: ReadonlySet<Action> = new Set(['refuse', 'sweep', 'orphan', 'drop-database', 'drop-schema']);

export interface PlanMarkdownOptions {
  /** The time the plan is read at (ms since the epoch): what tells a scheduled drop from a due one. */
  readonly now: number;
  /** The title line. @default 'appvisor plan' */
  readonly title?: string;
}

export function planToMarkdown(plan: Plan, opts: PlanMarkdownOptions): string {
  const lines: string[] = [`### ${escapeMarkdown(opts.title ?? 'appvisor plan')}`, ''];
  lines.push(summaryLine(plan), '');
  if (plan.guard) lines.push(`> **Held back:** ${escapeMarkdown(plan.guard)}`, '');
  if (plan.errors.length > 0) {
    lines.push(
      `**Manifest errors** (${plan.errors.length}; those apps keep their last applied spec):`,
      '',
      ...plan.errors.map(
        (e) => `- \`${codeSpan(`${e.file}:${e.line}:${e.column}`)}\` ${escapeMarkdown(e.message)}`,
      ),
      '',
    );
  }
  if (plan.changes.length === 0) {
    lines.push('No changes.');
    return `${lines.join('\n')}\n`;
  }
  // Stable within each group: the planner's order (per app, in the executor's order) stays.
  const attention = plan.changes.filter((c) => ATTENTION.has(c.action));
  const ordered = [...attention, ...plan.changes.filter((c) => !ATTENTION.has(c.action))];
  if (plan.changes.length <= MARKDOWN_FOLD_AFTER) {
    lines.push(...table(ordered, opts.now));
    return `${lines.join('\n')}\n`;
  }
  // A long plan: what a reviewer must not miss stays in view, everything is one click away.
  if (attention.length > 0) {
    lines.push('**Refusals and destructive steps:**', '', ...table(attention, opts.now), '');
  }
  lines.push(
    '<details>',
    `<summary>All ${plan.changes.length} steps</summary>`,
    '',
    ...table(ordered, opts.now),
    '',
    '</details>',
  );
  return `${lines.join('\n')}\n`;
}

/** `N to create, N to change, N to remove, N refused`, one count per step by its sign. */
export function summaryLine(plan: Plan): string {
  const count = { '+': 0, '~': 0, '-': 0, '!': 0 };
  for (const c of plan.changes) count[ACTION_SIGN[c.action]] += 1;
  return `${count['+']} to create, ${count['~']} to change, ${count['-']} to remove, ${count['!']} refused`;
}

function table(steps: readonly Step[], now: number): string[] {
  return [
    '| | App | Action | Detail |',
    '| --- | --- | --- | --- |',
    ...steps.map((c) => {
      const scheduled = isScheduled(c, now) ? ' (scheduled)' : '';
      return `| ${ACTION_SIGN[c.action]} | ${escapeMarkdown(c.app)} | ${c.action}${scheduled} | ${escapeMarkdown(c.detail)} |`;
    }),
  ];
}

/**
 * Text in a table cell or a list item, made inert: a `|` cannot end the cell, a backtick cannot
 * open code, `<` cannot open HTML (a `</details>` in a detail cannot close the block), emphasis
 * and links do not apply, and a line break cannot end the row.
 */
export function escapeMarkdown(text: string): string {
  return text
    .replace(/\r?\n|\r/g, ' ')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/[\\`*_[\]|~#]/g, (ch) => `\\${ch}`);
}

/** Text inside a code span: only a backtick could end it (file names come from the user). */
function codeSpan(text: string): string {
  return text.replace(/`/g, "'").replace(/\r?\n|\r/g, ' ');
}
