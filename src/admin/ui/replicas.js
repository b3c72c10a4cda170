import { h, replace } from './dom.js';
import { NONE } from './format.js';

/**
 * @typedef {{
 *   id: string, host: string, pid: number, leader: boolean, version: string, lastSeenAt: string,
 *   live: boolean, self: boolean, drift: string[],
 *   apps: Record<string, {status: string, startedAt?: string}>,
 * }} ReplicaView
 *
 * @typedef {{id: string, status: string, startedAt: string | null}} AppOnReplica
 */

/**
 * The app on each live replica, as `GET api/apps` gives it: `stopped` where the replica's
 * heartbeat does not list the app.
 *
 * @param {string} name
 * @param {ReplicaView[]} replicas
 * @returns {AppOnReplica[]}
 */
export function statusesOn(name, replicas) {
  return replicas
    .filter((r) => r.live)
    .map((r) => {
      const there = r.apps[name];
      return { id: r.id, status: there?.status ?? 'stopped', startedAt: there?.startedAt ?? null };
    });
}

/**
 * `running on 2/3`: the compact count the list shows; empty before anything is known.
 *
 * @param {AppOnReplica[]} on
 */
export function runningCount(on) {
  if (on.length === 0) return '';
  return `running on ${on.filter((r) => r.status === 'running').length}/${on.length}`;
}

/**
 * How long ago, in words a glance reads: `3 s ago`, `12 min ago`.
 *
 * @param {string} iso
 * @param {number} now
 */
function ago(iso, now) {
  const seconds = Math.max(0, Math.round((now - new Date(iso).getTime()) / 1000));
  if (Number.isNaN(seconds)) return iso;
  if (seconds < 90) return `${seconds} s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 172_800) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86_400)} d ago`;
}

/**
 * The Replicas panel: one row per replica on the state store, the leader badged, dead ones
 * marked (shown until the server prunes them). Redrawn whole on each poll: a few rows.
 */
export class ReplicaPanel {
  #body;
  #summary;

  /** @param {{body: HTMLElement, summary: HTMLElement}} parts */
  constructor({ body, summary }) {
    this.#body = body;
    this.#summary = summary;
  }

  /** @param {ReplicaView[]} replicas */
  render(replicas) {
    const now = Date.now();
    replace(
      this.#body,
      replicas.map((r) =>
        h(
          'tr',
          { dataset: { replica: r.id }, class: r.live ? null : 'replica-dead' },
          h(
            'th',
            { scope: 'row', class: 'col-replica' },
            h('code', {}, r.id),
            r.leader
              ? [' ', h('span', { class: 'badge badge-ok', dataset: { role: 'leader' } }, 'leader')]
              : null,
            r.self ? h('span', { class: 'muted' }, ' (this one)') : null,
          ),
          h('td', {}, r.host),
          h('td', {}, String(r.pid)),
          h('td', {}, r.version),
          h('td', {}, h('time', { datetime: r.lastSeenAt, title: r.lastSeenAt }, ago(r.lastSeenAt, now))),
          h(
            'td',
            { class: 'col-live' },
            h('span', { class: `badge badge-${r.live ? 'ok' : 'bad'}` }, r.live ? 'live' : 'dead'),
          ),
          h('td', {}, r.drift.length === 0 ? NONE : h('span', { class: 'error-text' }, r.drift.join(', '))),
        ),
      ),
    );
    const live = replicas.filter((r) => r.live).length;
    const dead = replicas.length - live;
    this.#summary.textContent =
      replicas.length === 0
        ? ''
        : `${live} live${dead > 0 ? `, ${dead} dead` : ''}${replicas.some((r) => r.leader) ? '' : ', no leader'}`;
  }

  clear() {
    this.#body.replaceChildren();
    this.#summary.textContent = '';
  }
}
