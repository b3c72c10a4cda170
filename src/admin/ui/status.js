import { h } from './dom.js';

/**
 * The colour family of each status (SPEC §6). The badge always shows the status word too,
 * so colour is never the only cue.
 *
 * @type {Readonly<Record<string, 'ok' | 'busy' | 'bad' | 'idle'>>}
 */
export const STATUS_TONE = Object.freeze({
  running: 'ok',
  starting: 'busy',
  upgrading: 'busy',
  provisioning: 'busy',
  stopping: 'busy',
  error: 'bad',
  'needs-upgrade': 'bad',
  stopped: 'idle',
  disabled: 'idle',
  orphaned: 'idle',
});

/** Statuses in which Start has nothing to do. */
const STARTED = new Set(['running', 'starting', 'upgrading', 'provisioning', 'stopping']);
/** Statuses in which Stop has nothing to do. */
const STOPPED = new Set(['stopped', 'stopping', 'disabled', 'orphaned']);

/** @param {string} status */
export function toneOf(status) {
  return STATUS_TONE[status] ?? 'idle';
}

/**
 * A status badge: `<span class="badge badge-ok">running</span>`, with the reason when appvisor
 * stopped the app by itself: `stopped (idle)`.
 *
 * @param {string} status
 * @param {string | null} [reason]
 */
export function badge(status, reason) {
  const text = reason ? `${status} (${reason})` : status;
  return h('span', { class: `badge badge-${toneOf(status)}`, dataset: { status } }, text);
}

/**
 * Whether Start / Stop can do anything in `status`. Error, needs-upgrade and the like keep
 * Start offered: the server's answer then says why it refuses, which beats a dead button.
 *
 * @param {string} status
 */
export function actionsFor(status) {
  return { start: !STARTED.has(status), stop: !STOPPED.has(status) };
}
