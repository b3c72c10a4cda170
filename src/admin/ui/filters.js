/**
 * What the app list shows: the search words, the filters, the sort and the view, as one state
 * that round-trips through the URL hash (`#q=shop&status=error&sort=reconciled`), so a reload or
 * a shared link shows the same apps. Pure functions, no DOM.
 */
import { toneOf } from './status.js';

/**
 * @typedef {import('./apps.js').AppView} AppView
 * @typedef {'name' | 'status' | 'reconciled' | 'error'} SortKey
 * @typedef {{
 *   q: string, status: string, mode: string, dialect: string, application: string, error: string,
 *   sort: SortKey, desc: boolean, view: 'all' | 'attention',
 * }} ListState
 */

/** The keys of the sort menu, in its order. */
export const SORT_KEYS = /** @type {const} */ (['name', 'status', 'reconciled', 'error']);

/** The error filter's two values that are not an error code. */
export const HAS_ERROR = 'any';
export const NO_ERROR = 'none';

/** The dialect filter's value for apps on the main database's dialect (`dialect: null`). */
export const MAIN_DIALECT = 'main';

/** @type {Readonly<ListState>} */
export const DEFAULT_STATE = Object.freeze({
  q: '',
  status: '',
  mode: '',
  dialect: '',
  application: '',
  error: '',
  sort: 'name',
  desc: false,
  view: 'all',
});

/** The hash parameter of each field (short, since people paste these links). */
const PARAMS = /** @type {const} */ ({
  q: 'q',
  status: 'status',
  mode: 'mode',
  dialect: 'dialect',
  application: 'app',
  error: 'error',
  sort: 'sort',
  desc: 'desc',
  view: 'view',
});

/**
 * The state a URL hash asks for; anything it does not say (or says wrongly) is the default.
 *
 * @param {string} hash `location.hash`, with or without the `#`
 * @returns {ListState}
 */
export function parseHash(hash) {
  const params = new URLSearchParams(hash.replace(/^#/, ''));
  const text = (/** @type {string} */ key) => (params.get(key) ?? '').trim();
  const sort = text(PARAMS.sort);
  return {
    q: text(PARAMS.q),
    status: text(PARAMS.status),
    mode: text(PARAMS.mode),
    dialect: text(PARAMS.dialect),
    application: text(PARAMS.application),
    error: text(PARAMS.error),
    sort: /** @type {readonly string[]} */ (SORT_KEYS).includes(sort)
      ? /** @type {SortKey} */ (sort)
      : 'name',
    desc: text(PARAMS.desc) === '1',
    view: text(PARAMS.view) === 'attention' ? 'attention' : 'all',
  };
}

/**
 * The hash for `state`: only what differs from the default, so the unfiltered list has none.
 *
 * @param {ListState} state
 * @returns {string} `#…`, or `''`
 */
export function toHash(state) {
  const params = new URLSearchParams();
  for (const [field, param] of Object.entries(PARAMS)) {
    const value = state[/** @type {keyof ListState} */ (field)];
    if (value === DEFAULT_STATE[/** @type {keyof ListState} */ (field)]) continue;
    params.set(param, value === true ? '1' : String(value));
  }
  const text = params.toString();
  return text === '' ? '' : `#${text}`;
}

/** Whether `state` narrows the list at all (the sort does not). */
export function isFiltered(/** @type {ListState} */ state) {
  return (
    state.q !== '' ||
    state.status !== '' ||
    state.mode !== '' ||
    state.dialect !== '' ||
    state.application !== '' ||
    state.error !== '' ||
    state.view !== 'all'
  );
}

/** The lower-cased text the search box looks through, per app object (they are immutable). */
const haystacks = new WeakMap();

/** @param {AppView} app */
function haystack(app) {
  let text = haystacks.get(app);
  if (text === undefined) {
    text = [app.name, app.displayName ?? '', ...(app.domains ?? [])].join('\n').toLowerCase();
    haystacks.set(app, text);
  }
  return text;
}

/**
 * The test an app must pass to be listed: every search word in its name, display name or a
 * domain (case-insensitive, anywhere in them), and every filter that is set.
 *
 * @param {ListState} state
 * @param {(app: AppView) => boolean} needsAttention the Attention view's test
 * @returns {(app: AppView) => boolean}
 */
export function matcher(state, needsAttention) {
  const words = state.q.toLowerCase().split(/\s+/).filter(Boolean);
  return (app) => {
    if (state.status !== '' && app.status !== state.status) return false;
    if (state.mode !== '' && app.startMode !== state.mode) return false;
    if (state.dialect !== '' && (app.database.dialect ?? MAIN_DIALECT) !== state.dialect) return false;
    if (state.application !== '' && app.application?.name !== state.application) return false;
    if (state.error !== '' && !errorMatches(app.error, state.error)) return false;
    if (state.view === 'attention' && !needsAttention(app)) return false;
    if (words.length > 0) {
      const text = haystack(app);
      for (const word of words) if (!text.includes(word)) return false;
    }
    return true;
  };
}

/**
 * @param {AppView['error']} error
 * @param {string} wanted `any`, `none` or an error code
 */
function errorMatches(error, wanted) {
  if (wanted === HAS_ERROR) return error !== null;
  if (wanted === NO_ERROR) return error === null;
  return error?.code === wanted;
}

/** Status families in the order the status sort shows them: what needs a look first. */
const TONE_ORDER = { bad: 0, busy: 1, ok: 2, idle: 3 };

/** App names are `[a-z][a-z0-9_-]*` (SPEC §2): plain code-unit order is their alphabetical order. */
const byName = (/** @type {AppView} */ a, /** @type {AppView} */ b) =>
  a.name < b.name ? -1 : a.name > b.name ? 1 : 0;

/** @type {Record<SortKey, (a: AppView, b: AppView) => number>} */
const COMPARE = {
  name: byName,
  status: (a, b) =>
    TONE_ORDER[toneOf(a.status)] - TONE_ORDER[toneOf(b.status)] ||
    (a.status < b.status ? -1 : a.status > b.status ? 1 : 0) ||
    byName(a, b),
  // Newest first; never reconciled last.
  reconciled: (a, b) => {
    const ta = a.lastReconciledAt ? Date.parse(a.lastReconciledAt) : Number.NEGATIVE_INFINITY;
    const tb = b.lastReconciledAt ? Date.parse(b.lastReconciledAt) : Number.NEGATIVE_INFINITY;
    return tb > ta ? 1 : tb < ta ? -1 : byName(a, b);
  },
  // Apps with an error first, grouped by code.
  error: (a, b) => {
    if ((a.error === null) !== (b.error === null)) return a.error === null ? 1 : -1;
    const ca = a.error?.code ?? '';
    const cb = b.error?.code ?? '';
    return ca < cb ? -1 : ca > cb ? 1 : byName(a, b);
  },
};

/**
 * The comparator of a sort key, reversed when `desc`.
 *
 * @param {SortKey} key
 * @param {boolean} desc
 */
export function comparator(key, desc) {
  const compare = COMPARE[key];
  return desc ? (/** @type {AppView} */ a, /** @type {AppView} */ b) => compare(b, a) : compare;
}

/**
 * Whether a change from `before` to `after` can move the app in a list sorted by `key`.
 *
 * @param {SortKey} key
 * @param {AppView} before
 * @param {AppView} after
 */
export function sortMoved(key, before, after) {
  if (key === 'status') return before.status !== after.status;
  if (key === 'reconciled') return before.lastReconciledAt !== after.lastReconciledAt;
  if (key === 'error') return (before.error?.code ?? null) !== (after.error?.code ?? null);
  return false;
}
