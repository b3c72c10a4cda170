import { h, replace } from './dom.js';
import { formatManifestError } from './format.js';

/**
 * The sign of each plan action, as `appvisor plan` prints it (mirrors ACTION_SIGN in
 * src/reconcile/model.ts): `+` create, `~` change, `-` remove, `!` refused.
 */
export const ACTION_SIGN = Object.freeze({
  refuse: '!',
  'create-database': '+',
  'create-schema': '+',
  'adopt-database': '+',
  'generate-secret': '+',
  'create-record': '+',
  upgrade: '~',
  stop: '-',
  restart: '~',
  start: '+',
  'update-routes': '~',
  orphan: '-',
  'drop-database': '-',
  'drop-schema': '-',
});

/** Class names of the signs (colour is a second cue; the sign itself is always shown). */
const SIGN_CLASS = { '+': 'sign-add', '~': 'sign-change', '-': 'sign-remove', '!': 'sign-refuse' };

/**
 * @typedef {{
 *   changes: {app: string, action: string, detail: string}[],
 *   errors: {file: string, line: number, column: number, message: string}[],
 *   guard?: string,
 * }} PlanJson
 */

/** @param {string} action */
export function signOf(action) {
  return ACTION_SIGN[/** @type {keyof typeof ACTION_SIGN} */ (action)] ?? '~';
}

/**
 * Renders `plan` into `container`: the guard, the invalid manifests, the changes.
 *
 * @param {HTMLElement} container
 * @param {PlanJson} plan
 */
export function renderPlan(container, plan) {
  const errors = plan.errors ?? [];
  const changes = plan.changes ?? [];
  replace(
    container,
    plan.guard ? h('p', { class: 'notice notice-busy plan-guard', role: 'note' }, plan.guard) : null,
    errors.length === 0
      ? null
      : h(
          'section',
          { class: 'plan-section', 'aria-labelledby': 'plan-errors-title' },
          h('h3', { id: 'plan-errors-title' }, `Invalid manifests (${errors.length})`),
          h(
            'ul',
            { class: 'plan-lines plan-errors' },
            errors.map((error) => h('li', { class: 'error-text' }, formatManifestError(error))),
          ),
        ),
    h(
      'section',
      { class: 'plan-section', 'aria-labelledby': 'plan-changes-title' },
      h('h3', { id: 'plan-changes-title' }, `Pending changes (${changes.length})`),
      changes.length === 0
        ? h('p', { class: 'plan-empty' }, 'No changes')
        : h(
            'ul',
            { class: 'plan-lines plan-changes' },
            changes.map((change) => {
              const sign = signOf(change.action);
              return h(
                'li',
                { dataset: { action: change.action } },
                h('span', { class: `sign ${SIGN_CLASS[sign] ?? ''}` }, sign),
                ' ',
                h('span', { class: 'plan-app' }, change.app),
                ' ',
                h('span', { class: 'plan-action' }, change.action),
                change.detail ? ` ${change.detail}` : '',
              );
            }),
          ),
    ),
  );
}
