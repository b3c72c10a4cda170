import type { LoadedManifest, ManifestSet } from '../manifests/types.js';
import type { Desired } from './model.js';

/** Desired state from a loaded manifest set: the valid manifests by name, and the errors. */
export function toDesired(set: ManifestSet): Desired {
  const apps = new Map<string, LoadedManifest>();
  for (const loaded of set.apps) apps.set(loaded.manifest.name, loaded);
  const errors = set.invalid.flatMap((f) => f.errors);
  return { apps, invalid: set.invalid, errors };
}
