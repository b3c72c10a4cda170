import { attentionReasons, driftOf, needsAttention } from './attention.js';
import { formatFigure, sparkline } from './charts.js';
import { h, hiddenText, replace } from './dom.js';
import { FilterBar } from './filter-bar.js';
import { comparator, isFiltered, matcher, sortMoved } from './filters.js';
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
import { VirtualRows } from './virtual-list.js';

/**
 * @typedef {{
 *   name: string, displayName: string, status: string, statusReason?: string | null,
 *   enabled: boolean, startMode: string,
 *   database: {mode: string, dialect: string | null, name: string, schema: string | null},
 *   domains: string[], jwt: {secret: string}, error: {code: string, message: string} | null,
 *   application?: {key: string | null, name: string, version: number},
 *   startedAt: string | null, lastReconciledAt: string | null, file?: string | null,
 *   dropAt?: string | null, intent?: {action: string, by: string, at: string} | null,
 *   replicas?: import('./replicas.js').AppOnReplica[],
 *   isolation?: {mode: string, memoryMb?: number},
 * }} AppView
 *
 * @typedef {{
 *   app: AppView, tr: HTMLTableRowElement, cells: Record<string, HTMLElement>,
 *   start: HTMLButtonElement, stop: HTMLButtonElement, visit: HTMLAnchorElement,
 *   message: HTMLElement, reasons: HTMLElement,
 *   spark?: ReturnType<typeof sparkline>,
 * }} Row
 */

/** Column keys and the labels a phone-sized screen shows in front of each value. */
const COLUMNS = [
  ['name', 'Name'],
  ['status', 'Status'],
  ['traffic', 'Requests/s'],
  ['startMode', 'Start mode'],
  ['database', 'Database'],
  ['domains', 'Domains'],
  ['secret', 'Secret'],
  ['error', 'Last error'],
  ['reconciled', 'Last reconcile'],
  ['actions', 'Actions'],
];

/** Where the list turns into cards (app.css has the same breakpoint). */
const CARDS = '(max-width: 64rem)';

/** Row heights to assume before a row was drawn: a table row, or a card. */
const ESTIMATE_ROW_PX = 76;
const ESTIMATE_CARD_PX = 430;

const count = new Intl.NumberFormat();

/**
 * The app list for any number of apps. Every app the API reported is kept in a model keyed by
 * name; search, filters and sort pick and order the names shown; only the rows in view are in
 * the DOM (VirtualRows), each created once and updated in place while it stays in view, so a
 * live update touches its own row only, never moves the keyboard focus nor closes an expanded
 * error. A row scrolled out of view and back keeps both too: an expanded error is remembered by
 * app, and the focus of a row that leaves the DOM waits on the scroll container until the row
 * is drawn again (see #park). Changes that can move apps in or out of the list, or reorder it,
 * are folded into one pass per frame.
 */
export class AppList {
  /** @type {Map<string, AppView>} Every app, by name. */
  #apps = new Map();
  /** @type {Map<string, Row>} The rows drawn now, by app name. */
  #rows = new Map();
  /** @type {Set<string>} Apps with a Start/Stop request in flight. */
  #pending = new Set();
  /** @type {Map<string, string>} The message under an app's buttons (a refusal). */
  #messages = new Map();
  /** @type {Map<string, string>} The long errors expanded, by app: the text expanded (a new error shows closed). */
  #openErrors = new Map();
  /**
   * @type {{name: string, control: string} | undefined} The control that had the focus when its
   * row was scrolled out of the DOM: it gets it back when the row is drawn again, unless the
   * focus went elsewhere meanwhile.
   */
  #parked;
  #scroller;
  /** @type {string[] | undefined} Every app's name in sort order; undefined when it must be sorted again. */
  #sorted;
  /** @type {number | undefined} The animation frame of the next refresh. */
  #frame;
  #body;
  #table;
  #empty;
  #summary;
  #onOpen;
  #onAction;
  #filters;
  #rowsView;
  #cards = matchMedia(CARDS);
  /** @type {import('./replicas.js').ReplicaView[] | undefined} The last replicas polled. */
  #replicas;
  /** @type {Set<string>} This replica's drift, from the last replicas polled. */
  #drift = new Set();
  /** Whether the next rows drawn are the first of a new list: their time is marked for measuring. */
  #markDrawn = false;
  /** Whether the signed-in token may start and stop apps (its scope); the buttons are hidden if not. */
  #canAct = true;
  /** @type {(app: AppView) => boolean} */
  #needsAttention = (app) => needsAttention(app, this.#drift);
  /** @type {import('./traffic.js').TrafficFigures | undefined} The Requests/s column's figures. */
  #traffic;

