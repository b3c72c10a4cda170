import { readFileSync } from 'node:fs';
import { Ajv, type AnySchemaObject, type ErrorObject, type ValidateFunction } from 'ajv';
import type { YamlProblem } from './parse.js';
import type { YamlSource } from './source.js';
import { didYouMean } from './suggest.js';

function readSchema(file: string): AnySchemaObject {
  // Same relative path from src/manifests/ and dist/manifests/.
  return JSON.parse(
    readFileSync(new URL(`../../schema/${file}`, import.meta.url), 'utf8'),
  ) as AnySchemaObject;
}

/** schema/app.schema.json, the single source of the manifest format. */
export const APP_SCHEMA: AnySchemaObject = readSchema('app.schema.json');
/** schema/appvisor.schema.json, the format of appvisor.yaml. */
export const SETTINGS_SCHEMA: AnySchemaObject = readSchema('appvisor.schema.json');

const ajv = new Ajv({ allErrors: true, verbose: true, strictTypes: true, allowUnionTypes: true });
// Editors (VS Code, yaml-language-server) show these messages; we use them too.
ajv.addVocabulary(['patternErrorMessage', 'errorMessage']);

/** Compiled once per process. */
export const validateAppSchema: ValidateFunction = ajv.compile(APP_SCHEMA);
export const validateSettingsSchema: ValidateFunction = ajv.compile(SETTINGS_SCHEMA);

type Path = readonly string[];

/**
 * Runs a compiled schema on a value parsed from `source` and turns every error into a
 * message with the offset of the node it is about: an unknown field points at its key,
 * a missing one at the mapping that lacks it, anything else at the value.
 * Values at `skip` offsets (scalars whose interpolation failed) are not reported again.
 */
