/**
 * The detail view's Logs tab: an app's recent lines, then each new one as it is logged, read
 * from `GET api/apps/<name>/logs?follow=1` with fetch() and the Authorization header (never a
 * token in the URL), parsed with SseParser. The server sends the kept lines and then the new
 * ones in one stream, so none falls between the two or comes twice.
 *
 * Auto-scroll keeps the newest line in sight until the reader scrolls up; Pause holds new lines
 * back (kept, shown on Resume). Every field is shown as text.
 */
import { API_ROOT, appPath } from './api.js';
import { h, replace } from './dom.js';
import { SseParser } from './sse.js';

/**
 * @typedef {{time: number, level: number, msg: string, app: string, replica: string, [field: string]: unknown}} LogLine
 */

/** pino's levels. */
const LEVELS = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };
/** Fields every line has, shown in their own columns rather than with the rest. */
const OWN_FIELDS = new Set(['time', 'level', 'msg', 'app', 'replica']);
/** Lines kept on the page (and held back while paused); older ones go first. */
const MAX_LINES = 2000;
/** The recent lines asked for before following. */
const BACKLOG = 500;
/** A reader this close to the bottom (px) counts as at the bottom: new lines scroll into sight. */
const BOTTOM_SLACK = 8;

/**
 * @param {number} level
 * @returns {string}
 */
export function levelName(level) {
  return LEVELS[/** @type {keyof typeof LEVELS} */ (level)] ?? String(level);
}

export class LogView {
  #root;
  #name;
  #token;
  #list;
  #state;
  #pause;
  #jump;
  /** @type {AbortController | undefined} */
  #stream;
  #paused = false;
  /** @type {LogLine[]} */
  #held = [];
  /** Whether new lines scroll into sight (the reader is at the bottom). */
  #stick = true;
  /** Replicas whose lines are missing: the server said they did not answer (logs-fanout.ts). */
  #missing = new Set();

