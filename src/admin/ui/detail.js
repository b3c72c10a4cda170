import { timeElement } from './apps.js';
import { FigureCharts } from './charts.js';
import { h, replace, tabKeyTarget } from './dom.js';
import { formatApplication, formatError, formatNotice, formatTime, NONE } from './format.js';
import { LogView } from './logs.js';
import { badge } from './status.js';

/**
 * @typedef {import('./apps.js').AppView} AppView
 * @typedef {{
 *   app: string, reconcileId: string, at: string, outcome: string, durationMs: number,
 *   steps: {action: string, detail: string, result: string}[],
 *   error?: {code: string, message: string},
 *   by?: string,
 * }} HistoryEntry
 */

/** Colour family of a reconcile outcome; the word is always shown as well. */
const OUTCOME_TONE = {
  created: 'ok',
  updated: 'ok',
  unchanged: 'idle',
  deleted: 'idle',
  failed: 'bad',
  refused: 'bad',
};

/** How often the open view asks for the figures again (the slot under way grows meanwhile). */
const FIGURES_POLL_MS = 10_000;

/**
 * The detail view of one app, in a modal `<dialog>`, in two tabs: Overview (every field, the
 * manifest's file, charts of the last hour refreshed while open, the reconcile history) and
 * Logs (followed while open). Escape or Close shut it, stop both, and give the focus back to
 * its opener.
 */
export class DetailView {
  #dialog;
  #title;
  #body;
  /** @type {HTMLElement | null} */
  #fields = null;
  /** @type {string | undefined} */
  #name;
  /** @type {HTMLElement | undefined} */
  #opener;
  #loads = 0;
  #replicasOf;
  #rotate;
  #backup;
  #allows;
  #loadFigures;
  #token;
  /** What the open view runs: stopped when it closes. @type {{stop(): void} | undefined} */
  #live;