  /**
   * @param {{
   *   body: HTMLElement, empty: HTMLElement, summary: HTMLElement,
   *   scroller: HTMLElement, tools: HTMLFormElement,
   *   onOpen: (name: string, opener: HTMLElement) => void,
   *   onAction: (name: string, action: 'start' | 'stop') => void,
   *   traffic?: import('./traffic.js').TrafficFigures,
   * }} options
   */
  constructor(options) {
    this.#traffic = options.traffic;
    this.#body = options.body;
    this.#empty = options.empty;
    this.#summary = options.summary;
    this.#onOpen = options.onOpen;
    this.#onAction = options.onAction;
    this.#table = /** @type {HTMLTableElement} */ (this.#body.closest('table'));
    this.#scroller = options.scroller;
    // Focusable from script only: where a scrolled-out row's focus waits (see #park).
    if (!this.#scroller.hasAttribute('tabindex')) this.#scroller.tabIndex = -1;
    keepTableRoles(this.#table);
    this.#filters = new FilterBar(options.tools, (sortChanged) => {
      if (sortChanged) this.#sorted = undefined;
      this.#refresh();
      this.#filters.announce(this.#countText());
    });
    this.#rowsView = new VirtualRows({
      scroller: options.scroller,
      body: this.#body,
      estimateSize: () => (this.#cards.matches ? ESTIMATE_CARD_PX : ESTIMATE_ROW_PX),
      render: (items) => this.#draw(items),
    });
    // Rows and cards differ in height: what was measured in one layout is wrong in the other.
    this.#cards.addEventListener('change', () => this.#rowsView.remeasure());
  }

  /** @param {string} name */
  get(name) {
    return this.#apps.get(name);
  }

  /**
   * The apps the list holds are exactly `apps` (the API's order does not matter: the list sorts).
   *
   * @param {AppView[]} apps
   */
  replaceAll(apps) {
    const keep = new Set();
    for (const app of apps) {
      keep.add(app.name);
      this.#apps.set(app.name, app);
    }
    for (const name of this.#apps.keys()) {
      if (!keep.has(name)) {
        this.#apps.delete(name);
        this.#pending.delete(name);
        this.#messages.delete(name);
        this.#openErrors.delete(name);
      }
    }
    this.#sorted = undefined;
    this.#markDrawn = true;
    this.#refresh();
  }

  /**
   * Adds or refreshes one app.
   *
   * @param {AppView} app
   */
  upsert(app) {
    const before = this.#apps.get(app.name);
    this.#apps.set(app.name, app);
    if (before === undefined || sortMoved(this.#filters.state.sort, before, app)) this.#sorted = undefined;
    const row = this.#rows.get(app.name);
    if (row !== undefined) this.#fill(row, app);
    this.#later();
  }

  /**
   * Applies a status change; false when the app is not known.
   *
   * @param {string} name
   * @param {string} status
   * @param {{code: string, message: string} | null} error
   */
  setStatus(name, status, error) {
    const app = this.#apps.get(name);
    if (app === undefined) return false;
    this.upsert({ ...app, status, error });
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
    if (pending) this.#pending.add(name);
    else this.#pending.delete(name);
    const row = this.#rows.get(name);
    if (row === undefined) return;
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
    if (text === '') this.#messages.delete(name);
    else this.#messages.set(name, text);
    const row = this.#rows.get(name);
    if (row !== undefined) row.message.textContent = text;
  }

  /**
   * The replicas as last polled: every row's count is taken from them from now on (the
   * snapshot's own counts until the first poll), and this replica's drift feeds the Attention view.
   *
   * @param {import('./replicas.js').ReplicaView[]} replicas
   */
  setReplicas(replicas) {
    this.#replicas = replicas;
    const drift = driftOf(replicas);
    const driftChanged = drift.size !== this.#drift.size || [...drift].some((name) => !this.#drift.has(name));
    this.#drift = drift;
    for (const row of this.#rows.values()) {
      this.#fillReplicas(row);
      this.#fillReasons(row);
    }
    if (driftChanged) this.#later();
  }

  /**
   * The app on each live replica.
   *
   * @param {AppView} app
   */
  replicasOf(app) {
    return this.#replicas === undefined ? (app.replicas ?? []) : statusesOn(app.name, this.#replicas);
  }

  /**
   * The apps listed now that `action` can do something for, in list order, and how many listed
   * apps it leaves alone (a Stop of an app already stopped).
   *
   * @param {'start' | 'stop'} action
   * @returns {{names: string[], skipped: number}}
   */
  targets(action) {
    this.#flush();
    const names = [];
    let skipped = 0;
    for (const name of this.#rowsView.keys) {
      const app = this.#apps.get(name);
      if (app !== undefined && actionsFor(app.status)[action]) names.push(name);
      else skipped++;
    }
    return { names, skipped };
  }

  /** Forgets every app (on sign-out nothing stays on the page). */
  clear() {
    this.#replicas = undefined;
    this.#drift = new Set();
    this.#apps.clear();
    this.#pending.clear();
    this.#messages.clear();
    this.#openErrors.clear();
    this.#parked = undefined;
    this.#sorted = undefined;
    this.#refresh();
  }

  /** A refresh at the next frame: a burst of events costs one. */
  #later() {
    if (this.#frame === undefined) this.#frame = requestAnimationFrame(() => this.#refresh());
  }

  /** A refresh due now (before the list is read). */
  #flush() {
    if (this.#frame !== undefined) this.#refresh();
  }

  /** Sorts if needed, filters, and shows the result and the counts. */
  #refresh() {
    if (this.#frame !== undefined) cancelAnimationFrame(this.#frame);
    this.#frame = undefined;
    const { state } = this.#filters;
    if (this.#sorted === undefined) {
      const compare = comparator(state.sort, state.desc);
      this.#sorted = [...this.#apps.values()].sort(compare).map((app) => app.name);
    }
    const test = matcher(state, this.#needsAttention);
    const shown = [];
    /** @type {Map<string, number>} */
    const statuses = new Map();
    let attention = 0;
    /** @type {Set<string>} */
    const applications = new Set();
    /** @type {Set<string>} */
    const codes = new Set();
    for (const name of this.#sorted) {
      const app = /** @type {AppView} */ (this.#apps.get(name));
      if (this.#needsAttention(app)) attention++;
      if (app.application) applications.add(app.application.name);
      if (app.error?.code) codes.add(app.error.code);
      if (!test(app)) continue;
      shown.push(name);
      statuses.set(app.status, (statuses.get(app.status) ?? 0) + 1);
    }
    const before = this.#rowsView.keys;
    if (shown.length !== before.length || shown.some((name, i) => before[i] !== name)) {
      this.#table.setAttribute('aria-rowcount', String(shown.length + 1));
      this.#rowsView.setKeys(shown);
    } else {
      // Same apps in the same order: only rows whose app changed are filled again.
      this.#rowsView.draw();
    }
    this.#filters.setFacets(applications, codes);
    this.#filters.setAttentionCount(attention);
    this.#filters.setNoMatch(this.#apps.size > 0 && shown.length === 0);
    this.#empty.hidden = this.#apps.size !== 0;
    const parts = [...statuses].map(([status, n]) => `${count.format(n)} ${status}`);
    const text =
      this.#apps.size === 0 ? '' : `${this.#countText()}${parts.length > 0 ? `: ${parts.join(', ')}` : ''}`;
    if (this.#summary.textContent !== text) this.#summary.textContent = text;
  }

  /** `37 of 10,000 apps` while filtered, `10,000 apps` otherwise. */
  #countText() {
    const total = this.#apps.size;
    const noun = `app${total === 1 ? '' : 's'}`;
    if (!isFiltered(this.#filters.state)) return `${count.format(total)} ${noun}`;
    return `${count.format(this.#rowsView.keys.length)} of ${count.format(total)} ${noun}`;
  }

  /**
   * Puts the rows of `items` in the body, in order: rows already drawn are kept (filled again
   * only if their app changed), the others made; rows out of view are removed.
   *
   * @param {import('./virtual-list.js').VirtualItem[]} items
   * @returns {HTMLElement[]}
   */
  #draw(items) {
    const keys = this.#rowsView.keys;
    const names = items.map((item) => /** @type {string} */ (keys[item.index]));
    const wanted = new Set(names);
    for (const [name, row] of this.#rows) {
      if (!wanted.has(name)) {
        this.#park(row);
        row.spark?.destroy();
        row.tr.remove();
        this.#rows.delete(name);
      }
    }
    // The focus went elsewhere since its row left: nothing waits for the row any more.
    if (this.#parked !== undefined && document.activeElement !== this.#scroller) this.#parked = undefined;
    /** @type {HTMLElement[]} */
    const drawn = [];
    /** @type {HTMLElement | null} */
    let previous = null;
    names.forEach((name, i) => {
      const app = /** @type {AppView} */ (this.#apps.get(name));
      let row = this.#rows.get(name);
      let created = false;
      if (row === undefined) {
        row = this.#create(app);
        this.#rows.set(name, row);
        this.#fill(row, app);
        created = true;
      } else if (row.app !== app) this.#fill(row, app);
      this.#fillReasons(row);
      const rowIndex = String(/** @type {import('./virtual-list.js').VirtualItem} */ (items[i]).index + 2);
      if (row.tr.getAttribute('aria-rowindex') !== rowIndex) row.tr.setAttribute('aria-rowindex', rowIndex);
      const expected = previous === null ? this.#body.firstElementChild : previous.nextElementSibling;
      if (expected !== row.tr) this.#body.insertBefore(row.tr, expected);
      previous = row.tr;
      drawn.push(row.tr);
      if (created && this.#parked?.name === name) this.#unpark(row);
    });
    this.#traffic?.inView(names);
    if (this.#markDrawn && drawn.length > 0) {
      this.#markDrawn = false;
      performance.mark('appvisor:apps-drawn', { detail: { apps: this.#apps.size, rows: drawn.length } });
    }
    return drawn;
  }

  /**
   * A row about to leave the DOM (scrolled out of the window) that holds the focus: removing it
   * would drop the focus on the page's body, and the next Tab would start from the top of the
   * page. The focus moves to the scroll container instead (so Tab goes on with the rows in view),
   * and which control had it is remembered for when the row comes back.
   *
   * @param {Row} row
   */
  #park(row) {
    const focused = document.activeElement;
    if (!(focused instanceof HTMLElement) || !row.tr.contains(focused)) return;
    this.#parked = { name: row.app.name, control: controlOf(row, focused) };
    this.#scroller.focus({ preventScroll: true });
  }

  /**
   * The row whose focus waited on the scroll container is drawn again: the same control gets it
   * back (the row is in view, so nothing scrolls).
   *
   * @param {Row} row
   */
  #unpark(row) {
    const parked = /** @type {{name: string, control: string}} */ (this.#parked);
    this.#parked = undefined;
    const target = row.tr.querySelector(parked.control);
    if (target instanceof HTMLElement) target.focus({ preventScroll: true });
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
    // Why the Attention view lists it, under its names (empty in the other views).
    const reasons = h('ul', { class: 'plain attention-reasons' });
    // The application it runs, under its names: the table stays as wide as it was.
    cells.name.append(
      open,
      h('span', { class: 'display-name' }),
      h('span', { class: 'app-application' }),
      reasons,
    );

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
    const message = h('p', { class: 'row-message', role: 'status' }, this.#messages.get(name) ?? '');
    cells.actions.append(h('div', { class: 'actions' }, start, stop, visit), message);
    if (this.#pending.has(name)) tr.setAttribute('aria-busy', '');
    return { app, tr, cells, start, stop, visit, message, reasons };
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
    setText(displayName, app.displayName && app.displayName !== app.name ? app.displayName : '');
    if (fresh || before.status !== app.status || before.statusReason !== app.statusReason)
      replace(cells.status, badge(app.status, app.statusReason), h('span', { class: 'replica-count' }));
    this.#fillReplicas(row);
    if (fresh) this.#fillTraffic(row);
    // Where it runs, beside how it starts: a worker or process app is marked, a shared one is not.
    const isolated = app.isolation && app.isolation.mode !== 'shared' ? ` · ${app.isolation.mode}` : '';
    setText(cells.startMode, app.startMode + (app.enabled ? '' : ' (disabled)') + isolated);
    const application = /** @type {HTMLElement} */ (cells.name.querySelector('.app-application'));
    setText(application, app.application ? formatApplication(app) : '');
    if (fresh || before.database !== app.database)
      replace(
        cells.database,
        h('span', { class: 'db-mode' }, app.database.mode),
        h('span', { class: 'db-target' }, formatTarget(app.database)),
      );
    if (fresh || before.domains !== app.domains)
      replace(
        cells.domains,
        app.domains.length === 0
          ? NONE
          : h('ul', { class: 'plain' }, ...app.domains.map((d) => h('li', {}, d))),
      );
    setText(cells.secret, app.jwt.secret);
    const errorText = [formatError(app.error), formatNotice(app)].filter(Boolean).join(' · ');
    const beforeText = [formatError(before.error), formatNotice(before)].filter(Boolean).join(' · ');
    if (fresh || beforeText !== errorText) {
      const cell = errorCell(errorText, this.#openErrors.get(app.name) === errorText);
      if (cell instanceof HTMLDetailsElement) {
        cell.addEventListener('toggle', () => {
          if (cell.open) this.#openErrors.set(app.name, errorText);
          else this.#openErrors.delete(app.name);
        });
      }
      replace(cells.error, cell);
    }
    if (fresh || before.lastReconciledAt !== app.lastReconciledAt)
      replace(cells.reconciled, timeElement(app.lastReconciledAt, 'never'));
    const href = visitHref(app, location);
    if (row.visit.getAttribute('href') !== href) row.visit.setAttribute('href', href);
    this.#fillActions(row);
  }

  /**
   * The Requests/s cells of `names` that are drawn, from the figures that just came in.
   *
   * @param {string[]} names
   */
  showTraffic(names) {
    for (const name of names) {
      const row = this.#rows.get(name);
      if (row !== undefined) this.#fillTraffic(row);
    }
  }

  /**
   * A row's last hour of requests/s as a small chart, with the latest value as text beside it
   * (nothing until its figures came in).
   *
   * @param {Row} row
   */
  #fillTraffic(row) {
    const traffic = this.#traffic?.get(row.app.name);
    if (traffic === undefined) return;
    const latest = formatFigure(traffic.rps[traffic.rps.length - 1] ?? 0);
    if (row.spark === undefined) {
      const now = h('span', { class: 'traffic-now' });
      row.cells.traffic.replaceChildren(now);
      row.spark = sparkline(row.cells.traffic, traffic.rps, {
        label: `${row.app.name} requests per second over the last hour`,
        width: 72,
      });
    } else row.spark.update(traffic.rps);
    setText(/** @type {HTMLElement} */ (row.cells.traffic.querySelector('.traffic-now')), latest);
  }

  /** @param {Row} row */
  #fillReplicas(row) {
    const replicas = /** @type {HTMLElement} */ (row.cells.status.querySelector('.replica-count'));
    setText(replicas, runningCount(this.replicasOf(row.app)));
  }

  /** @param {Row} row */
  #fillReasons(row) {
    const reasons = this.#filters.state.view === 'attention' ? attentionReasons(row.app, this.#drift) : [];
    const text = reasons.join('\n');
    if (row.reasons.dataset.text === text) return;
    row.reasons.dataset.text = text;
    replace(
      row.reasons,
      reasons.map((reason) => h('li', {}, reason)),
    );
  }

  /** @param {Row} row */
  #fillActions(row) {
    const allowed = actionsFor(row.app.status);
    const pending = this.#pending.has(row.app.name);
    setInert(row.start, pending || !allowed.start);
    setInert(row.stop, pending || !allowed.stop);
    if (row.start.hidden !== !this.#canAct) row.start.hidden = !this.#canAct;
    if (row.stop.hidden !== !this.#canAct) row.stop.hidden = !this.#canAct;
  }
}

/**
 * Sets a text only when it differs (an unchanged row sees no DOM change at all).
 *
 * @param {HTMLElement} el
 * @param {string} text
 */
function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

/**
 * An error: short ones as text, long ones cut with the full text one click away.
 *
 * @param {string} text
 * @param {boolean} open whether a long one shows expanded
 */
function errorCell(text, open) {
  if (text === '') return NONE;
  if (text.length <= ERROR_PREVIEW) return h('span', { class: 'error-text' }, text);
  return h(
    'details',
    { class: 'error-more', open },
    h('summary', { class: 'error-text' }, truncate(text, ERROR_PREVIEW)),
    h('p', { class: 'error-full' }, text),
  );
}

/**
 * A selector that finds `control` again in a new row of the same app: each control of a row has
 * a class of its own (the error's summary has none, and is the only summary).
 *
 * @param {Row} row
 * @param {HTMLElement} control
 */
function controlOf(row, control) {
  if (control === row.start) return '.action-start';
  if (control === row.stop) return '.action-stop';
  if (control === row.visit) return '.action-visit';
  if (control.closest('summary') !== null) return 'summary';
  return '.app-name';
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
 * The header row is row 1 of `aria-rowcount`: with only the rows in view in the DOM, each row
 * says where it is in the whole list (`aria-rowindex`).
 *
 * @param {HTMLTableElement | null} table
 */
function keepTableRoles(table) {
  if (table === null) return;
  table.setAttribute('role', 'table');
  for (const group of table.querySelectorAll('thead, tbody')) group.setAttribute('role', 'rowgroup');
  for (const tr of table.querySelectorAll('thead tr')) {
    tr.setAttribute('role', 'row');
    tr.setAttribute('aria-rowindex', '1');
  }
  for (const th of table.querySelectorAll('thead th')) th.setAttribute('role', 'columnheader');
}

/**
 * @param {HTMLElement} button
 * @param {boolean} inert
 */
function setInert(button, inert) {
  if (inert) {
    if (button.getAttribute('aria-disabled') !== 'true') button.setAttribute('aria-disabled', 'true');
  } else button.removeAttribute('aria-disabled');
}
