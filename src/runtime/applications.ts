/**
 * The application set (SPEC §8.6 "Application identity"): the default application (settings
 * `app`, else the built-in sample app) and every named one of settings `applications`, each
 * imported and checked once. A manifest's `application` picks one by its settings key; an app
 * whose manifest names none, and the main app, run the default one.
 */
import type { Settings } from '../config/types.js';
import { AppvisorError, messageOf } from '../errors.js';
import type { AppManifest } from '../manifests/types.js';
import { type Application, loadApplication } from './contract.js';

/** One loaded application and where it came from. */
export interface LoadedApplication {
  /** The settings key (a manifest's `application`); undefined for the default application. */
  readonly key: string | undefined;
  /** The module it was imported from; null for the built-in sample app. */
  readonly module: string | null;
  readonly application: Application;
}

/** What a plan needs to know of an application: who it is and its code's data version. */
export interface ApplicationCode {
  readonly name: string;
  readonly version: number;
}

export class ApplicationSet {
  readonly default: LoadedApplication;
  readonly #named: ReadonlyMap<string, LoadedApplication>;
  readonly #byModule: ReadonlyMap<string, Application>;

  constructor(defaultApp: LoadedApplication, named: readonly LoadedApplication[] = []) {
    this.default = defaultApp;
    this.#named = new Map(named.map((a) => [a.key!, a]));
    const byModule = new Map<string, Application>([[defaultApp.module ?? '', defaultApp.application]]);
    for (const a of named) byModule.set(a.module ?? '', a.application);
    this.#byModule = byModule;
  }

  /** The settings keys of the named applications, sorted (what a manifest may write). */
  keys(): string[] {
    return [...this.#named.keys()].sort();
  }

  /** The named application `key`, or undefined when the settings do not list it. */
  named(key: string): LoadedApplication | undefined {
    return this.#named.get(key);
  }

  /**
   * The application a manifest picks: its `application`, else the default one. A key the
   * settings do not list is refused (the manifest checks catch it first; see
   * checkApplications), never silently run as the default.
   */
  of(manifest: Pick<AppManifest, 'application' | 'name'>): LoadedApplication {
    if (manifest.application === undefined) return this.default;
    const found = this.#named.get(manifest.application);
    if (found) return found;
    throw new AppvisorError('CONFIG_INVALID', {
      detail: `app ${manifest.name} names application '${manifest.application}', which settings applications does not list (known: ${this.keys().join(', ') || 'none'})`,
    });
  }

  /** The application imported from `module` (null: the built-in sample app), if in the set. */
  byModule(module: string | null): Application | undefined {
    return this.#byModule.get(module ?? '');
  }

  /** Every application by settings key, for plans: `{name, version}` of each. */
  codes(): ReadonlyMap<string, ApplicationCode> {
    return new Map(
      [...this.#named].map(([key, a]) => [key, { name: a.application.name, version: a.application.version }]),
    );
  }

  /** Every application once (the default first), e.g. to describe them in a heartbeat. */
  all(): LoadedApplication[] {
    return [this.default, ...this.#named.values()];
  }
}

/**
 * Imports the default application and every one of settings `applications`, each module once,
 * checked as `loadApplication` checks. Throws CONFIG_INVALID naming the settings key and the
 * module; two different modules that claim one `name` are refused too, as they would defeat
 * the identity check (each app's data records its application by that name).
 */
export async function loadApplications(
  settings: Pick<Settings, 'app' | 'applications'>,
): Promise<ApplicationSet> {
  const defaultApp: LoadedApplication = {
    key: undefined,
    module: settings.app ?? null,
    application: await loadApplication(settings.app),
  };
  const cache = new Map<string, Application>([[defaultApp.module ?? '', defaultApp.application]]);
  const named: LoadedApplication[] = [];
  for (const [key, module] of Object.entries(settings.applications ?? {}).sort(([a], [b]) =>
    a < b ? -1 : 1,
  )) {
    let application = cache.get(module);
    if (!application) {
      try {
        application = await loadApplication(module);
      } catch (err) {
        throw new AppvisorError(
          'CONFIG_INVALID',
          { detail: `applications.${key} (${module}): ${messageOf(err)}` },
          { cause: err },
        );
      }
      cache.set(module, application);
    }
    named.push({ key, module, application });
  }
  refuseSharedNames([defaultApp, ...named]);
  return new ApplicationSet(defaultApp, named);
}

/** Two different modules with one `name`: the data of one would pass for the other's. */
function refuseSharedNames(all: readonly LoadedApplication[]): void {
  const byName = new Map<string, LoadedApplication>();
  for (const a of all) {
    const seen = byName.get(a.application.name);
    if (seen && seen.application !== a.application) {
      const label = (x: LoadedApplication): string =>
        x.key === undefined
          ? `app (${x.module ?? 'the built-in sample app'})`
          : `applications.${x.key} (${x.module})`;
      throw new AppvisorError('CONFIG_INVALID', {
        detail: `${label(seen)} and ${label(a)} are different modules that both call themselves '${a.application.name}'; each application needs a name of its own (its data is recorded by it), so rename one in its default export`,
      });
    }
    byName.set(a.application.name, a);
  }
}