  /**
   * @param {{
   *   dialog: HTMLDialogElement, title: HTMLElement, body: HTMLElement, close: HTMLElement,
   *   replicasOf: (app: AppView) => import('./replicas.js').AppOnReplica[],
   *   rotate: (name: string) => Promise<{kid: string, previousKid: string, previousUntil: string}>,
   *   backup: (name: string) => Promise<{blob: Blob, filename: string}>,
   *   allows: (needs: 'read' | 'operate' | 'admin') => boolean,
   *   loadFigures: (name: string) => Promise<import('./charts.js').FigureSeries>,
   *   token: () => string,
   * }} parts
   */
  constructor({ dialog, title, body, close, replicasOf, rotate, backup, allows, loadFigures, token }) {
    this.#loadFigures = loadFigures;
    this.#token = token;
    this.#backup = backup;
    this.#allows = allows;
    this.#replicasOf = replicasOf;
    this.#rotate = rotate;
    this.#dialog = dialog;
    this.#title = title;
    this.#body = body;
    close.addEventListener('click', () => this.close());
    dialog.addEventListener('close', () => {
      this.#live?.stop();
      this.#live = undefined;
      this.#name = undefined;
      this.#loads++;
      replace(this.#body);
      this.#opener?.focus();
      this.#opener = undefined;
    });
  }

  /** The app shown, if the dialog is open. */
  get name() {
    return this.#name;
  }

  /**
   * Opens the view for `app`, loading its history with `loadHistory`.
   *
   * @param {AppView} app
   * @param {HTMLElement | undefined} opener
   * @param {() => Promise<HistoryEntry[]>} loadHistory
   */
  open(app, opener, loadHistory) {
    this.#live?.stop();
    this.#name = app.name;
    this.#opener = opener;
    this.#title.textContent = app.name;
    this.#fields = h('dl', { class: 'fields' });
    const historyBox = h('div', { class: 'history', 'aria-live': 'polite' }, h('p', {}, 'Loading history…'));
    const figuresBox = h('div', { class: 'figures' }, h('p', { class: 'muted' }, 'Loading the figures…'));
    const overview = h(
      'div',
      { id: 'detail-panel-overview', role: 'tabpanel', 'aria-labelledby': 'detail-tab-overview' },
      this.#fields,
      this.#actions(app, () => this.#loadHistory(historyBox, loadHistory)),
      h('h3', { id: 'figures-title' }, 'Last hour'),
      figuresBox,
      h('h3', { id: 'history-title' }, 'Reconcile history'),
      historyBox,
    );
    const logsBox = h('div', { class: 'logs' });
    const logsPanel = h(
      'div',
      { id: 'detail-panel-logs', role: 'tabpanel', 'aria-labelledby': 'detail-tab-logs', hidden: true },
      logsBox,
    );
    const logs = new LogView(logsBox, { name: app.name, token: this.#token });
    const figures = this.#pollFigures(app.name, figuresBox);
    this.#live = {
      stop: () => {
        figures.stop();
        logs.stop();
      },
    };
    replace(
      this.#body,
      detailTabs([
        { id: 'overview', label: 'Overview', panel: overview },
        // Followed from the first time the tab is shown until the view closes.
        { id: 'logs', label: 'Logs', panel: logsPanel, onShow: () => logs.following || logs.start() },
      ]),
      overview,
      logsPanel,
    );
    this.update(app);
    if (!this.#dialog.open) this.#dialog.showModal();
    this.#loadHistory(historyBox, loadHistory);
  }

  /**
   * Shows `name`'s figures in `box` now and every FIGURES_POLL_MS until stopped.
   *
   * @param {string} name
   * @param {HTMLElement} box
   * @returns {{stop(): void}}
   */
  #pollFigures(name, box) {
    /** @type {FigureCharts | undefined} */
    let charts;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let timer;
    let stopped = false;
    const load = () => {
      this.#loadFigures(name).then(
        (series) => {
          if (stopped) return;
          charts ??= new FigureCharts(box);
          charts.render(series);
          box.dataset.loaded = String(Date.now());
          timer = setTimeout(load, FIGURES_POLL_MS);
        },
        (/** @type {Error & {status?: number}} */ err) => {
          if (stopped) return;
          charts?.destroy();
          charts = undefined;
          // A server without figures (404) will not have them in a moment either.
          const gone = err.status === 404 || err.status === 401;
          replace(box, h('p', { class: 'error-text' }, `Could not load the figures: ${err.message}`));
          if (!gone) timer = setTimeout(load, FIGURES_POLL_MS);
        },
      );
    };
    load();
    return {
      stop: () => {
        stopped = true;
        clearTimeout(timer);
        charts?.destroy();
      },
    };
  }

  /**
   * The app's operations the token's scope allows: Backup (`operate`), and Rotate secret
   * (`admin`; an app with its own JWT secret: `shared` apps follow the main app's).
   *
   * @param {AppView} app
   * @param {() => void} reloadHistory
   */
  #actions(app, reloadHistory) {
    const name = app.name;
    const result = h('p', { class: 'muted', 'aria-live': 'polite' });
    const buttons = [
      this.#allows('operate') ? this.#backupButton(name, result, reloadHistory) : null,
      app.jwt.secret === 'own' && this.#allows('admin')
        ? this.#rotateButton(name, result, reloadHistory)
        : null,
    ].filter((b) => b !== null);
    if (buttons.length === 0) return null;
    return h('div', { class: 'detail-actions' }, ...buttons, result);
  }

