import {
  Composer,
  type Document,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  Lexer,
  LineCounter,
  type Node,
  Parser,
  type YAMLError,
} from 'yaml';
import { MAX_ALIASES, MAX_DEPTH, MAX_TOKENS } from './limits.js';
import { YamlSource } from './source.js';

/** A problem found while parsing, at a character offset in the text. */
export interface YamlProblem {
  readonly offset: number;
  readonly message: string;
  /** The document cannot be trusted past this problem: later checks would only add noise (or cost). */
  readonly fatal?: boolean;
}

/** One parsed YAML document (when the text holds one) and everything wrong with it. */
export interface ParsedYaml {
  readonly source: YamlSource;
  /** The document, unless the text is empty or could not be parsed at all. */
  readonly doc: Document.Parsed | undefined;
  /** No document at all: nothing but whitespace and comments. */
  readonly empty: boolean;
  readonly problems: readonly YamlProblem[];
}

const TOO_DEEP = `nesting is deeper than ${MAX_DEPTH} levels`;
const UNCLOSED = 'opened here is never closed';

/**
 * Parses YAML text keeping source positions, within the limits of `limits.ts`: too many
 * tokens or too deep nesting stop the parse before the (recursive, super-linear) composer
 * sees them. Also rejects what a manifest never needs and JSON cannot hold: several
 * documents, duplicate keys, non-scalar keys, recursive or excessive aliases.
 */
export function parseYaml(text: string): ParsedYaml {
  const lines = new LineCounter();
  const parser = new Parser(lines.addNewLine);
  const composer = new Composer({ uniqueKeys: false, prettyErrors: false });
  const guard = new TokenGuard();
  let stopped: YamlProblem | undefined;
  const docs: Document.Parsed[] = [];
  withQuietEnv(() => {
    lines.addNewLine(0);
    for (const lexeme of new Lexer().lex(text)) {
      stopped = guard.next(lexeme);
      if (stopped) return;
      for (const token of parser.next(lexeme)) for (const doc of composer.next(token)) docs.push(doc);
    }
    for (const token of parser.end()) for (const doc of composer.next(token)) docs.push(doc);
    for (const doc of composer.end()) docs.push(doc);
  });
  if (stopped) {
    return {
      source: new YamlSource(text, lines),
      doc: undefined,
      empty: false,
      problems: [{ ...stopped, fatal: true }],
    };
  }

  const filled = docs.filter((d) => !isBlank(d) || d.errors.length > 0);
  const doc = filled[0] ?? docs[0];
  const source = new YamlSource(text, lines, doc);
  if (!doc || (isBlank(doc) && doc.errors.length === 0)) {
    return {
      source,
      doc: undefined,
      empty: true,
      problems: [
        {
          offset: 0,
          message: 'the file is empty; expected an app manifest (apiVersion, kind, name, …)',
          fatal: true,
        },
      ],
    };
  }
  const problems: YamlProblem[] = [];
  const second = filled[1];
  if (second) {
    problems.push({
      offset: second.range[0],
      message: 'the file holds more than one YAML document (---); put each app in its own file',
    });
  }
  const yamlProblems = [...doc.errors, ...doc.warnings].map((err) => fromYamlError(err, text));
  // Everything after an unclosed quote is inside it: what yaml says about that text is noise.
  const unclosed = yamlProblems.find((p) => p.message.includes(UNCLOSED));
  for (const problem of yamlProblems) {
    if (unclosed === undefined || problem === unclosed || problem.offset < unclosed.offset)
      problems.push(problem);
  }
  problems.push(...checkStructure(doc, source));
  return { source, doc, empty: false, problems };
}

/** A document with nothing in it (`---` alone, or only comments); `~` and `null` are not blank. */
function isBlank(doc: Document.Parsed): boolean {
  const contents = doc.contents;
  return contents === null || (isScalar(contents) && contents.value === null && contents.source === '');
}

const QUIET_ENV: NodeJS.ProcessEnv = Object.freeze({});

/**
 * Runs `fn` with a plain, empty `process.env`. yaml's Parser and Composer look up
 * `process.env.LOG_TOKENS` / `LOG_STREAM` for every token, and on Node each lookup is a call
 * into the C++ environment store (measured: about 10% of the time to load a folder of typical
 * manifests). `fn` is synchronous, so no other code can observe the swap.
 */
function withQuietEnv<T>(fn: () => T): T {
  const env = process.env;
  process.env = QUIET_ENV;
  try {
    return fn();
  } finally {
    process.env = env;
  }
}

