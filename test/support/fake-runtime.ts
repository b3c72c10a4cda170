/**
 * A fake runtime for executor and reconciler tests: what the executor drives (route, unroute,
 * start, stop) and what the planner reads back (state), with every call logged. A start takes
 * effect at once (the status is `running` when `start` returns its promise), so a test does not
 * depend on whether the executor awaits it.
 */
import { AppvisorError } from '../../src/errors.js';
import type { LoadedManifest } from '../../src/manifests/types.js';
import type { RuntimeControl } from '../../src/reconcile/executor.js';
import type { DatabaseTarget, RuntimeState } from '../../src/reconcile/model.js';
import type { AppStatus, OperatorIntent } from '../../src/state/types.js';

export interface FakeApp {
  loaded: LoadedManifest;
  target: DatabaseTarget;
  intent: OperatorIntent | undefined;
  blocked: AppvisorError | undefined;
  status: AppStatus;
  /** The spec hash the running instance was started with. */
  specHash: string | undefined;
  /** Requests and sockets, as a test sets them (none reported when unset). */
  activity?: { busy: boolean; idleSince: number };
  /** Set by an idle stop, cleared by a start. */
  idleStoppedAt?: number;
}

export class FakeRuntime implements RuntimeControl {
  readonly apps = new Map<string, FakeApp>();
  /** Every call, as `operation name` (e.g. `start crm`). */
  readonly calls: string[] = [];
  /** When set, every start fails with it (the app's status becomes `error`). */
  startError: unknown;

  route(
    loaded: LoadedManifest,
    target: DatabaseTarget,
    intent: OperatorIntent | undefined,
    blocked?: AppvisorError,
  ): void {
    const name = loaded.manifest.name;
    this.calls.push(`route ${name}`);
    const app = this.apps.get(name);
    if (app) Object.assign(app, { loaded, target, intent, blocked });
    else {
      const status = loaded.manifest.enabled ? 'stopped' : 'disabled';
      this.apps.set(name, { loaded, target, intent, blocked, status, specHash: undefined });
    }
  }

  async unroute(name: string): Promise<void> {
    this.calls.push(`unroute ${name}`);
    this.apps.delete(name);
  }

  start(name: string, opts: { readonly requestedAt?: string } = {}): Promise<void> {
    this.calls.push(opts.requestedAt ? `start ${name} (requested ${opts.requestedAt})` : `start ${name}`);
    const app = this.apps.get(name);
    if (!app) return Promise.reject(new AppvisorError('APP_NOT_FOUND', { app: name }));
    if (this.startError !== undefined) {
      app.status = 'error';
      return Promise.reject(this.startError);
    }
    app.status = 'running';
    app.specHash = app.loaded.hash;
    app.idleStoppedAt = undefined;
    return Promise.resolve();
  }

  async stopIdle(name: string, idleSince: number): Promise<boolean> {
    this.calls.push(`stopIdle ${name}`);
    const app = this.apps.get(name);
    if (!app) throw new AppvisorError('APP_NOT_FOUND', { app: name });
    if (app.activity?.busy || app.activity?.idleSince !== idleSince) return false;
    await this.stop(name);
    app.idleStoppedAt = Date.now();
    return true;
  }

  async stop(name: string): Promise<void> {
    this.calls.push(`stop ${name}`);
    const app = this.apps.get(name);
    if (!app) throw new AppvisorError('APP_NOT_FOUND', { app: name });
    app.status = app.loaded.manifest.enabled ? 'stopped' : 'disabled';
    app.specHash = undefined;
  }

  state(name: string): RuntimeState | undefined {
    const app = this.apps.get(name);
    if (!app) return undefined;
    return {
      status: app.status,
      ...(app.specHash !== undefined ? { specHash: app.specHash } : {}),
      ...(app.activity ? { activity: { ...app.activity } } : {}),
      ...(app.idleStoppedAt !== undefined ? { idleStoppedAt: app.idleStoppedAt } : {}),
    };
  }
}
