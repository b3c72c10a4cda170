/**
 * A follower replica's plan for one app (SPEC §8.1): only this replica's runtime, converged to
 * the record the leader applied — routes, starts, stops, restarts — never a provisioning step,
 * a migration or a store write. Pure, like the planner it builds on.
 */
import { AppvisorError } from '../errors.js';
import type { LoadedManifest } from '../manifests/types.js';
import type { AppRecord } from '../state/types.js';
import type { Action, Actual, ActualApp, Desired, PlanOptions, Step } from './model.js';
import { applicationFor, planApp, UP } from './planner.js';

/** What a follower carries out: its own runtime's steps (`orphan` only unroutes it there). */
export const RUNTIME_ACTIONS: ReadonlySet<Action> = new Set([
  'stop',
  'restart',
  'start',
  'update-routes',
  'orphan',
]);

/** `last`, preceded by a stop of this replica's instance when one is up. */
function stoppedThen(name: string, app: ActualApp, detail: string, last: Step): Step[] {
  const up = app.runtime !== undefined && UP.has(app.runtime.status);
  return up ? [{ app: name, action: 'stop', detail }, last] : [last];
}

/**
 * The applied record as the one manifest a follower converges to (none for a removed app). An
 * app only in this replica's apps.d (`local`), not applied yet, stands there for its routes alone:
 * visits are held (see planFollower), never served from a manifest the leader has not applied.
 */
export function appliedDesired(name: string, record: AppRecord | undefined, local?: LoadedManifest): Desired {
  const apps =
    record && record.status !== 'orphaned'
      ? new Map([[name, { file: record.file, manifest: record.spec, hash: record.specHash }]])
      : !record && local
        ? new Map([[name, local]])
        : new Map();
  return { apps, invalid: [], errors: [] };
}

export function planFollower(
  name: string,
  record: AppRecord | undefined,
  app: ActualApp,
  opts: PlanOptions & { readonly storeId: string },
  local?: LoadedManifest,
): Step[] {
  if (!record && local && local.manifest.name === name) {
    // Coming (the leader is about to create it): a visit gets 503 with Retry-After, so a load
    // balancer tries the leader, instead of a 404 that says the app does not exist.
    const detail = "in this replica's apps.d, not applied by the leader yet";
    return [
      { app: name, action: 'update-routes', detail, hold: { code: 'APP_STARTING', params: { app: name } } },
    ];
  }
  if (!record || record.status === 'orphaned') {
    // Removed on the leader: this replica stops and unroutes it; its data is the leader's business.
    if (!app.runtime) return [];
    const orphan: Step = {
      app: name,
      action: 'orphan',
      detail: 'no longer applied; unrouted on this replica',
    };
    return stoppedThen(name, app, 'no longer applied', orphan);
  }
  if (record.status === 'upgrading') {
    // The leader migrates its data now: stopped here, visits wait for the migration to end.
    return [
      { app: name, action: 'update-routes', detail: 'the leader migrates its data', awaitUpgrade: true },
    ];
  }
  // The application of the applied spec: its own version decides (SPEC §8.6).
  const application = applicationFor(record.spec, opts);
  const code = application instanceof AppvisorError ? undefined : application;
  const held = holdOf(name, record, app, code?.version);
  if (held?.hold.code === 'APP_NEEDS_UPGRADE' && (!code?.upgradeHeldBy || code.upgradeHeldBy.leaving)) {
    // Older data, and no live replica runs older code: the leader migrates it now (or once it
    // sees the last one gone). Visits wait for that, as they wait for a migration on one server.
    const wait: Step = {
      app: name,
      action: 'update-routes',
      detail: `${held.detail}; visits wait`,
      awaitUpgrade: true,
    };
    return stoppedThen(name, app, held.detail, wait);
  }
  if (held) {
    const route: Step = { app: name, action: 'update-routes', detail: held.detail, hold: held.hold };
    return stoppedThen(name, app, held.detail, route);
  }
  const actual: Actual = {
    apps: new Map([[name, app]]),
    storeId: opts.storeId,
    hasMainSecret: true,
    live: true,
  };
  return planApp(name, appliedDesired(name, record), actual, opts).filter((s) =>
    RUNTIME_ACTIONS.has(s.action),
  );
}

/**
 * Whether this replica must keep the app from its visitors: the leader is still creating it, or
 * its data is at another version than this replica's code (a rolling upgrade under way: data
 * newer than the code is never served by it; older data waits for the leader's migration).
 */
function holdOf(
  name: string,
  record: AppRecord,
  app: ActualApp,
  codeVersion: number | undefined,
): { detail: string; hold: NonNullable<Step['hold']> } | undefined {
  if (record.status === 'provisioning') {
    return { detail: 'the leader is creating it', hold: { code: 'APP_STARTING', params: { app: name } } };
  }
  const data = app.dataVersion;
  if (codeVersion === undefined || data === undefined || data === codeVersion) return undefined;
  const params = { app: name, dataVersion: data, codeVersion };
  return data > codeVersion
    ? {
        detail: `its data is at version ${data}, newer than this replica's code (${codeVersion}); served by the replicas that run it`,
        hold: { code: 'APP_DATA_NEWER', params },
      }
    : {
        detail: `its data is at version ${data}, older than this replica's code (${codeVersion}); waits for the leader's migration`,
        hold: { code: 'APP_NEEDS_UPGRADE', params },
      };
}
