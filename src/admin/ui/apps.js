import { h, hiddenText, replace } from './dom.js';
import {
  ERROR_PREVIEW,
  formatApplication,
  formatError,
  formatNotice,
  formatTarget,
  formatTime,
  NONE,
  truncate,
  visitHref,
} from './format.js';
import { runningCount, statusesOn } from './replicas.js';
import { actionsFor, badge } from './status.js';

/**
 * @typedef {{
 *   name: string, displayName: string, status: string, statusReason?: string | null,
 *   enabled: boolean, startMode: string,
 *   database: {mode: string, dialect: string | null, name: string, schema: string | null},
 *   domains: string[], jwt: {secret: string}, error: {code: string, message: string} | null,
 *   application?: {key: string | null, name: string, version: number},
 *   startedAt: string | null, lastReconciledAt: string | null, file?: string | null,
 *   replicas?: import('./replicas.js').AppOnReplica[],
 *   isolation?: {mode: string, memoryMb?: number},
 * }} AppView
 *
 * @typedef {{
 *   app: AppView, tr: HTMLTableRowElement, cells: Record<string, HTMLElement>,
 *   start: HTMLButtonElement, stop: HTMLButtonElement, visit: HTMLAnchorElement,
 *   message: HTMLElement, pending: boolean,
 * }} Row
 */

/** Column keys and the labels a phone-sized screen shows in front of each value. */
const COLUMNS = [
  ['name', 'Name'],
  ['status', 'Status'],
  ['startMode', 'Start mode'],
  ['database', 'Database'],
  ['domains', 'Domains'],
  ['secret', 'Secret'],
  ['error', 'Last error'],
  ['reconciled', 'Last reconcile'],
  ['actions', 'Actions'],
];

/**
 * The app list: one table row per app, keyed by name and updated in place, so a live update
 * or a fresh snapshot never moves the keyboard focus or closes an expanded error.
 */
export class AppList {
  /** @type {Map<string, Row>} */
  #rows = new Map();
  #body;
  #empty;
  #summary;
  #onOpen;
  #onAction;
  /** @type {import('./replicas.js').ReplicaView[] | undefined} The last replicas polled. */
  #replicas;
  /** Whether the signed-in token may start and stop apps (its scope); the buttons are hidden if not. */
  #canAct = true;

