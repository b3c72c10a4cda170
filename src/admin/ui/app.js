/**
 * The admin UI's entry point: sign-in, the app list with live updates, the detail view and the
 * plan view. Everything comes from the admin API with the token in the Authorization header.
 */
import { ApiError, apiDownload, apiRequest, appPath } from './api.js';
import { AppList } from './apps.js';
import { BulkActions } from './bulk.js';
import { DetailView } from './detail.js';
import { byId, tabKeyTarget } from './dom.js';
import { LiveEvents } from './live.js';
import { renderPlan } from './plan.js';
import { ReplicaPanel } from './replicas.js';
import { clearToken, loadToken, saveToken } from './session.js';
import { TokensPanel } from './tokens.js';
import { TrafficFigures } from './traffic.js';

/** @typedef {import('./apps.js').AppView} AppView */

const ui = {
  signin: byId('signin'),
  form: /** @type {HTMLFormElement} */ (byId('signin-form')),
  tokenInput: /** @type {HTMLInputElement} */ (byId('token')),
  signinMessage: byId('signin-message'),
  console: byId('console'),
  session: byId('session'),
  connection: byId('connection'),
  whoami: byId('whoami'),
  tokensTab: byId('tab-tokens'),
  signOut: byId('sign-out'),
  announcer: byId('announcer'),
  appsTitle: byId('apps-title'),
  tabs: [byId('tab-apps'), byId('tab-plan'), byId('tab-tokens')],
  planRefresh: byId('plan-refresh'),
  planState: byId('plan-state'),
  planBody: byId('plan-body'),
};

let token = '';
/** @type {LiveEvents | undefined} */
let live;
/** Status changes seen per app, so a late Start/Stop answer does not undo a newer event. */
const changes = new Map();
/** Names the API does not list (the main app, reserved by SPEC §3; or a 404), not asked for again. */
const unlisted = new Set(['main']);
/** Counts sign-ins and sign-outs: an answer from an earlier session is dropped. */
let session = 0;
let signingIn = false;
let planLoads = 0;
let planLoaded = false;
/** The signed-in token's scope (from whoami); undefined until it answered. */
let scope;

/** Scopes from least to most, as the API ranks them. */
const SCOPE_RANK = { read: 0, operate: 1, admin: 2 };

const traffic = new TrafficFigures({
  load: (names) => call('GET', `figures?apps=${names.map(encodeURIComponent).join(',')}`),
  onChange: (names) => list.showTraffic(names),
});

const list = new AppList({
  body: byId('apps-body'),
  empty: byId('apps-empty'),
  summary: byId('apps-summary'),
  scroller: byId('apps-scroll'),
  tools: /** @type {HTMLFormElement} */ (byId('apps-tools')),
  onOpen: openDetail,
  onAction: act,
  traffic,
});

const bulk = new BulkActions({
  start: byId('bulk-start'),
  stop: byId('bulk-stop'),
  targets: (action) => list.targets(action),
  perform: sendMany,
});

const detail = new DetailView({
  dialog: /** @type {HTMLDialogElement} */ (byId('detail')),
  title: byId('detail-title'),
  body: byId('detail-body'),
  close: byId('detail-close'),
  replicasOf: (app) => list.replicasOf(app),
  rotate: (name) => call('POST', appPath(name, 'rotate-secret')),
  backup: (name) => download(appPath(name, 'backup')),
  allows: (needs) => allows(needs),
  loadFigures: (name) => call('GET', appPath(name, 'figures')),
  token: () => token,
});

const tokens = new TokensPanel({
  body: byId('tokens-body'),
  state: byId('tokens-state'),
  form: /** @type {HTMLFormElement} */ (byId('token-form')),
  name: /** @type {HTMLInputElement} */ (byId('token-name')),
  scope: /** @type {HTMLSelectElement} */ (byId('token-scope')),
  created: byId('token-created'),
  call: (method, path, body) => call(method, path, body),
});

