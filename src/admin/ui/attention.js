/**
 * The Attention view's test: which apps an operator should look at, and why, in words. Pure.
 */
import { formatError } from './format.js';

/** @typedef {import('./apps.js').AppView} AppView */

/**
 * Why `app` needs attention; empty when it does not. `drift` is this replica's set of apps whose
 * manifest in its apps.d differs from what is applied (the Replicas panel's "Manifests differing").
 *
 * @param {AppView} app
 * @param {ReadonlySet<string>} drift
 * @returns {string[]}
 */
export function attentionReasons(app, drift) {
  const reasons = [];
  if (app.status === 'error') reasons.push(`In error: ${formatError(app.error) || 'no message given'}`);
  if (app.status === 'needs-upgrade')
    reasons.push('Needs an upgrade: its data is older than its code and it is not started until upgraded');
  if (app.dropAt) reasons.push(`Its data is dropped at ${app.dropAt} unless the manifest comes back`);
  if (drift.has(app.name))
    reasons.push('Drift: the manifest in apps.d differs from what is applied on this replica');
  return reasons;
}

/**
 * Whether `app` needs attention: {@link attentionReasons} without the words (it runs for every
 * app on every change of the list).
 *
 * @param {AppView} app
 * @param {ReadonlySet<string>} drift
 */
export function needsAttention(app, drift) {
  return (
    app.status === 'error' || app.status === 'needs-upgrade' || Boolean(app.dropAt) || drift.has(app.name)
  );
}

/**
 * This replica's drift from the replicas last polled (none until the first poll).
 *
 * @param {import('./replicas.js').ReplicaView[] | undefined} replicas
 * @returns {Set<string>}
 */
export function driftOf(replicas) {
  return new Set(replicas?.find((r) => r.self)?.drift ?? []);
}