  /**
   * Backup: the server backs the app up while it serves, and the archive is saved as a download.
   *
   * @param {string} name
   * @param {HTMLElement} result
   * @param {() => void} reloadHistory
   */
  #backupButton(name, result, reloadHistory) {
    const button = /** @type {HTMLButtonElement} */ (
      h('button', { type: 'button', class: 'action-backup secondary' }, 'Backup')
    );
    button.addEventListener('click', () => {
      button.disabled = true;
      result.textContent = `Backing up ${name}…`;
      this.#backup(name)
        .then(
          ({ blob, filename }) => {
            const url = URL.createObjectURL(blob);
            const link = h('a', { href: url, download: filename, hidden: true });
            document.body.append(link);
            link.click();
            link.remove();
            setTimeout(() => URL.revokeObjectURL(url), 60_000);
            result.textContent = `Saved ${filename} (${formatSize(blob.size)}).`;
            reloadHistory();
          },
          (/** @type {Error} */ err) => {
            result.textContent = `Could not back up ${name}: ${err.message}`;
          },
        )
        .finally(() => {
          button.disabled = false;
        });
    });
    return button;
  }

  /**
   * Rotate secret, after a confirmation.
   *
   * @param {string} name
   * @param {HTMLElement} result
   * @param {() => void} reloadHistory
   */
  #rotateButton(name, result, reloadHistory) {
    const button = /** @type {HTMLButtonElement} */ (
      h('button', { type: 'button', class: 'action-rotate secondary' }, 'Rotate secret')
    );
    button.addEventListener('click', () => {
      const ok = window.confirm(
        `Give ${name} a new JWT secret? Tokens signed with the current one stay valid for 1 hour, then stop working.`,
      );
      if (!ok) return;
      button.disabled = true;
      result.textContent = 'Rotating…';
      this.#rotate(name)
        .then(
          (r) => {
            result.textContent = `New key ${r.kid}; tokens of key ${r.previousKid} stay valid until ${formatTime(r.previousUntil)}.`;
            reloadHistory();
          },
          (/** @type {Error} */ err) => {
            result.textContent = `Could not rotate the secret: ${err.message}`;
          },
        )
        .finally(() => {
          button.disabled = false;
        });
    });
    return button;
  }

  /**
   * @param {HTMLElement} historyBox
   * @param {() => Promise<HistoryEntry[]>} loadHistory
   */
  #loadHistory(historyBox, loadHistory) {
    const load = ++this.#loads;
    loadHistory().then(
      (entries) => {
        if (load === this.#loads) replace(historyBox, renderHistory(entries));
      },
      (/** @type {Error} */ err) => {
        if (load === this.#loads) {
          replace(historyBox, h('p', { class: 'error-text' }, `Could not load the history: ${err.message}`));
        }
      },
    );
  }

  /**
   * Refreshes the fields if `app` is the one shown.
   *
   * @param {AppView} app
   */
  update(app) {
    if (app.name !== this.#name || this.#fields === null) return;
    const db = app.database;
    /** @type {[string, Node | string][]} */
    const rows = [
      ['Name', app.name],
      ['Display name', app.displayName || NONE],
      ['Status', badge(app.status, app.statusReason)],
      ['Enabled', app.enabled ? 'yes' : 'no'],
      ['Start mode', app.startMode],
      ['Application', formatApplication(app)],
      ['Isolation', isolationText(app.isolation)],
      ['Database mode', db.mode],
      ['Dialect', db.dialect ?? 'main database dialect'],
      ['Database', db.name],
      ['Schema', db.schema ?? NONE],
      ['Domains', app.domains.length === 0 ? NONE : app.domains.join(', ')],
      ['JWT secret', app.jwt.secret],
      ['Started', timeElement(app.startedAt, NONE)],
      ['On replicas', replicaList(this.#replicasOf(app))],
      ['Last reconcile', timeElement(app.lastReconciledAt, 'never')],
      ['Manifest file', app.file ? h('code', {}, app.file) : NONE],
      ['Last error', app.error ? h('span', { class: 'error-text' }, formatError(app.error)) : NONE],
      ['Notice', formatNotice(app) || NONE],
    ];
    replace(
      this.#fields,
      rows.map(([term, value]) => h('div', { class: 'field' }, h('dt', {}, term), h('dd', {}, value))),
    );
  }

  close() {
    if (this.#dialog.open) this.#dialog.close();
  }
}

/**
 * The detail view's tab bar: arrows, Home and End move between the tabs (the focus follows).
 *
 * @param {{id: string, label: string, panel: HTMLElement, onShow?: () => void}[]} tabs
 */
function detailTabs(tabs) {
  const buttons = tabs.map((tab, i) =>
    h(
      'button',
      {
        type: 'button',
        role: 'tab',
        id: `detail-tab-${tab.id}`,
        'aria-controls': tab.panel.id,
        'aria-selected': String(i === 0),
        tabindex: i === 0 ? '0' : '-1',
      },
      tab.label,
    ),
  );
  const select = (/** @type {number} */ index, /** @type {boolean} */ focus) => {
    for (const [i, tab] of tabs.entries()) {
      buttons[i]?.setAttribute('aria-selected', String(i === index));
      if (buttons[i]) buttons[i].tabIndex = i === index ? 0 : -1;
      tab.panel.hidden = i !== index;
    }
    if (focus) buttons[index]?.focus();
    tabs[index]?.onShow?.();
  };
  for (const [i, button] of buttons.entries()) button.addEventListener('click', () => select(i, false));
  const bar = h('div', { class: 'tabs detail-tabs', role: 'tablist', 'aria-label': 'App details' }, buttons);
  bar.addEventListener('keydown', (event) => {
    const index = buttons.indexOf(/** @type {HTMLElement} */ (event.target));
    if (index < 0) return;
    const next = tabKeyTarget(event.key, index, buttons.length);
    if (next === undefined) return;
    event.preventDefault();
    select(next, true);
  });
  return bar;
}

/**
 * The app's status on each live replica, one line each.
 *
 * @param {import('./replicas.js').AppOnReplica[]} on
 */
function replicaList(on) {
  if (on.length === 0) return NONE;
  return h(
    'ul',
    { class: 'plain replica-statuses' },
    on.map((r) =>
      h(
        'li',
        { dataset: { replica: r.id } },
        h('code', {}, r.id),
        ' ',
        badge(r.status),
        r.startedAt ? [' since ', timeElement(r.startedAt, '')] : null,
      ),
    ),
  );
}

/**
 * @param {HistoryEntry[]} entries newest first
 */
function renderHistory(entries) {
  if (entries.length === 0) return h('p', {}, 'No reconciles recorded yet.');
  return h(
    'ol',
    { class: 'history-list', 'aria-labelledby': 'history-title' },
    entries.map((entry) =>
      h(
        'li',
        { class: 'history-entry' },
        h(
          'p',
          { class: 'history-head' },
          h('time', { datetime: entry.at, title: entry.at }, formatTime(entry.at)),
          ' ',
          h(
            'span',
            {
              class: `badge badge-${OUTCOME_TONE[entry.outcome] ?? 'idle'}`,
              dataset: { outcome: entry.outcome },
            },
            entry.outcome,
          ),
          ' ',
          h('span', { class: 'muted' }, `${Math.round(entry.durationMs)} ms · ${entry.reconcileId}`),
          entry.by ? h('span', { class: 'history-by' }, ` · by ${entry.by}`) : null,
        ),
        entry.steps.length === 0
          ? h('p', { class: 'muted' }, 'No steps.')
          : h(
              'ul',
              { class: 'steps' },
              entry.steps.map((step) =>
                h(
                  'li',
                  {},
                  h('span', { class: 'step-action' }, step.action),
                  step.detail ? ` ${step.detail}` : '',
                  ' → ',
                  h('span', { class: 'step-result' }, step.result),
                ),
              ),
            ),
        entry.error ? h('p', { class: 'error-text' }, formatError(entry.error)) : null,
      ),
    ),
  );
}

/** @param {number} bytes */
function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/**
 * Where the app's code runs, and an isolated instance's memory: `worker (41 MiB)`.
 *
 * @param {{mode: string, memoryMb?: number} | undefined} isolation
 * @returns {string}
 */
function isolationText(isolation) {
  if (!isolation) return 'shared';
  return isolation.memoryMb === undefined ? isolation.mode : `${isolation.mode} (${isolation.memoryMb} MiB)`;
}