const replicaPanel = new ReplicaPanel({ body: byId('replicas-body'), summary: byId('replicas-summary') });
/** How often the replicas are asked for: their heartbeats come every 2 s. */
const REPLICA_POLL_MS = 2000;
/** @type {ReturnType<typeof setTimeout> | undefined} */
let replicaPoll;

/**
 * Asks for the replicas now and then every REPLICA_POLL_MS while the session lasts: other
 * replicas' statuses reach this page only this way (the event stream is this replica's).
 */
async function pollReplicas() {
  const asked = session;
  try {
    const replicas = await call('GET', 'replicas');
    if (asked !== session || !Array.isArray(replicas)) return;
    replicaPanel.render(replicas);
    list.setReplicas(replicas);
    if (detail.name !== undefined) {
      const shown = list.get(detail.name);
      if (shown !== undefined) detail.update(shown);
    }
  } catch {
    // The next poll tries again; the connection badge tells of a server gone.
  } finally {
    if (asked === session) replicaPoll = setTimeout(pollReplicas, REPLICA_POLL_MS);
  }
}

/**
 * An API call with the session's token; a 401 ends the session.
 *
 * @param {'GET' | 'POST' | 'DELETE'} method
 * @param {string} path
 * @param {unknown} [body]
 */
async function call(method, path, body) {
  try {
    return await apiRequest(token, method, path, body);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) expire();
    throw err;
  }
}

/**
 * A file from the API (a backup), signing out on 401 as {@link call} does.
 *
 * @param {string} path
 */
async function download(path) {
  try {
    return await apiDownload(token, path);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) expire();
    throw err;
  }
}

/** @param {string} text */
function announce(text) {
  ui.announcer.textContent = text;
}

/** @param {string} text */
function showSigninMessage(text) {
  ui.signinMessage.textContent = text;
}

/**
 * Shows the console for the signed-in session and opens the live feed.
 *
 * @param {AppView[] | undefined} apps
 */
function enter(apps) {
  session++;
  ui.signin.hidden = true;
  ui.console.hidden = false;
  ui.session.hidden = false;
  showSigninMessage('');
  if (apps !== undefined) list.replaceAll(apps);
  live?.stop();
  live = new LiveEvents({
    token,
    onEvent,
    onState: showConnection,
    onUnauthorized: expire,
  });
  live.start();
  traffic.start();
  clearTimeout(replicaPoll);
  void pollReplicas();
  void loadWhoami();
}

/**
 * Asks whose token this is and shows only what its scope allows: a `read` token gets no
 * Start/Stop buttons, only an `admin` token the Tokens view. Until it answers (or on a server
 * without whoami) the buttons stay as they are and the server's 403 is the word.
 */
async function loadWhoami() {
  const asked = session;
  try {
    const me = await call('GET', 'whoami');
    if (asked !== session || typeof me?.scope !== 'string') return;
    applyScope(me.name, me.scope);
  } catch {
    // The buttons stay; a refused action says why.
  }
}

/**
 * @param {string} name
 * @param {string} given
 */
function applyScope(name, given) {
  scope = given;
  document.body.dataset.scope = given;
  ui.whoami.textContent = `Token ${name} (${given})`;
  list.setCanAct(allows('operate'));
  bulk.setAllowed(allows('operate'));
  ui.tokensTab.hidden = !allows('admin');
}

/** @param {'read' | 'operate' | 'admin'} needs */
function allows(needs) {
  return scope !== undefined && (SCOPE_RANK[scope] ?? -1) >= SCOPE_RANK[needs];
}

/**
 * Back to the sign-in form, forgetting the token and everything the API said.
 *
 * @param {string} message
 */
function leave(message) {
  session++;
  live?.stop();
  live = undefined;
  traffic.stop();
  clearTimeout(replicaPoll);
  replicaPanel.clear();
  token = '';
  clearToken();
  changes.clear();
  detail.close();
  list.clear();
  bulk.reset();
  planLoads++;
  planLoaded = false;
  ui.planBody.replaceChildren();
  ui.planState.textContent = '';
  scope = undefined;
  delete document.body.dataset.scope;
  ui.whoami.textContent = '';
  ui.tokensTab.hidden = true;
  tokens.clear();
  list.setCanAct(true);
  selectTab(ui.tabs[0], false);
  ui.console.hidden = true;
  ui.session.hidden = true;
  ui.signin.hidden = false;
  showSigninMessage(message);
  ui.tokenInput.focus();
}