export function schemaProblems(
  validate: ValidateFunction,
  value: unknown,
  source: YamlSource,
  skip: ReadonlySet<number> = new Set(),
): YamlProblem[] {
  if (validate(value)) return [];
  const problems: YamlProblem[] = [];
  const seen = new Set<string>();
  const errors = validate.errors ?? [];
  // A value of the wrong type fails its enum or pattern too: the type error says it all.
  const wrongType = new Set(errors.filter((e) => e.keyword === 'type').map((e) => e.instancePath));
  // A mapping whose choice field is invalid (database.mode: new-conection) also fails the
  // if/then/else rules that depend on it; the choice's own error says what to fix.
  const badChoice = new Set(
    errors
      .filter((e) => e.keyword === 'enum')
      .map((e) => e.instancePath.slice(0, e.instancePath.lastIndexOf('/'))),
  );
  for (const err of errors) {
    if (err.keyword !== 'type' && wrongType.has(err.instancePath)) continue;
    if (badChoice.has(err.instancePath) && /\/(then|else)\//.test(err.schemaPath)) continue;
    const described = describe(err);
    if (!described) continue;
    const at = source.locate(described.path);
    if (at.found && skip.has(at.valueOffset)) continue;
    const offset = described.atKey && at.found ? (at.keyOffset ?? at.valueOffset) : at.valueOffset;
    const id = `${offset}\0${described.message}`;
    if (seen.has(id)) continue;
    seen.add(id);
    problems.push({ offset, message: described.message });
  }
  return problems;
}

interface Described {
  readonly path: Path;
  readonly atKey: boolean;
  readonly message: string;
}

const TYPE_WORDS: Readonly<Record<string, string>> = {
  string: 'text',
  boolean: 'true or false',
  object: 'a mapping (key: value pairs)',
  array: 'a list',
  integer: 'a whole number',
  number: 'a number',
  null: 'empty',
  // idleStop: a duration, or 0 (off).
  'string,integer': 'a duration such as 15m, or off',
};

const REQUIRED_HINTS: Readonly<Record<string, string>> = {
  apiVersion: ' (add `apiVersion: appvisor/v1`)',
  kind: ' (add `kind: App`)',
  name: " (the app's ID, e.g. `name: crm`)",
  'database.connection': ' with mode: new-connection (add `connection: { url: … }`)',
};

function describe(err: ErrorObject): Described | undefined {
  const path = pointerToPath(err.instancePath);
  const label = labelOf(path);
  const params = err.params as Record<string, unknown>;
  const parent = (err.parentSchema ?? {}) as Record<string, unknown>;
  switch (err.keyword) {
    case 'if':
      // The failing then/else subschema reports the actual problem.
      return undefined;
    case 'required': {
      const field = labelOf([...path, String(params.missingProperty)]);
      return {
        path,
        atKey: false,
        message: `missing required field '${field}'${REQUIRED_HINTS[field] ?? ''}`,
      };
    }
    case 'additionalProperties': {
      const key = String(params.additionalProperty);
      const allowed = Object.keys((parent.properties as object | undefined) ?? {});
      const where = path.length === 0 ? '' : ` in ${label}`;
      const hint = didYouMean(key, allowed) || `; allowed: ${allowed.join(', ')}`;
      return { path: [...path, key], atKey: true, message: `unknown field '${key}'${where}${hint}` };
    }
    case 'type': {
      const expected = String(params.type);
      const yaml11 =
        expected === 'boolean' && typeof err.data === 'string' && /^(yes|no|on|off|y|n)$/i.test(err.data)
          ? ' (YAML 1.2 reads it as text)'
          : '';
      return {
        path,
        atKey: false,
        message: `${label} must be ${TYPE_WORDS[expected] ?? expected}, got ${show(err.data, label)}${yaml11}`,
      };
    }
    case 'enum': {
      const allowed = (params.allowedValues as unknown[]).map(String);
      const list = allowed.join(', ');
      const hint = didYouMean(String(err.data), allowed);
      return {
        path,
        atKey: false,
        message: `${label} ${show(err.data, label)} is not one of: ${list}${hint}`,
      };
    }
    case 'const':
      return {
        path,
        atKey: false,
        message: `${label} must be '${String(params.allowedValue)}', got ${show(err.data, label)}`,
      };
    case 'minimum':
    case 'maximum':
      // A number where a duration is expected (idleStop: only 0, for off): the pattern's words say what fits.
      if (typeof parent.patternErrorMessage !== 'string') {
        return { path, atKey: false, message: `${label} ${err.message ?? 'is not valid'}` };
      }
      return patternProblem(err, parent, path, label);
    case 'pattern':
      return patternProblem(err, parent, path, label);
    case 'not': {
      const message =
        typeof parent.errorMessage === 'string' ? sentence(parent.errorMessage) : `${label} ${err.message}`;
      const forbidden = (err.schema as { required?: unknown } | undefined)?.required;
      if (Array.isArray(forbidden) && typeof forbidden[0] === 'string') {
        return { path: [...path, forbidden[0]], atKey: true, message };
      }
      return { path, atKey: false, message };
    }
    case 'minItems': {
      const limit = Number(params.limit);
      return {
        path,
        atKey: false,
        message: `${label} must list at least ${limit} ${limit === 1 ? 'entry' : 'entries'}`,
      };
    }
    case 'uniqueItems': {
      // Ajv names both copies; point at the later one.
      const index = Math.max(Number(params.i), Number(params.j));
      const item = Array.isArray(err.data) ? err.data[index] : undefined;
      return {
        path: [...path, String(index)],
        atKey: false,
        message: `${label} lists ${show(item, label)} twice`,
      };
    }
    default:
      return { path, atKey: false, message: `${label} ${err.message ?? 'is not valid'}` };
  }
}

/** A value that does not fit its field's pattern, in the pattern's own words when it has them. */
function patternProblem(
  err: ErrorObject,
  parent: Record<string, unknown>,
  path: Path,
  label: string,
): Described {
  const why =
    typeof parent.patternErrorMessage === 'string' ? sentence(parent.patternErrorMessage) : err.message;
  const value = isSensitive(label) ? '' : ` ${show(err.data, label)}`;
  return { path, atKey: false, message: `${label}${value} is not valid: ${why}` };
}

function pointerToPath(pointer: string): Path {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((part) => part.replaceAll('~1', '/').replaceAll('~0', '~'));
}

/** `database.mode`, `domains[0]`; the root is "the file". */
export function labelOf(path: Path): string {
  let label = '';
  for (const part of path) {
    if (/^\d+$/.test(part)) label += `[${part}]`;
    else label += label === '' ? part : `.${part}`;
  }
  return label === '' ? 'the file' : label;
}

// Database URLs (a manifest's connection, appvisor.yaml's database.url) carry passwords: never echo them.
function isSensitive(label: string): boolean {
  return label.startsWith('database.connection') || label === 'database.url';
}

/** A value as a user would recognise it in a message. */
function show(value: unknown, label: string): string {
  if (value === null || value === undefined) return 'an empty value';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') {
    if (isSensitive(label)) return 'text';
    const short = value.length > 60 ? `${value.slice(0, 57)}…` : value;
    return `'${short}'`;
  }
  return String(value);
}

/** A schema message ("Use …. ") as part of ours ("use …"). */
function sentence(message: string): string {
  const trimmed = message.trim().replace(/\.$/, '');
  return trimmed.charAt(0).toLowerCase() + trimmed.slice(1);
}
