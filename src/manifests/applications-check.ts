/**
 * Where manifests meet the settings' applications (SPEC §8.6): a manifest whose `application`
 * names none of settings `applications` is an invalid manifest, with `file:line:col` at the
 * value, the known names and a likely one. Like every invalid manifest it is never a removal:
 * the app keeps its last applied spec (SPEC §4). `validate`, `plan`, `apply` and `serve` run
 * this same check on what they load.
 */
import path from 'node:path';
import { readTextFileSync } from './files.js';
import { parseYaml } from './parse.js';
import { closest } from './suggest.js';
import type { InvalidFile, LoadedManifest, ManifestSet } from './types.js';

/** The names a manifest's `application` may take: the keys of settings `applications`, sorted. */
export function knownApplications(settings: {
  readonly applications?: Readonly<Record<string, string>>;
}): string[] {
  return Object.keys(settings.applications ?? {}).sort();
}

/** `set` with every manifest naming an application outside `known` (settings keys) moved to its invalid files. */
export function checkApplications(set: ManifestSet, known: readonly string[]): ManifestSet {
  const apps: LoadedManifest[] = [];
  const invalid: InvalidFile[] = [];
  for (const app of set.apps) {
    const picked = app.manifest.application;
    if (picked === undefined || known.includes(picked)) {
      apps.push(app);
      continue;
    }
    const at = locate(path.join(set.dir, path.basename(app.file)));
    const guess = closest(picked, known);
    const listed =
      known.length === 0
        ? 'settings applications lists none (add applications: { <name>: <module> } to appvisor.yaml)'
        : `known: ${known.join(', ')}`;
    const message = `application '${picked}' is not listed under applications in appvisor.yaml (${listed})${guess ? `; did you mean '${guess}'?` : ''}; or remove application to run the default one`;
    invalid.push(
      Object.freeze({
        file: app.file,
        name: app.manifest.name,
        errors: Object.freeze([{ file: app.file, ...at, message }]),
      }),
    );
  }
  if (invalid.length === 0) return set;
  return Object.freeze({
    dir: set.dir,
    apps: Object.freeze(apps),
    invalid: Object.freeze([...set.invalid, ...invalid]),
  });
}

/** Where `application`'s value is in a manifest file (re-read: only for a file that has this error). */
function locate(file: string): { line: number; column: number } {
  const read = readTextFileSync(file);
  if (!read.ok) return { line: 1, column: 1 };
  const { source } = parseYaml(read.text);
  return source.position(source.locate(['application']).valueOffset);
}