function expire() {
  if (token === '') return;
  leave('The server did not accept the admin token (401): sign in again.');
}

/** @param {import('./sse.js').SseEvent} event */
function onEvent(event) {
  let data;
  try {
    data = JSON.parse(event.data);
  } catch {
    return; // A frame we cannot read is skipped; the next snapshot resyncs.
  }
  if (event.type === 'snapshot' && Array.isArray(data)) {
    for (const app of data) {
      changes.set(app.name, (changes.get(app.name) ?? 0) + 1);
      unlisted.delete(app.name);
    }
    list.replaceAll(data);
    if (detail.name !== undefined) {
      const shown = list.get(detail.name);
      if (shown !== undefined) detail.update(shown);
    }
  } else if (event.type === 'status' && data !== null && typeof data.app === 'string') {
    onStatus(data);
  }
}

/** @param {{app: string, status: string, previous: string | null, error: AppView['error']}} event */
function onStatus({ app: name, status, error }) {
  changes.set(name, (changes.get(name) ?? 0) + 1);
  const text = error ? `${name} is now ${status}: ${error.message}` : `${name} is now ${status}`;
  if (list.setStatus(name, status, error ?? null)) {
    const app = list.get(name);
    if (app !== undefined) detail.update(app);
    announce(text);
  } else if (!unlisted.has(name)) {
    // An app this page has not seen yet (added since the snapshot): fetch it once.
    unlisted.add(name);
    const asked = session;
    call('GET', appPath(name)).then(
      (app) => {
        if (asked !== session) return;
        unlisted.delete(name);
        list.upsert(app);
        announce(text);
      },
      () => undefined,
    );
  }
}

/**
 * @param {import('./live.js').LiveState} state
 * @param {number} [retryInMs]
 */
function showConnection(state, retryInMs) {
  const text = {
    connecting: 'Connecting…',
    live: 'Live',
    waiting: `Disconnected: retrying in ${Math.max(1, Math.round((retryInMs ?? 0) / 1000))} s`,
    stopped: '',
  }[state];
  ui.connection.textContent = text;
  ui.connection.dataset.state = state;
}

/**
 * @param {string} name
 * @param {'start' | 'stop'} action
 */
async function act(name, action) {
  const asked = session;
  list.setPending(name, true);
  list.setMessage(name, '');
  try {
    await send(name, action);
  } catch (err) {
    if (asked !== session || (err instanceof ApiError && err.status === 401)) return;
    const verb = action === 'start' ? 'Start' : 'Stop';
    const message = `${verb} refused: ${err instanceof Error ? err.message : String(err)}`;
    list.setMessage(name, message);
    announce(`${name}: ${message}`);
  } finally {
    if (asked === session) list.setPending(name, false);
  }
}

/**
 * Sends a Start or Stop and shows the app as the server answered, unless a newer status event
 * came in meanwhile; rejects with the server's refusal.
 *
 * @param {string} name
 * @param {'start' | 'stop'} action
 */
async function send(name, action) {
  const seen = changes.get(name) ?? 0;
  const asked = session;
  const app = await call('POST', appPath(name, action));
  if (asked !== session) return;
  if ((changes.get(name) ?? 0) === seen && app?.name === name) {
    list.upsert(app);
    detail.update(app);
  }
}

/**
 * One batch of a bulk start or stop: the apps' new states come as status events, as anyone's do.
 *
 * @param {string[]} names
 * @param {'start' | 'stop'} action
 * @returns {Promise<{refused: [string, string][]}>}
 */
