/**
 * Idle stop (SPEC §8.2), as the planner decides it: pure, on the activity the runtime observed
 * and the time the plan is made for. An app that served no request and held no WebSocket for
 * its idleStop is stopped; one that is busy, or not idle long enough, is looked at again when
 * it could be due at the earliest.
 */
import { formatDuration, parseIdleStop } from '../config/duration.js';
import type { AppManifest } from '../manifests/types.js';
import type { PlanOptions, RuntimeState } from './model.js';

/** The app's idleStop in ms: its manifest's (`off` / `0`: never), else the setting; 0 is off. */
export function idleStopMs(m: AppManifest, opts: Pick<PlanOptions, 'idleStopMs'>): number {
  const own = m.idleStop === undefined ? undefined : parseIdleStop(m.idleStop);
  return own ?? opts.idleStopMs ?? 0;
}

/** Due: stop it now. Not due: when to look again (ms since the epoch), if ever. */
export type IdleCheck =
  | { readonly due: true; readonly idleSince: number; readonly detail: string }
  | { readonly due: false; readonly recheckAt?: number };

const NOT_DUE: IdleCheck = Object.freeze({ due: false });

/** Whether the running app `m` is due for its idle stop at `opts.now`. */
export function idleCheck(
  m: AppManifest,
  runtime: RuntimeState | undefined,
  opts: Pick<PlanOptions, 'idleStopMs' | 'now'>,
): IdleCheck {
  const limit = idleStopMs(m, opts);
  const now = opts.now;
  if (limit <= 0 || now === undefined || !m.enabled || runtime === undefined) return NOT_DUE;
  if (runtime.status !== 'running' && runtime.status !== 'starting') return NOT_DUE;
  const activity = runtime.activity;
  // Busy or still starting: the idle time begins later still, so it is due in a full idleStop at the earliest.
  if (runtime.status === 'starting' || activity === undefined || activity.busy) {
    return { due: false, recheckAt: now + limit };
  }
  const idleFor = now - activity.idleSince;
  if (idleFor < limit) return { due: false, recheckAt: activity.idleSince + limit };
  return {
    due: true,
    idleSince: activity.idleSince,
    detail: `idle for ${formatDuration(idleFor)} (idleStop ${formatDuration(limit)})`,
  };
}
