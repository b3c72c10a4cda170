import { type Document, isMap, isScalar, visit } from 'yaml';
import { applyDefaults, type ManifestInput } from './defaults.js';
import { fastParse } from './fast-parse.js';
import { manifestHash } from './hash.js';
import { interpolate } from './interpolate.js';
import { MAX_ALIASES, MAX_DEPTH } from './limits.js';
import { type ParsedYaml, parseYaml, type YamlProblem } from './parse.js';
import type { Position, YamlSource } from './source.js';
import type { AppManifest } from './types.js';
import { schemaProblems, validateAppSchema } from './validate.js';

/** A problem at a 1-based position in one file. */
export interface PositionedProblem extends Position {
  readonly message: string;
}

/** Where the nodes the cross-file checks may complain about are. */
export interface Spots {
  readonly name: Position;
  /** The node naming the database target (database.name or database.schema), or the name. */
  readonly database: Position;
  /** One per entry of `domains`. */
  readonly domains: readonly Position[];
}

/**
 * Everything one file yields on its own, before the checks across files. Plain data only
 * (no parsed document is kept), so loading thousands of files holds little memory.
 */
export interface FileCheck {
  /** The app name, when the file still yields a string `name` (even if it is invalid). */
  readonly name: string | undefined;
  /** Set only when there are no problems. */
  readonly manifest: AppManifest | undefined;
  /** {@link manifestHash} of the manifest. */
  readonly hash: string | undefined;
  /** Sorted by position. */
  readonly problems: readonly PositionedProblem[];
  readonly spots: Spots;
  /** The environment variables the file refers to: the result holds while they keep their values. */
  readonly variables: readonly string[];
}

/**
 * One manifest's text through the pipeline: parse (positions) → interpolate → to plain
 * data → schema → defaults (frozen). A problem that makes the data untrustworthy (a syntax
 * error, too deep, an alias bomb) ends it there; others (a duplicate key, a second document)
 * are reported together with whatever the schema finds.
 *
 * A well-formed valid file takes a fast path that skips the position-keeping parse; the
 * result is the same. `fastPath: false` sends every file through the full pipeline (the tests
 * compare the two).
 */
export function checkManifestText(
  text: string,
  env: NodeJS.ProcessEnv,
  opts: { readonly fastPath?: boolean } = {},
): FileCheck {
  return (opts.fastPath !== false && fastCheck(text, env)) || fullCheck(text, env);
}

/**
 * The common case, a well-formed valid manifest, without the position-keeping document:
 * undefined whenever the file is outside what {@link fastParse} reads or has any problem,
 * so that every message comes from {@link fullCheck} with its line and column. What it
 * returns is what fullCheck returns for the same text.
 */
function fastCheck(text: string, env: NodeJS.ProcessEnv): FileCheck | undefined {
  const parsed = fastParse(text, env);
  if (!parsed || !validateAppSchema(parsed.value)) return undefined;
  const manifest = applyDefaults(parsed.value as unknown as ManifestInput);
  const { spots } = parsed;
  const name = spots.get('name');
  if (!name) return undefined;
  const targetKey = manifest.database.mode === 'new-schema' ? 'schema' : 'name';
  const database = parsed.value.database as Record<string, unknown> | undefined;
  let target: Position | undefined = name;
  if (database !== undefined && Object.hasOwn(database, targetKey))
    target = spots.get(`database\0${targetKey}`);
  const domains = manifest.domains.map((_, index) => spots.get(`domains\0${index}`));
  if (!target || domains.includes(undefined)) return undefined;
  return {
    name: manifest.name,
    manifest,
    hash: manifestHash(manifest),
    problems: NO_PROBLEMS,
    spots: { name, database: target, domains: domains as Position[] },
    variables: [...parsed.variables],
  };
}

const NO_PROBLEMS: readonly PositionedProblem[] = Object.freeze([]);

/** Every file the fast path does not take: the position-keeping parse, then the checks. */
function fullCheck(text: string, env: NodeJS.ProcessEnv): FileCheck {
  const parsed = parseYaml(text);
  const check = checkParsed(parsed, text, env);
  const source = parsed.source;
  return {
    name: check.name,
    manifest: check.manifest,
    hash: check.manifest && manifestHash(check.manifest),
    problems: positioned(source, check.problems),
    spots: spotsOf(source, check.manifest),
    variables: [...(check.variables ?? [])],
  };
}

interface RawCheck {
  readonly name: string | undefined;
  readonly manifest: AppManifest | undefined;
  readonly problems: readonly YamlProblem[];
  readonly variables?: ReadonlySet<string>;
}