async function sendMany(names, action) {
  const answer = await call('POST', `bulk/${action}`, { apps: names });
  /** @type {{app: string, error: {message: string}}[]} */
  const refused = Array.isArray(answer?.refused) ? answer.refused : [];
  return { refused: refused.map((r) => [r.app, r.error.message]) };
}

/**
 * @param {string} name
 * @param {HTMLElement} opener
 */
function openDetail(name, opener) {
  const app = list.get(name);
  if (app === undefined) return;
  detail.open(app, opener, () => call('GET', appPath(name, 'history')));
}

async function loadPlan() {
  const load = ++planLoads;
  ui.planRefresh.setAttribute('aria-disabled', 'true');
  ui.planState.textContent = 'Loading the plan…';
  try {
    const plan = await call('GET', 'plan');
    if (load !== planLoads) return;
    renderPlan(ui.planBody, plan);
    planLoaded = true;
    const time = new Date().toLocaleTimeString();
    const counts = `${plan.changes.length} change${plan.changes.length === 1 ? '' : 's'}, ${plan.errors.length} invalid manifest${plan.errors.length === 1 ? '' : 's'}`;
    ui.planState.textContent = `Plan as of ${time}: ${counts}.`;
  } catch (err) {
    if (load !== planLoads || (err instanceof ApiError && err.status === 401)) return;
    ui.planState.textContent = `Could not load the plan: ${err instanceof Error ? err.message : String(err)}`;
  } finally {
    if (load === planLoads) ui.planRefresh.removeAttribute('aria-disabled');
  }
}

/**
 * @param {HTMLElement} tab
 * @param {boolean} focus
 */
function selectTab(tab, focus) {
  for (const other of ui.tabs) {
    const selected = other === tab;
    other.setAttribute('aria-selected', String(selected));
    other.tabIndex = selected ? 0 : -1;
    byId(/** @type {string} */ (other.getAttribute('aria-controls'))).hidden = !selected;
  }
  if (focus) tab.focus();
  if (tab.id === 'tab-plan' && !planLoaded && token !== '') void loadPlan();
  if (tab.id === 'tab-tokens' && token !== '') void tokens.load();
}

ui.form.addEventListener('submit', async (event) => {
  event.preventDefault();
  if (signingIn) return;
  const candidate = ui.tokenInput.value.trim();
  if (candidate === '') {
    showSigninMessage('Enter the admin token.');
    ui.tokenInput.focus();
    return;
  }
  signingIn = true;
  showSigninMessage('Signing in…');
  try {
    const apps = await apiRequest(candidate, 'GET', 'apps');
    token = candidate;
    saveToken(candidate);
    ui.tokenInput.value = '';
    enter(apps);
    ui.appsTitle.focus();
  } catch (err) {
    showSigninMessage(
      err instanceof ApiError && err.status === 401
        ? 'That token was not accepted (unknown or revoked). Use APPVISOR_ADMIN_TOKEN, the token in data/admin-token, or one from appvisor token create.'
        : `Cannot sign in: ${err instanceof Error ? err.message : String(err)}`,
    );
    ui.tokenInput.focus();
    ui.tokenInput.select();
  } finally {
    signingIn = false;
  }
});

ui.signOut.addEventListener('click', () => leave('Signed out.'));

for (const tab of ui.tabs) tab.addEventListener('click', () => selectTab(tab, false));
ui.tabs[0].parentElement?.addEventListener('keydown', (event) => {
  // The hidden tabs (Tokens for a token that is not admin) are skipped.
  const shown = ui.tabs.filter((tab) => !tab.hidden);
  const index = shown.indexOf(/** @type {HTMLElement} */ (event.target));
  if (index < 0) return;
  const next = tabKeyTarget(event.key, index, shown.length);
  if (next === undefined) return;
  event.preventDefault();
  selectTab(shown[next], true);
});

ui.planRefresh.addEventListener('click', () => {
  if (ui.planRefresh.getAttribute('aria-disabled') !== 'true') void loadPlan();
});

token = loadToken();
if (token !== '') enter(undefined);
else {
  ui.signin.hidden = false;
  ui.tokenInput.focus();
}