  /**
   * @param {{
   *   body: HTMLElement, empty: HTMLElement, summary: HTMLElement,
   *   onOpen: (name: string, opener: HTMLElement) => void,
   *   onAction: (name: string, action: 'start' | 'stop') => void,
   * }} options
   */
  constructor(options) {
    this.#body = options.body;
    this.#empty = options.empty;
    this.#summary = options.summary;
    this.#onOpen = options.onOpen;
    this.#onAction = options.onAction;
    keepTableRoles(this.#body.closest('table'));
  }

  /** @param {string} name */
  get(name) {
    return this.#rows.get(name)?.app;
  }

  /**
   * Shows exactly `apps`, in their order.
   *
   * @param {AppView[]} apps
   */
  replaceAll(apps) {
    const keep = new Set(apps.map((app) => app.name));
    for (const [name, row] of this.#rows) {
      if (!keep.has(name)) {
        row.tr.remove();
        this.#rows.delete(name);
      }
    }
    let previous = null;
    for (const app of apps) {
      const row = this.#upsert(app);
      const expected = previous === null ? this.#body.firstElementChild : previous.nextElementSibling;
      if (expected !== row.tr) this.#body.insertBefore(row.tr, expected);
      previous = row.tr;
    }
    this.#refreshSummary();
  }

  /**
   * Adds or refreshes one app.
   *
   * @param {AppView} app
   */
  upsert(app) {
    const row = this.#upsert(app);
    if (!row.tr.isConnected) this.#body.append(row.tr);
    this.#refreshSummary();
  }

  /**
   * Applies a status change; false when the app is not listed.
   *
   * @param {string} name
   * @param {string} status
   * @param {{code: string, message: string} | null} error
   */
  setStatus(name, status, error) {
    const row = this.#rows.get(name);
    if (row === undefined) return false;
    this.#fill(row, { ...row.app, status, error });
    this.#refreshSummary();
    return true;
  }

  /**
   * Shows the Start and Stop buttons, or hides them for a token whose scope does not allow them.
   *
   * @param {boolean} canAct
   */
  setCanAct(canAct) {
    this.#canAct = canAct;
    for (const row of this.#rows.values()) this.#fillActions(row);
  }

  /**
   * Marks a Start/Stop request in flight (buttons inert) or done.
   *
   * @param {string} name
   * @param {boolean} pending
   */
  setPending(name, pending) {
    const row = this.#rows.get(name);
    if (row === undefined) return;
    row.pending = pending;
    row.tr.toggleAttribute('aria-busy', pending);
    this.#fillActions(row);
  }

  /**
   * A message under the row's buttons (a refusal, say); empty text clears it.
   *
   * @param {string} name
   * @param {string} text
   */
  setMessage(name, text) {
    const row = this.#rows.get(name);
    if (row !== undefined) row.message.textContent = text;
  }

  /**
   * The replicas as last polled: every row's count is taken from them from now on (the
   * snapshot's own counts until the first poll).
   *
   * @param {import('./replicas.js').ReplicaView[]} replicas
   */
  setReplicas(replicas) {
    this.#replicas = replicas;
    for (const row of this.#rows.values()) this.#fillReplicas(row);
  }

  /**
   * The app on each live replica.
   *
   * @param {AppView} app
   */
  replicasOf(app) {
    return this.#replicas === undefined ? (app.replicas ?? []) : statusesOn(app.name, this.#replicas);
  }

  /** Forgets every app (on sign-out nothing stays on the page). */
  clear() {
    this.#replicas = undefined;
    this.#rows.clear();
    this.#body.replaceChildren();
    this.#refreshSummary();
  }

  /** @param {AppView} app */
  #upsert(app) {
    let row = this.#rows.get(app.name);
    if (row === undefined) {
      row = this.#create(app);
      this.#rows.set(app.name, row);
    }
    this.#fill(row, app);
    return row;
  }

  /**
   * @param {AppView} app
   * @returns {Row}
   */
  #create(app) {
    const { name } = app;
    /** @type {Record<string, HTMLElement>} */
    const cells = {};
    const tr = /** @type {HTMLTableRowElement} */ (h('tr', { role: 'row', dataset: { app: name } }));
    for (const [key, label] of COLUMNS) {
      const cell = h(key === 'name' ? 'th' : 'td', {
        role: key === 'name' ? 'rowheader' : 'cell',
        scope: key === 'name' ? 'row' : null,
        class: `col-${key}`,
        dataset: { label },
      });
      cells[key] = cell;
      tr.append(cell);
    }
    const open = h(
      'button',
      { type: 'button', class: 'link app-name', 'aria-haspopup': 'dialog' },
      name,
      hiddenText(' details'),
    );
    open.addEventListener('click', () => this.#onOpen(name, open));
    // The application it runs, under its names: the table stays as wide as it was.
    cells.name.append(open, h('span', { class: 'display-name' }), h('span', { class: 'app-application' }));

    const start = /** @type {HTMLButtonElement} */ (
      h('button', { type: 'button', class: 'action-start' }, 'Start', hiddenText(` ${name}`))
    );
    const stop = /** @type {HTMLButtonElement} */ (
      h('button', { type: 'button', class: 'action-stop secondary' }, 'Stop', hiddenText(` ${name}`))
    );
    // aria-disabled rather than disabled: a button that was just pressed keeps the focus.
    const act = (/** @type {'start' | 'stop'} */ action, /** @type {HTMLElement} */ button) => () => {
      if (button.getAttribute('aria-disabled') !== 'true') this.#onAction(name, action);
    };
    start.addEventListener('click', act('start', start));
    stop.addEventListener('click', act('stop', stop));
    const visit = /** @type {HTMLAnchorElement} */ (
      h(
        'a',
        { class: 'button-link action-visit', target: '_blank', rel: 'noopener noreferrer' },
        'Visit',
        hiddenText(` ${name} (opens in a new tab)`),
      )
    );
    const message = h('p', { class: 'row-message', role: 'status' });
    cells.actions.append(h('div', { class: 'actions' }, start, stop, visit), message);
    return { app, tr, cells, start, stop, visit, message, pending: false };
  }

  /**
   * @param {Row} row
   * @param {AppView} app
   */
  #fill(row, app) {
    const before = row.app;
    row.app = app;
    const { cells } = row;
    const fresh = cells.status.childElementCount === 0;
    const displayName = /** @type {HTMLElement} */ (cells.name.querySelector('.display-name'));
    displayName.textContent = app.displayName && app.displayName !== app.name ? app.displayName : '';
    if (fresh || before.status !== app.status || before.statusReason !== app.statusReason)
      replace(cells.status, badge(app.status, app.statusReason), h('span', { class: 'replica-count' }));
    this.#fillReplicas(row);
    // Where it runs, beside how it starts: a worker or process app is marked, a shared one is not.
    const isolated = app.isolation && app.isolation.mode !== 'shared' ? ` · ${app.isolation.mode}` : '';
    cells.startMode.textContent = app.startMode + (app.enabled ? '' : ' (disabled)') + isolated;
    const application = /** @type {HTMLElement} */ (cells.name.querySelector('.app-application'));
    application.textContent = app.application ? formatApplication(app) : '';
    replace(
      cells.database,
      h('span', { class: 'db-mode' }, app.database.mode),
      h('span', { class: 'db-target' }, formatTarget(app.database)),
    );
    replace(
      cells.domains,
      app.domains.length === 0
        ? NONE
        : h('ul', { class: 'plain' }, ...app.domains.map((d) => h('li', {}, d))),
    );
    cells.secret.textContent = app.jwt.secret;
    const errorText = [formatError(app.error), formatNotice(app)].filter(Boolean).join(' · ');
    const beforeText = [formatError(before.error), formatNotice(before)].filter(Boolean).join(' · ');
    if (fresh || beforeText !== errorText) replace(cells.error, errorCell(errorText));
    replace(cells.reconciled, timeElement(app.lastReconciledAt, 'never'));
    row.visit.href = visitHref(app, location);
    this.#fillActions(row);
  }

  /** @param {Row} row */
  #fillReplicas(row) {
    const count = /** @type {HTMLElement} */ (row.cells.status.querySelector('.replica-count'));
    count.textContent = runningCount(this.replicasOf(row.app));
  }

