import { byId, h } from './dom.js';
import { DEFAULT_STATE, parseHash, toHash } from './filters.js';
import { STATUS_TONE } from './status.js';

/** @typedef {import('./filters.js').ListState} ListState */

const count = new Intl.NumberFormat();

/** How long the search box waits for the typing to pause. */
const SEARCH_DEBOUNCE_MS = 150;

/**
 * The controls above the app list: the view (all apps or the ones needing attention), the
 * search box, the filters and the sort. Their state is kept in the URL hash (replaced, not
 * pushed: Back leaves the page rather than undoing a filter), and a hash pasted or edited by
 * hand is applied.
 */
export class FilterBar {
  /** @type {ListState} */
  #state;
  #onChange;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #typing;
  #search = /** @type {HTMLInputElement} */ (byId('apps-search'));
  #selects = {
    status: /** @type {HTMLSelectElement} */ (byId('filter-status')),
    mode: /** @type {HTMLSelectElement} */ (byId('filter-mode')),
    dialect: /** @type {HTMLSelectElement} */ (byId('filter-dialect')),
    application: /** @type {HTMLSelectElement} */ (byId('filter-application')),
    error: /** @type {HTMLSelectElement} */ (byId('filter-error')),
    sort: /** @type {HTMLSelectElement} */ (byId('apps-sort')),
  };
  #desc = byId('apps-sort-desc');
  #views = { all: byId('view-all'), attention: byId('view-attention') };
  #matches = byId('apps-matches');
  #noMatch = byId('apps-no-match');
  /** The dynamic options last built, so they are built again only when they change. */
  /** @type {Record<'application' | 'error', string | null>} */
  #facets = { application: null, error: null };

  /**
   * @param {HTMLFormElement} form
   * @param {(sortChanged: boolean) => void} onChange called after the state changed
   */
  constructor(form, onChange) {
    this.#onChange = onChange;
    this.#state = parseHash(location.hash);
    for (const status of Object.keys(STATUS_TONE)) {
      this.#selects.status.append(h('option', { value: status }, status));
    }
    this.setFacets(new Set(), new Set());
    this.#show();

    form.addEventListener('submit', (event) => {
      // Enter in the search box: no waiting for the pause.
      event.preventDefault();
      this.#applySearch();
    });
    this.#search.addEventListener('input', () => {
      clearTimeout(this.#typing);
      this.#typing = setTimeout(() => this.#applySearch(), SEARCH_DEBOUNCE_MS);
    });
    for (const [field, select] of Object.entries(this.#selects)) {
      select.addEventListener('change', () => this.#set({ [field]: select.value }));
    }
    this.#desc.addEventListener('click', () => this.#set({ desc: !this.#state.desc }));
    for (const [view, button] of Object.entries(this.#views)) {
      button.addEventListener('click', () => this.#set({ view: /** @type {ListState['view']} */ (view) }));
    }
    byId('filters-clear').addEventListener('click', () => {
      this.#set({ ...DEFAULT_STATE, sort: this.#state.sort, desc: this.#state.desc });
      this.#search.focus();
    });
    window.addEventListener('hashchange', () => {
      const next = parseHash(location.hash);
      if (toHash(next) !== toHash(this.#state)) this.#set(next);
    });
  }

  /** @returns {Readonly<ListState>} */
  get state() {
    return this.#state;
  }

  /**
   * The applications and error codes the apps have, offered in their filters (and the one the
   * URL asks for, even while no app has it).
   *
   * @param {Set<string>} applications
   * @param {Set<string>} codes
   */
  setFacets(applications, codes) {
    this.#options('application', applications, [['', 'Any']]);
    this.#options('error', codes, [
      ['', 'Any'],
      ['any', 'Has an error'],
      ['none', 'No error'],
    ]);
  }

  /** @param {number} n apps that need attention */
  setAttentionCount(n) {
    const text = `Needs attention (${count.format(n)})`;
    if (this.#views.attention.textContent !== text) this.#views.attention.textContent = text;
  }

  /** @param {boolean} none whether the filters leave no app */
  setNoMatch(none) {
    if (this.#noMatch.hidden === none) this.#noMatch.hidden = !none;
  }

  /**
   * Tells assistive technology how many apps a change of the filters left.
   *
   * @param {string} text
   */
  announce(text) {
    this.#matches.textContent = text;
  }

  #applySearch() {
    clearTimeout(this.#typing);
    this.#set({ q: this.#search.value.trim() });
  }

  /** @param {Partial<ListState>} patch */
  #set(patch) {
    const before = this.#state;
    // Words typed but not applied yet are kept (and applied) when another control changes.
    clearTimeout(this.#typing);
    const next = { ...before, q: this.#search.value.trim(), ...patch };
    if (toHash(next) === toHash(before)) return;
    this.#state = next;
    const hash = toHash(next);
    history.replaceState(history.state, '', hash === '' ? `${location.pathname}${location.search}` : hash);
    this.#show();
    this.#onChange(before.sort !== next.sort || before.desc !== next.desc);
  }

  /** The controls as the state says (after a hash change, or a Clear). */
  #show() {
    const state = this.#state;
    if (this.#search.value.trim() !== state.q) this.#search.value = state.q;
    for (const [field, select] of Object.entries(this.#selects)) {
      const value = String(state[/** @type {keyof ListState} */ (field)]);
      // A value from a link that no option has yet (an application no app runs): offered anyway.
      if (![...select.options].some((o) => o.value === value)) select.append(h('option', { value }, value));
      select.value = value;
    }
    this.#desc.setAttribute('aria-pressed', String(state.desc));
    for (const [view, button] of Object.entries(this.#views)) {
      button.setAttribute('aria-pressed', String(state.view === view));
    }
  }

  /**
   * Rebuilds a dynamic select's options: the fixed ones, then `values` sorted.
   *
   * @param {'application' | 'error'} field
   * @param {Set<string>} values
   * @param {[string, string][]} fixed
   */
  #options(field, values, fixed) {
    const wanted = String(this.#state[field]);
    const all = [...values];
    if (wanted !== '' && !fixed.some(([value]) => value === wanted) && !values.has(wanted)) all.push(wanted);
    all.sort();
    const key = all.join('\n');
    if (this.#facets[field] === key) return;
    this.#facets[field] = key;
    const select = this.#selects[field];
    select.replaceChildren(
      ...fixed.map(([value, label]) => h('option', { value }, label)),
      ...all.map((value) => h('option', { value }, value)),
    );
    select.value = wanted;
  }
}
