import { API_ROOT } from './api.js';
import { SseParser } from './sse.js';

/**
 * @typedef {'connecting' | 'live' | 'waiting' | 'stopped'} LiveState
 * @typedef {{
 *   token: string,
 *   onEvent: (event: import('./sse.js').SseEvent) => void,
 *   onState: (state: LiveState, retryInMs?: number) => void,
 *   onUnauthorized: () => void,
 *   minDelayMs?: number,
 *   maxDelayMs?: number,
 *   idleTimeoutMs?: number,
 * }} LiveOptions
 */

/**
 * The live feed: `GET api/events` read with fetch() and the Authorization header (never a
 * token in the URL), parsed with SseParser, reconnected with exponential backoff and jitter
 * when it drops. Each connection starts with a `snapshot`, so nothing is missed across a
 * reconnect. A stream silent for longer than three heartbeats is treated as dropped.
 */
export class LiveEvents {
  /** @type {LiveOptions} */
  #options;
  /** @type {AbortController | undefined} */
  #stop;

  /** @param {LiveOptions} options */
  constructor(options) {
    this.#options = options;
  }

  /** Connects (again, if already connected). */
  start() {
    this.stop();
    const controller = new AbortController();
    this.#stop = controller;
    void this.#run(controller.signal);
  }

  /** Disconnects for good. */
  stop() {
    this.#stop?.abort();
    this.#stop = undefined;
  }

  /** @param {AbortSignal} signal */
  async #run(signal) {
    const { minDelayMs = 1000, maxDelayMs = 30_000 } = this.#options;
    // A feed that was stopped says nothing more: a newer one may be live by then.
    const onState = (/** @type {LiveState} */ state, /** @type {number=} */ retryInMs) => {
      if (!signal.aborted) this.#options.onState(state, retryInMs);
    };
    let failures = 0;
    while (!signal.aborted) {
      onState('connecting');
      const outcome = await this.#connect(signal, () => {
        failures = 0;
        onState('live');
      });
      if (outcome === 'unauthorized' || signal.aborted) break;
      const ceiling = Math.min(maxDelayMs, minDelayMs * 2 ** failures);
      const delay = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
      failures++;
      onState('waiting', delay);
      await sleep(delay, signal);
    }
    onState('stopped');
  }

  /**
   * One connection, until it ends.
   *
   * @param {AbortSignal} signal
   * @param {() => void} onSnapshot
   * @returns {Promise<'ended' | 'unauthorized'>}
   */
  async #connect(signal, onSnapshot) {
    const { token, onEvent, onUnauthorized, idleTimeoutMs = 45_000 } = this.#options;
    const connection = new AbortController();
    const abort = () => connection.abort();
    signal.addEventListener('abort', abort, { once: true });
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let idle;
    const resetIdle = () => {
      clearTimeout(idle);
      idle = setTimeout(abort, idleTimeoutMs);
    };
    try {
      resetIdle();
      const res = await fetch(new URL('events', API_ROOT), {
        headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' },
        cache: 'no-store',
        credentials: 'omit',
        signal: connection.signal,
      });
      if (res.status === 401) {
        onUnauthorized();
        return 'unauthorized';
      }
      if (!res.ok || res.body === null) return 'ended';
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      const parser = new SseParser();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return 'ended';
        resetIdle();
        for (const event of parser.push(value)) {
          if (event.type === 'snapshot') onSnapshot();
          onEvent(event);
        }
      }
    } catch {
      return 'ended';
    } finally {
      clearTimeout(idle);
      signal.removeEventListener('abort', abort);
      connection.abort();
    }
  }
}

/**
 * @param {number} ms
 * @param {AbortSignal} signal
 */
function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve(undefined);
    }
  });
}