function fromYamlError(err: YAMLError, text: string): YamlProblem {
  const offset = err.pos[0];
  if (err.code === 'RESOURCE_EXHAUSTION') return { offset, message: TOO_DEEP, fatal: true };
  if (err.code === 'MISSING_CHAR' && /closing ["']quote/.test(err.message)) {
    // yaml reports an unclosed quote where the text ends; the user needs where it opens.
    const quote = err.message.includes('"') ? '"' : "'";
    return {
      offset: quotedScalarStart(text, offset) ?? offset,
      message: `YAML syntax error: the quote (${quote}) ${UNCLOSED}`,
      fatal: true,
    };
  }
  if (err.code === 'TAG_RESOLVE_FAILED') {
    return { offset, message: `unsupported YAML tag: ${lowerFirst(err.message)}`, fatal: true };
  }
  return { offset, message: `YAML syntax error: ${lowerFirst(err.message)}`, fatal: true };
}

/**
 * Where the quoted scalar that runs up to `end` starts (its opening quote): the text is lexed
 * again, which only happens for a file with this error and stays within the token limit the
 * first pass checked.
 */
function quotedScalarStart(text: string, end: number): number | undefined {
  let offset = 0;
  let start: number | undefined;
  withQuietEnv(() => {
    for (const lexeme of new Lexer().lex(text)) {
      if (lexeme === '\x02' || lexeme === '\x1f' || lexeme === '\x18') continue;
      const first = lexeme.charAt(0);
      if ((first === '"' || first === "'") && offset < end) start = offset;
      offset += lexeme.length;
      if (offset >= end) return;
    }
  });
  return start;
}

function lowerFirst(message: string): string {
  const firstLine = message.split('\n', 1)[0] ?? message;
  return firstLine.charAt(0).toLowerCase() + firstLine.slice(1);
}

/**
 * Stops lexing early when the text is too big a job: too many tokens, or nesting deeper than
 * MAX_DEPTH. Block nesting is estimated from the columns where `- `, `? ` and `key:` open
 * collections (it never over-counts; the exact check runs on the parsed document).
 */
class TokenGuard {
  #offset = 0;
  #count = 0;
  #column = 0;
  #flow = 0;
  readonly #blocks: number[] = [];
  #nodeColumn = -1;

  next(lexeme: string): YamlProblem | undefined {
    // Synthetic lexer markers (document, scalar, flow-error-end) are not part of the text.
    if (lexeme === '\x02' || lexeme === '\x1f' || lexeme === '\x18') return undefined;
    const at = this.#offset;
    if (++this.#count > MAX_TOKENS) {
      return {
        offset: at,
        message: `the file is too complex: more than ${MAX_TOKENS} YAML tokens (manifests are meant to be small)`,
      };
    }
    const problem = this.#structure(lexeme, at);
    this.#offset += lexeme.length;
    const newline = lexeme.lastIndexOf('\n');
    this.#column = newline === -1 ? this.#column + lexeme.length : lexeme.length - newline - 1;
    return problem;
  }

  #structure(lexeme: string, at: number): YamlProblem | undefined {
    switch (lexeme) {
      case '[':
      case '{':
        this.#flow++;
        this.#nodeColumn = -1;
        return this.#depthProblem(at);
      case ']':
      case '}':
        this.#flow = Math.max(0, this.#flow - 1);
        return undefined;
      case '\n':
      case '\r\n':
        this.#nodeColumn = -1;
        return undefined;
      case '-':
      case '?':
        if (this.#flow > 0) return undefined;
        this.#nodeColumn = -1;
        return this.#open(this.#column, at);
      case ':':
        if (this.#flow > 0 || this.#nodeColumn < 0) return undefined;
        {
          const column = this.#nodeColumn;
          this.#nodeColumn = -1;
          return this.#open(column, at);
        }
    }
    const first = lexeme.charAt(0);
    if (first === ' ' || first === '\t') return undefined;
    if (
      first === '#' ||
      first === '|' ||
      first === '>' ||
      first === '%' ||
      lexeme === '---' ||
      lexeme === '...'
    ) {
      this.#nodeColumn = -1;
    } else if (this.#nodeColumn < 0) {
      // A scalar, alias, anchor or tag: it may turn out to be a key when ':' follows.
      this.#nodeColumn = this.#column;
    }
    return undefined;
  }

  #open(column: number, at: number): YamlProblem | undefined {
    const blocks = this.#blocks;
    while (blocks.length > 0 && blocks[blocks.length - 1]! > column) blocks.pop();
    if (blocks[blocks.length - 1] !== column) blocks.push(column);
    return this.#depthProblem(at);
  }

  #depthProblem(at: number): YamlProblem | undefined {
    return this.#blocks.length + this.#flow > MAX_DEPTH ? { offset: at, message: TOO_DEEP } : undefined;
  }
}

/** Exact checks on the parsed document, depth-first; never descends past MAX_DEPTH. */
function checkStructure(doc: Document.Parsed, source: YamlSource): YamlProblem[] {
  const problems: YamlProblem[] = [];
  const ancestors = new Set<Node>();
  let aliases = 0;

  const visit = (node: unknown, depth: number): void => {
    if (isAlias(node)) {
      aliases++;
      if (aliases === MAX_ALIASES + 1) {
        problems.push({
          offset: start(node),
          message: `too many aliases (more than ${MAX_ALIASES})`,
          fatal: true,
        });
      }
      const target = node.resolve(doc);
      if (target === undefined) {
        problems.push({
          offset: start(node),
          message: `alias *${node.source} refers to no anchor &${node.source} before it`,
          fatal: true,
        });
      } else if (ancestors.has(target)) {
        problems.push({
          offset: start(node),
          message: `alias *${node.source} refers to a node that contains it`,
          fatal: true,
        });
      }
      return;
    }
    if (!isMap(node) && !isSeq(node)) return;
    if (depth > MAX_DEPTH) {
      problems.push({ offset: start(node), message: TOO_DEEP, fatal: true });
      return;
    }
    ancestors.add(node);
    if (isSeq(node)) {
      for (const item of node.items) visit(item, depth + 1);
    } else {
      const seen = new Map<string, number>();
      for (const pair of node.items) {
        const key = pair.key;
        if (!isScalar(key)) {
          problems.push({
            offset: start(key) ?? start(node),
            message: 'keys must be plain values, not lists, mappings or aliases',
            fatal: true,
          });
        } else {
          const name = String(key.value);
          const first = seen.get(name);
          if (first === undefined) seen.set(name, start(key));
          else {
            const { line } = source.position(first);
            problems.push({
              offset: start(key),
              message: `duplicate key '${name}' (already set on line ${line})`,
            });
          }
        }
        visit(pair.value, depth + 1);
      }
    }
    ancestors.delete(node);
  };

  visit(doc.contents, 1);
  return problems;
}

function start(node: unknown): number {
  return (node as Node | null)?.range?.[0] ?? 0;
}
