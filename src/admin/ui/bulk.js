import { h, replace } from './dom.js';

/** Requests in flight at once: enough to be quick, few enough not to swamp the server. */
export const BULK_CONCURRENCY = 2;
/** Apps named per request (`POST api/bulk/<action>` takes up to 500): progress moves in steps this size. */
export const BULK_BATCH = 100;

/** How many names the confirmation lists before "and N more". */
const NAMED = 5;

const count = new Intl.NumberFormat();

const VERBS = {
  start: { verb: 'Start', already: 'already started or starting' },
  stop: { verb: 'Stop', already: 'already stopped or stopping' },
};

/**
 * Runs `work` for every item, at most `limit` at a time, in order; stops taking new items once
 * `signal` is aborted (the ones in flight finish). `work` handles its own failures.
 *
 * @template T
 * @param {readonly T[]} items
 * @param {number} limit
 * @param {(item: T) => Promise<void>} work
 * @param {AbortSignal} signal
 */
export async function runBounded(items, limit, work, signal) {
  let next = 0;
  const worker = async () => {
    while (next < items.length && !signal.aborted) await work(/** @type {T} */ (items[next++]));
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/**
 * `blog, crm, docs, legacy, shop and 32 more`.
 *
 * @param {readonly string[]} names
 */
export function nameSome(names) {
  const named = names.slice(0, NAMED).join(', ');
  const more = names.length - NAMED;
  return more > 0 ? `${named} and ${count.format(more)} more` : named;
}

/**
 * Start or stop every app the list shows: a confirmation that says how many and names the
 * first few (Cancel sends nothing), then the requests, a bounded number at a time, with
 * progress and a summary of what failed and why. Offered to tokens that may operate only.
 * The apps are the ones shown when the dialog opened: an app leaving the filter because it
 * stopped does not change what is sent.
 */
export class BulkActions {
  #buttons;
  #targets;
  #perform;
  #dialog;
  #title;
  #text;
  #skipped;
  #progress;
  #bar;
  #state;
  #result;
  #failures;
  #cancel;
  #confirm;
  #halt;
  #close;
  /** @type {{action: 'start' | 'stop', names: string[]} | undefined} */
  #asked;
  /** @type {AbortController | undefined} */
  #run;

  /**
   * @param {{
   *   start: HTMLElement, stop: HTMLElement,
   *   targets: (action: 'start' | 'stop') => {names: string[], skipped: number},
   *   perform: (names: string[], action: 'start' | 'stop') => Promise<{refused: [string, string][]}>,
   * }} options `perform` sends one batch; it answers the refused apps with the API's message,
   *   and rejects when the whole request failed
   */
  constructor({ start, stop, targets, perform }) {
    this.#buttons = { start, stop };
    this.#targets = targets;
    this.#perform = perform;
    this.#title = h('h2', { id: 'bulk-title' });
    this.#text = h('p', { id: 'bulk-text', class: 'bulk-names' });
    this.#skipped = h('p', { class: 'hint' });
    this.#bar = /** @type {HTMLProgressElement} */ (
      h('progress', { max: '1', value: '0', 'aria-labelledby': 'bulk-state' })
    );
    this.#state = h('p', { id: 'bulk-state', role: 'status' });
    this.#progress = h('div', { class: 'bulk-progress' }, this.#bar, this.#state);
    this.#result = h('p', { class: 'bulk-result' });
    this.#failures = h('ul', { class: 'bulk-failures' });
    this.#cancel = h('button', { type: 'button', class: 'secondary' }, 'Cancel');
    this.#confirm = h('button', { type: 'button', class: 'danger' });
    this.#halt = h('button', { type: 'button', class: 'secondary' }, 'Stop sending');
    this.#close = h('button', { type: 'button' }, 'Close');
    this.#dialog = /** @type {HTMLDialogElement} */ (
      h(
        'dialog',
        { class: 'bulk', 'aria-labelledby': 'bulk-title', 'aria-describedby': 'bulk-text' },
        this.#title,
        this.#text,
        this.#skipped,
        this.#progress,
        this.#result,
        this.#failures,
        // Cancel first: the dialog's first focus lands on the harmless choice.
        h('div', { class: 'dialog-actions' }, this.#cancel, this.#halt, this.#confirm, this.#close),
      )
    );
    document.body.append(this.#dialog);

    start.addEventListener('click', () => this.#open('start'));
    stop.addEventListener('click', () => this.#open('stop'));
    this.#cancel.addEventListener('click', () => this.#dialog.close());
    this.#close.addEventListener('click', () => this.#dialog.close());
    this.#confirm.addEventListener('click', () => void this.#send());
    this.#halt.addEventListener('click', () => this.#run?.abort());
    // Escape does not walk away from requests being sent: "Stop sending" does.
    this.#dialog.addEventListener('cancel', (event) => {
      if (this.#run !== undefined) event.preventDefault();
    });
    this.setAllowed(false);
  }

  /**
   * Shows the bulk buttons to a token that may start and stop apps.
   *
   * @param {boolean} allowed
   */
  setAllowed(allowed) {
    this.#buttons.start.hidden = !allowed;
    this.#buttons.stop.hidden = !allowed;
  }

  /** Stops a run (what is in flight finishes), closes the dialog and hides the buttons (sign-out). */
  reset() {
    this.#run?.abort();
    this.#run = undefined;
    if (this.#dialog.open) this.#dialog.close();
    this.setAllowed(false);
  }

  /** @param {'start' | 'stop'} action */
  #open(action) {
    if (this.#run !== undefined) return;
    const { names, skipped } = this.#targets(action);
    const { verb, already } = VERBS[action];
    this.#asked = { action, names };
    const n = names.length;
    this.#title.textContent =
      n === 0 ? `No app to ${action}` : `${verb} ${count.format(n)} app${n === 1 ? '' : 's'}?`;
    this.#text.textContent = n === 0 ? `Every app shown is ${already}.` : `${nameSome(names)}.`;
    this.#skipped.textContent =
      n > 0 && skipped > 0
        ? `${count.format(skipped)} more shown ${skipped === 1 ? 'is' : 'are'} ${already}: left alone.`
        : '';
    this.#skipped.hidden = this.#skipped.textContent === '';
    this.#confirm.textContent = `${verb} ${count.format(n)} app${n === 1 ? '' : 's'}`;
    this.#confirm.className = action === 'stop' ? 'danger' : '';
    this.#progress.hidden = true;
    this.#result.hidden = true;
    this.#failures.hidden = true;
    this.#showButtons(n === 0 ? 'done' : 'confirm');
    this.#dialog.showModal();
  }

  async #send() {
    const asked = this.#asked;
    if (asked === undefined || this.#run !== undefined) return;
    const { action, names } = asked;
    const run = new AbortController();
    this.#run = run;
    /** @type {[string, string][]} */
    const failed = [];
    let settled = 0;
    this.#bar.max = names.length;
    this.#bar.value = 0;
    this.#progress.hidden = false;
    this.#showButtons('running');
    // Drawn once a frame at most: thousands of answers need not repaint the dialog thousands of times.
    let frame = 0;
    const progress = () => {
      if (frame === 0) frame = requestAnimationFrame(showProgress);
    };
    const showProgress = () => {
      frame = 0;
      this.#bar.value = settled;
      this.#state.textContent = `${count.format(settled)} of ${count.format(names.length)} sent${
        failed.length > 0 ? `, ${count.format(failed.length)} failed` : ''
      }`;
    };
    showProgress();
    /** @type {string[][]} */
    const batches = [];
    for (let i = 0; i < names.length; i += BULK_BATCH) batches.push(names.slice(i, i + BULK_BATCH));
    await runBounded(
      batches,
      BULK_CONCURRENCY,
      async (batch) => {
        try {
          failed.push(...(await this.#perform(batch, action)).refused);
        } catch (err) {
          // The request itself failed (the server went away): none of its apps was sent.
          const message = err instanceof Error ? err.message : String(err);
          for (const name of batch) failed.push([name, message]);
        }
        settled += batch.length;
        if (this.#run === run) progress();
      },
      run.signal,
    );
    cancelAnimationFrame(frame);
    if (this.#run !== run) return; // reset() (a sign-out) ended it.
    this.#run = undefined;
    showProgress();
    const { verb } = VERBS[action];
    const sent = settled - failed.length;
    const unsent = names.length - settled;
    this.#result.textContent = [
      `${verb} sent to ${count.format(sent)} of ${count.format(names.length)} apps`,
      failed.length > 0 ? `${count.format(failed.length)} refused` : '',
      unsent > 0 ? `${count.format(unsent)} not sent (stopped sending)` : '',
    ]
      .filter(Boolean)
      .join('; ')
      .concat('.');
    replace(
      this.#failures,
      failed.map(([name, message]) => h('li', {}, h('strong', {}, name), `: ${message}`)),
    );
    this.#result.hidden = false;
    this.#failures.hidden = failed.length === 0;
    this.#showButtons('done');
    this.#close.focus();
  }

  /** @param {'confirm' | 'running' | 'done'} phase */
  #showButtons(phase) {
    this.#cancel.hidden = phase !== 'confirm';
    this.#confirm.hidden = phase !== 'confirm';
    this.#halt.hidden = phase !== 'running';
    this.#close.hidden = phase !== 'done';
  }
}