function checkParsed(parsed: ParsedYaml, text: string, env: NodeJS.ProcessEnv): RawCheck {
  const { source, doc } = parsed;
  if (!doc || parsed.problems.some((p) => p.fatal)) return failed(nameOf(parsed, text), parsed.problems);
  if (!isMap(doc.contents)) {
    const problem = { offset: doc.contents?.range?.[0] ?? 0, message: notAMapping(doc.contents) };
    return failed(undefined, [...parsed.problems, problem]);
  }
  const interpolation = interpolate(doc, env, text);
  const { variables } = interpolation;
  const before = [...parsed.problems, ...interpolation.problems];
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_ALIASES });
  } catch (err) {
    const bomb = err instanceof ReferenceError && /alias/i.test(err.message);
    const problem = bomb
      ? { offset: firstAlias(doc), message: 'aliases expand to too much data (a YAML alias bomb?)' }
      : { offset: 0, message: `cannot read the YAML: ${err instanceof Error ? err.message : String(err)}` };
    return { ...failed(nameOf(parsed, text), [...before, problem]), variables };
  }
  if (depthExceeds(value, MAX_DEPTH)) {
    const message = `nesting is deeper than ${MAX_DEPTH} levels once aliases are expanded`;
    return { ...failed(nameOf(parsed, text), [...before, { offset: firstAlias(doc), message }]), variables };
  }
  const skip = new Set<number>();
  for (const node of interpolation.failed) if (node.range) skip.add(node.range[0]);
  const problems = [...before, ...schemaProblems(validateAppSchema, value, source, skip)];
  const name = (value as { name?: unknown }).name;
  const named = typeof name === 'string' && !skip.has(locateName(source)) ? name : undefined;
  if (problems.length > 0) return { ...failed(named, problems), variables };
  return { name: named, manifest: applyDefaults(value as ManifestInput), problems: [], variables };
}

function failed(name: string | undefined, problems: readonly YamlProblem[]): RawCheck {
  return { name, manifest: undefined, problems };
}

function positioned(source: YamlSource, problems: readonly YamlProblem[]): PositionedProblem[] {
  return problems
    .map((problem) => ({ ...source.position(problem.offset), message: problem.message }))
    .sort((a, b) => a.line - b.line || a.column - b.column);
}

function spotsOf(source: YamlSource, manifest: AppManifest | undefined): Spots {
  const name = source.position(source.locate(['name']).valueOffset);
  if (!manifest) return { name, database: name, domains: [] };
  const target = source.locate(['database', manifest.database.mode === 'new-schema' ? 'schema' : 'name']);
  return {
    name,
    database: target.found ? source.position(target.valueOffset) : name,
    domains: manifest.domains.map((_, index) =>
      source.position(source.locate(['domains', index]).valueOffset),
    ),
  };
}

const NAME_LINE = /^name:[ \t]*(["']?)([a-z][a-z0-9_-]{0,39})\1[ \t]*(?:#.*)?$/m;

/**
 * The top-level `name` scalar, read straight from the document (even a broken one), or,
 * when the text could not be parsed at all, from a top-level `name:` line.
 */
function nameOf(parsed: ParsedYaml, text: string): string | undefined {
  const root = parsed.doc?.contents;
  if (!parsed.doc) return NAME_LINE.exec(text)?.[2];
  if (!isMap(root)) return undefined;
  const pair = root.items.find((item) => isScalar(item.key) && item.key.value === 'name');
  const value = isScalar(pair?.value) ? pair.value.value : undefined;
  return typeof value === 'string' && !value.includes('${') && value !== '' ? value : undefined;
}

function firstAlias(doc: Document.Parsed): number {
  let offset = 0;
  visit(doc, {
    Alias(_key, node) {
      offset = node.range?.[0] ?? 0;
      return visit.BREAK;
    },
  });
  return offset;
}

function locateName(source: YamlSource): number {
  const at = source.locate(['name']);
  return at.found ? at.valueOffset : -1;
}

function notAMapping(contents: unknown): string {
  const found = isScalar(contents) ? 'a single value' : 'a list';
  return `expected a mapping of fields (apiVersion, kind, name, …) at the top level, found ${found}`;
}

/** Whether a plain value (maybe sharing subtrees through aliases) nests deeper than `max`. */
function depthExceeds(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [next, depth] = stack.pop()!;
    if (next === null || typeof next !== 'object') continue;
    if (depth > max) return true;
    for (const child of Object.values(next)) stack.push([child, depth + 1]);
  }
  return false;
}
