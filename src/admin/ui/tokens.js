/**
 * The Tokens view (admin tokens only): the named tokens with their scope and use, a form that
 * makes one (its token shown once, right there), and Revoke with a confirmation in the row.
 */
import { ApiError } from './api.js';
import { h, hiddenText, replace } from './dom.js';
import { formatTime } from './format.js';

/**
 * @typedef {{name: string, scope: 'read' | 'operate' | 'admin', createdAt: string,
 *   lastUsedAt?: string, revokedAt?: string}} TokenView
 * @typedef {(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown) => Promise<any>} Call
 */

export class TokensPanel {
  #body;
  #state;
  #form;
  #name;
  #scope;
  #created;
  #call;
  #loads = 0;

  /**
   * @param {{body: HTMLElement, state: HTMLElement, form: HTMLFormElement, name: HTMLInputElement,
   *   scope: HTMLSelectElement, created: HTMLElement, call: Call}} options
   */
  constructor(options) {
    this.#body = options.body;
    this.#state = options.state;
    this.#form = options.form;
    this.#name = options.name;
    this.#scope = options.scope;
    this.#created = options.created;
    this.#call = options.call;
    this.#form.addEventListener('submit', (event) => {
      event.preventDefault();
      void this.#create();
    });
  }

  /** Loads the list again. */
  async load() {
    const load = ++this.#loads;
    this.#state.textContent = 'Loading the tokens…';
    try {
      /** @type {TokenView[]} */
      const tokens = await this.#call('GET', 'tokens');
      if (load !== this.#loads) return;
      this.#render(tokens);
      const live = tokens.filter((t) => !t.revokedAt).length;
      this.#state.textContent = `${live} valid, ${tokens.length - live} revoked.`;
    } catch (err) {
      if (load !== this.#loads || (err instanceof ApiError && err.status === 401)) return;
      this.#state.textContent = `Could not load the tokens: ${messageOf(err)}`;
    }
  }

  /** Forgets everything shown (sign-out). */
  clear() {
    this.#loads++;
    this.#body.replaceChildren();
    this.#created.replaceChildren();
    this.#created.hidden = true;
    this.#state.textContent = '';
    this.#form.reset();
  }

  async #create() {
    const name = this.#name.value.trim();
    const scope = this.#scope.value;
    replace(this.#created);
    this.#created.hidden = true;
    if (name === '') {
      this.#showCreated(h('p', { class: 'error-text' }, 'Enter a name for the token.'));
      this.#name.focus();
      return;
    }
    try {
      const made = await this.#call('POST', 'tokens', { name, scope });
      this.#form.reset();
      this.#showCreated(
        h(
          'p',
          {},
          `Token `,
          h('strong', {}, made.name),
          ` (scope ${made.scope}) made. It is shown only now: copy it.`,
        ),
        h('code', { class: 'new-token', id: 'new-token' }, made.token),
        h('p', { class: 'hint' }, 'Use it as "Authorization: Bearer <token>", or sign in here with it.'),
      );
      await this.load();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return;
      this.#showCreated(h('p', { class: 'error-text' }, `Not made: ${messageOf(err)}`));
      this.#name.focus();
    }
  }

  /** @param {...(Node | string)} children */
  #showCreated(...children) {
    replace(this.#created, ...children);
    this.#created.hidden = false;
  }

  /** @param {TokenView[]} tokens */
  #render(tokens) {
    this.#body.replaceChildren(...tokens.map((t) => this.#row(t)));
  }

  /** @param {TokenView} token */
  #row(token) {
    const actions = h('td', { class: 'col-actions' });
    const tr = h(
      'tr',
      { dataset: { token: token.name }, class: token.revokedAt ? 'revoked' : null },
      h('th', { scope: 'row' }, token.name),
      h('td', {}, token.scope),
      h('td', {}, formatTime(token.createdAt)),
      h('td', {}, formatTime(token.lastUsedAt, 'never')),
      h('td', {}, token.revokedAt ? formatTime(token.revokedAt) : '—'),
      actions,
    );
    if (!token.revokedAt) this.#offerRevoke(actions, token.name);
    return tr;
  }

  /**
   * @param {HTMLElement} cell
   * @param {string} name
   */
  #offerRevoke(cell, name) {
    const revoke = h(
      'button',
      { type: 'button', class: 'secondary action-revoke' },
      'Revoke',
      hiddenText(` ${name}`),
    );
    revoke.addEventListener('click', () => this.#confirm(cell, name));
    replace(cell, revoke);
  }

  /**
   * @param {HTMLElement} cell
   * @param {string} name
   */
  #confirm(cell, name) {
    const yes = h(
      'button',
      { type: 'button', class: 'danger action-confirm-revoke' },
      `Revoke ${name} for good`,
    );
    const no = h('button', { type: 'button', class: 'secondary' }, 'Cancel');
    const message = h('p', { class: 'row-message', role: 'status' });
    yes.addEventListener('click', async () => {
      yes.setAttribute('aria-disabled', 'true');
      try {
        await this.#call('DELETE', `tokens/${encodeURIComponent(name)}`);
        await this.load();
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) return;
        yes.removeAttribute('aria-disabled');
        message.textContent = `Not revoked: ${messageOf(err)}`;
      }
    });
    no.addEventListener('click', () => this.#offerRevoke(cell, name));
    replace(
      cell,
      h(
        'p',
        { class: 'confirm-text' },
        `Every request with ${name} is refused within seconds, on every replica.`,
      ),
      h('div', { class: 'actions' }, yes, no),
      message,
    );
    yes.focus();
  }
}

/** @param {unknown} err */
function messageOf(err) {
  return err instanceof Error ? err.message : String(err);
}