  /** @param {Row} row */
  #fillActions(row) {
    const allowed = actionsFor(row.app.status);
    setInert(row.start, row.pending || !allowed.start);
    setInert(row.stop, row.pending || !allowed.stop);
    row.start.hidden = !this.#canAct;
    row.stop.hidden = !this.#canAct;
  }

  #refreshSummary() {
    const counts = new Map();
    for (const { app } of this.#rows.values()) counts.set(app.status, (counts.get(app.status) ?? 0) + 1);
    const total = this.#rows.size;
    this.#empty.hidden = total !== 0;
    const parts = [...counts].map(([status, n]) => `${n} ${status}`);
    this.#summary.textContent =
      total === 0 ? '' : `${total} app${total === 1 ? '' : 's'}: ${parts.join(', ')}`;
  }
}

/**
 * An error: short ones as text, long ones cut with the full text one click away.
 *
 * @param {string} text
 */
function errorCell(text) {
  if (text === '') return NONE;
  if (text.length <= ERROR_PREVIEW) return h('span', { class: 'error-text' }, text);
  return h(
    'details',
    { class: 'error-more' },
    h('summary', { class: 'error-text' }, truncate(text, ERROR_PREVIEW)),
    h('p', { class: 'error-full' }, text),
  );
}

/**
 * @param {string | null} iso
 * @param {string} empty
 */
export function timeElement(iso, empty) {
  if (!iso) return empty;
  return h('time', { datetime: iso, title: iso }, formatTime(iso));
}

/**
 * On a phone-sized screen the table is laid out as blocks, and some browsers then stop
 * exposing it as a table; explicit roles keep the header/cell relations for screen readers.
 *
 * @param {HTMLTableElement | null} table
 */
function keepTableRoles(table) {
  if (table === null) return;
  table.setAttribute('role', 'table');
  for (const group of table.querySelectorAll('thead, tbody')) group.setAttribute('role', 'rowgroup');
  for (const tr of table.querySelectorAll('thead tr')) tr.setAttribute('role', 'row');
  for (const th of table.querySelectorAll('thead th')) th.setAttribute('role', 'columnheader');
}

/**
 * @param {HTMLElement} button
 * @param {boolean} inert
 */
function setInert(button, inert) {
  if (inert) button.setAttribute('aria-disabled', 'true');
  else button.removeAttribute('aria-disabled');
}