  /**
   * @param {HTMLElement} root where the tab's content goes (emptied)
   * @param {{name: string, token: () => string}} options
   */
  constructor(root, { name, token }) {
    this.#root = root;
    this.#name = name;
    this.#token = token;
    this.#state = h('span', { class: 'log-state', role: 'status' }, 'Not following yet.');
    this.#pause = /** @type {HTMLButtonElement} */ (
      h('button', { type: 'button', class: 'secondary log-pause', 'aria-pressed': 'false' }, 'Pause')
    );
    this.#jump = /** @type {HTMLButtonElement} */ (
      h('button', { type: 'button', class: 'secondary log-jump', hidden: true }, 'Jump to latest')
    );
    this.#list = h('ol', {
      class: 'log-lines',
      tabindex: '0',
      'aria-label': `Log lines of ${name}`,
      'aria-live': 'off',
    });
    this.#pause.addEventListener('click', () => this.#setPaused(!this.#paused));
    this.#jump.addEventListener('click', () => {
      this.#stick = true;
      this.#scrollToEnd();
    });
    this.#list.addEventListener('scroll', () => {
      const list = this.#list;
      this.#stick = list.scrollTop + list.clientHeight >= list.scrollHeight - BOTTOM_SLACK;
      this.#jump.hidden = this.#stick;
    });
    replace(root, h('div', { class: 'log-toolbar' }, this.#pause, this.#jump, this.#state), this.#list);
  }

  /** Whether the stream is open. */
  get following() {
    return this.#stream !== undefined;
  }

  /** Starts following (again: the lines shown are replaced by the stream's). */
  start() {
    this.stop();
    const controller = new AbortController();
    this.#stream = controller;
    replace(this.#list);
    this.#held = [];
    this.#stick = true;
    this.#setState('Loading the recent lines…');
    void this.#follow(controller.signal).finally(() => {
      if (this.#stream === controller) this.#stream = undefined;
    });
  }

  /** Stops following (the view closed). */
  stop() {
    this.#stream?.abort();
    this.#stream = undefined;
  }

  /** @param {AbortSignal} signal */
  async #follow(signal) {
    const url = new URL(`${appPath(this.#name, 'logs')}?follow=1&limit=${BACKLOG}`, API_ROOT);
    let res;
    try {
      res = await fetch(url, {
        headers: {
          authorization: `Bearer ${this.#token()}`,
          accept: 'text/event-stream',
          'x-appvisor-client': 'admin-ui',
        },
        cache: 'no-store',
        credentials: 'omit',
        signal,
      });
    } catch {
      if (!signal.aborted) this.#ended('Cannot reach the server.');
      return;
    }
    if (!res.ok || res.body === null) {
      let message = `The server answered HTTP ${res.status}.`;
      try {
        const error = (await res.json())?.error;
        if (typeof error?.message === 'string') message = error.message;
      } catch {
        // The status says enough.
      }
      this.#ended(`Could not read the logs: ${message}`);
      return;
    }
    const parser = new SseParser();
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        const lines = [];
        for (const event of parser.push(value)) {
          if (event.type !== 'line' && event.type !== 'unreachable') continue;
          try {
            const data = JSON.parse(event.data);
            if (event.type === 'line') {
              lines.push(/** @type {LogLine} */ (data));
              this.#missing.delete(data.replica);
            } else if (typeof data?.replica === 'string') {
              // Another replica did not answer: its lines are missing until it does.
              this.#missing.add(data.replica);
            }
          } catch {
            // Data that is not JSON is not ours; skip it.
          }
        }
        this.#add(lines);
        this.#following();
      }
    } catch {
      if (signal.aborted) return;
    }
    if (!signal.aborted) this.#ended('The server ended the stream.');
  }

  /** @param {LogLine[]} lines */
  #add(lines) {
    if (lines.length === 0) return;
    if (this.#paused) {
      this.#held.push(...lines);
      if (this.#held.length > MAX_LINES) this.#held.splice(0, this.#held.length - MAX_LINES);
      this.#following();
      return;
    }
    this.#list.append(...lines.map(renderLine));
    const extra = this.#list.children.length - MAX_LINES;
    for (let i = 0; i < extra; i++) this.#list.firstElementChild?.remove();
    if (this.#stick) this.#scrollToEnd();
    else this.#jump.hidden = false;
  }

  /** @param {boolean} paused */
  #setPaused(paused) {
    this.#paused = paused;
    this.#pause.textContent = paused ? 'Resume' : 'Pause';
    this.#pause.setAttribute('aria-pressed', String(paused));
    if (!paused) {
      const held = this.#held;
      this.#held = [];
      this.#add(held);
    }
    if (this.#stream !== undefined) this.#following();
  }

  /** The state line: a live region, so it changes with the state, not with every line. */
  #following() {
    const held = this.#held.length;
    const state = this.#paused
      ? `Paused: ${held} new line${held === 1 ? '' : 's'} held back.`
      : 'Following: new lines appear as they are logged.';
    const missing = [...this.#missing];
    this.#setState(
      missing.length === 0
        ? state
        : `${state} Lines of replica ${missing.join(', ')} are missing: ${missing.length === 1 ? 'it does' : 'they do'} not answer.`,
    );
    this.#root.dataset.state = this.#paused ? 'paused' : 'following';
  }

  /** @param {string} text */
  #ended(text) {
    this.#setState(text);
    this.#root.dataset.state = 'ended';
    const again = h('button', { type: 'button', class: 'secondary log-again' }, 'Follow again');
    again.addEventListener('click', () => this.start());
    this.#state.append(' ', again);
  }

  /** @param {string} text */
  #setState(text) {
    if (this.#state.textContent !== text) this.#state.textContent = text;
  }

  #scrollToEnd() {
    this.#list.scrollTop = this.#list.scrollHeight;
    this.#jump.hidden = true;
  }
}

/**
 * One line: time, level, replica, message, and the other fields as JSON, all as text.
 *
 * @param {LogLine} line
 */
function renderLine(line) {
  const level = levelName(line.level);
  const time = new Date(line.time);
  /** @type {Record<string, unknown>} */
  const rest = {};
  for (const [key, value] of Object.entries(line)) if (!OWN_FIELDS.has(key)) rest[key] = value;
  const fields = Object.keys(rest).length === 0 ? '' : JSON.stringify(rest);
  return h(
    'li',
    { class: `log-line log-${level}`, dataset: { level } },
    h(
      'time',
      { datetime: Number.isNaN(time.getTime()) ? null : time.toISOString() },
      Number.isNaN(time.getTime()) ? '' : time.toLocaleTimeString(),
    ),
    ' ',
    h('span', { class: 'log-level' }, level),
    ' ',
    h('span', { class: 'log-replica', title: 'replica' }, String(line.replica ?? '')),
    ' ',
    h('span', { class: 'log-msg' }, String(line.msg ?? '')),
    fields ? [' ', h('span', { class: 'log-fields' }, fields)] : null,
  );
}
