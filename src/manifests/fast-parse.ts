import { asPlainScalar, expand } from './interpolate.js';
import { MAX_DEPTH, MAX_TOKENS } from './limits.js';
import type { Position } from './source.js';

/**
 * The plain data of a manifest read by {@link fastParse}, interpolated, with where the values
 * near the top begin.
 */
export interface FastParsed {
  readonly value: Record<string, unknown>;
  /** The environment variables the text refers to, in the order they appear. */
  readonly variables: ReadonlySet<string>;
  /**
   * Where a value begins, for values of the top-level mapping (`name`) and of the collections
   * directly in it (`database\0name`, `domains\0` + index). Empty values have no entry.
   */
  readonly spots: ReadonlyMap<string, Position>;
}

/**
 * Longest text the fast path reads. Each YAML token is at least one character, so this keeps
 * a text far inside MAX_TOKENS: the token limit can only be hit on the position-keeping path.
 */
const FAST_MAX_CHARS = 16 * 1024;
/** Deepest nesting the fast path follows (far inside MAX_DEPTH, which only the full path enforces). */
const FAST_MAX_DEPTH = 16;

// Checked when the module loads: the two paths must agree on every limit.
if (FAST_MAX_CHARS >= MAX_TOKENS || FAST_MAX_DEPTH >= MAX_DEPTH) {
  throw new Error('the fast manifest path must stay inside the limits of limits.ts');
}

/** Only printable ASCII, spaces and line ends: no tabs, no control or non-ASCII characters. */
const UNUSUAL_CHARACTER = /[^\n\r\x20-\x7e]/;
const LONE_CR = /\r(?!\n)/;
/** Keys YAML does not read as text (null, booleans). */
const NON_TEXT_KEY = /^(?:null|Null|NULL|true|True|TRUE|false|False|FALSE)$/;
/** Names a plain object already has (`__proto__` would even set the prototype). */
const INHERITED = new Set(Object.getOwnPropertyNames(Object.prototype));
/** Whole numbers short enough that Number() and YAML's parseInt() agree. */
const INTEGER = /^[-+]?[0-9]{1,15}$/;
/** Every other number YAML 1.2's core schema reads (octal, hex, floats, infinity, NaN): left to the full path. */
const OTHER_NUMBER =
  /^(?:0o[0-7]+|0x[0-9a-fA-F]+|[-+]?[0-9]+|[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN|[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?)$/;
/** Only what starts like this can be a number. */
const NUMBER_START = /^[-+.0-9]/;
/** Character classes of printable ASCII, by code. */
const KEY_START = 1;
const KEY_PART = 2;
/** Gives a plain scalar a meaning other than text when it starts it. */
const INDICATOR = 4;
/** Ends a plain scalar inside `[…]` or `{…}` (`#` and `:` are not decided there). */
const FLOW_STOP = 8;
const CLASSES = new Uint8Array(128);
for (let code = 0; code < 128; code++) {
  const char = String.fromCharCode(code);
  CLASSES[code] =
    (/[A-Za-z_]/.test(char) ? KEY_START : 0) |
    (/[A-Za-z0-9_-]/.test(char) ? KEY_PART : 0) |
    ('-?:,[]{}#&*!|>\'"%@`'.includes(char) ? INDICATOR : 0) |
    (',[]{}#:'.includes(char) ? FLOW_STOP : 0);
}

const SPACE = 0x20;
const HASH = 0x23;

/** Thrown inside the parser when the text leaves the subset it reads; never escapes. */
const NOT_FAST: unique symbol = Symbol('not fast');

/**
 * Reads the subset of YAML that manifests are written in, without the position-keeping
 * document: block mappings and lists, one-line `[…]` and `{…}`, plain scalars, quoted
 * scalars without escapes, comments. Interpolates `${VAR}` as {@link interpolate} does.
 *
 * Returns undefined for anything outside that subset, and for anything the full path would
 * report (a duplicate key, a missing variable, too long or too deep): the caller then takes
 * the position-keeping path, which gives every message its line and column. On what it
 * accepts, the value is exactly what parse → interpolate → toJS gives.
 */
export function fastParse(text: string, env: NodeJS.ProcessEnv): FastParsed | undefined {
  if (text.length > FAST_MAX_CHARS || UNUSUAL_CHARACTER.test(text)) return undefined;
  if (text.includes('\r') && LONE_CR.test(text)) return undefined;
  try {
    return new FastParser(text, env).parse();
  } catch (err) {
    if (err === NOT_FAST) return undefined;
    throw err;
  }
}

class FastParser {
  readonly #text: string;
  readonly #env: NodeJS.ProcessEnv;
  readonly #variables = new Set<string>();
  readonly #spots = new Map<string, Position>();
  // The lines that hold something other than spaces and comments.
  readonly #lineNumbers: number[] = [];
  readonly #lineStarts: number[] = [];
  /** Where the content starts (after the indentation). */
  readonly #starts: number[] = [];
  /** Where the content ends (before `\r\n` or `\n`). */
  readonly #ends: number[] = [];
  readonly #indents: number[] = [];
  /** The current line, an index into the arrays above. */
  #line = 0;
  /**
   * Where the last quoted scalar, flow collection or flow entry read ends (the offset after
   * it), or the colon after the last key: kept here rather than returned in a pair, which
   * would allocate an array per value.
   */
  #next = 0;

  constructor(text: string, env: NodeJS.ProcessEnv) {
    this.#text = text;
    this.#env = env;
    let lineStart = 0;
    let lineNumber = 1;
    while (lineStart < text.length) {
      const newline = text.indexOf('\n', lineStart);
      const next = newline === -1 ? text.length : newline + 1;
      let end = newline === -1 ? text.length : newline;
      if (end > lineStart && text.charCodeAt(end - 1) === 0x0d) end--;
      let start = lineStart;
      while (start < end && text.charCodeAt(start) === SPACE) start++;
      if (start < end && text.charCodeAt(start) !== HASH) {
        this.#lineNumbers.push(lineNumber);
        this.#lineStarts.push(lineStart);
        this.#starts.push(start);
        this.#ends.push(end);
        this.#indents.push(start - lineStart);
      }
      lineStart = next;
      lineNumber++;
    }
  }

  parse(): FastParsed {
    if (this.#indents.length === 0 || this.#indents[0] !== 0) throw NOT_FAST;
    const value = this.#map(0, 1, '');
    if (this.#line < this.#indents.length) throw NOT_FAST;
    return { value, variables: this.#variables, spots: this.#spots };
  }

  /** The indentation of the current line, or -1 past the last one. */
  #indent(): number {
    return this.#line < this.#indents.length ? this.#indents[this.#line]! : -1;
  }

  /** Whether the current line starts a list entry (`- `). */
  #isEntry(): boolean {
    const start = this.#starts[this.#line]!;
    return (
      this.#text.charCodeAt(start) === 0x2d /* - */ &&
      (start + 1 === this.#ends[this.#line] || this.#text.charCodeAt(start + 1) === SPACE)
    );
  }

  /**
   * The path of a child of the collection at `level` (1: the top level) while it may lead to
   * a spot: `name`, and what is in `database` and `domains` (all the cross-file checks use).
   */
  #childPath(level: number, path: string, step: string): string | undefined {
    if (level === 1) return step;
    return level === 2 && (path === 'database' || path === 'domains') ? `${path}\0${step}` : undefined;
  }

  #spot(path: string | undefined, offset: number): void {
    if (path === undefined || (path !== 'name' && !path.includes('\0'))) return;
    const line = this.#line;
    this.#spots.set(path, { line: this.#lineNumbers[line]!, column: offset - this.#lineStarts[line]! + 1 });
  }

  /** A block mapping whose keys are at `indent`. */
  #map(indent: number, level: number, path: string): Record<string, unknown> {
    if (level > FAST_MAX_DEPTH) throw NOT_FAST;
    const text = this.#text;
    const map: Record<string, unknown> = {};
    while (this.#indent() === indent) {
      const start = this.#starts[this.#line]!;
      const end = this.#ends[this.#line]!;
      const key = this.#key(start, end, map);
      let at = this.#next + 1;
      if (at < end && text.charCodeAt(at) !== SPACE) throw NOT_FAST;
      while (at < end && text.charCodeAt(at) === SPACE) at++;
      const childPath = this.#childPath(level, path, key);
      if (at === end || text.charCodeAt(at) === HASH) {
        this.#line++;
        map[key] = this.#nested(indent, level + 1, childPath);
      } else {
        this.#spot(childPath, at);
        map[key] = this.#inline(at, end, level + 1, childPath);
        this.#line++;
        // A deeper line after a value continues it (or is an error): not read here.
        if (this.#indent() > indent) throw NOT_FAST;
      }
    }
    if (this.#indent() > indent) throw NOT_FAST;
    return map;
  }

  /** The value of a key with nothing after its colon: a block below it, or null. */
  #nested(parentIndent: number, level: number, path: string | undefined): unknown {
    const indent = this.#indent();
    if (indent > parentIndent) {
      this.#spot(path, this.#starts[this.#line]!);
      return this.#isEntry()
        ? this.#list(indent, parentIndent, level, path ?? '')
        : this.#map(indent, level, path ?? '');
    }
    // A list may sit at its key's own indentation.
    if (indent === parentIndent && this.#isEntry()) {
      this.#spot(path, this.#starts[this.#line]!);
      return this.#list(indent, parentIndent, level, path ?? '');
    }
    return null;
  }

  /** A block list whose `- ` are at `indent`. */
  #list(indent: number, parentIndent: number, level: number, path: string): unknown[] {
    if (level > FAST_MAX_DEPTH) throw NOT_FAST;
    const text = this.#text;
    const list: unknown[] = [];
    while (this.#indent() === indent && this.#isEntry()) {
      const end = this.#ends[this.#line]!;
      let at = this.#starts[this.#line]! + 1;
      while (at < end && text.charCodeAt(at) === SPACE) at++;
      // An empty entry, or one with a block below it.
      if (at === end || text.charCodeAt(at) === HASH) throw NOT_FAST;
      const childPath = this.#childPath(level, path, String(list.length));
      this.#spot(childPath, at);
      list.push(this.#inline(at, end, level + 1, childPath));
      this.#line++;
      if (this.#indent() > indent) throw NOT_FAST;
    }
    // Something other than an entry at the list's own (deeper) indentation is an error.
    if (indent > parentIndent && this.#indent() === indent) throw NOT_FAST;
    return list;
  }

  /** A value that starts at `at` and takes the rest of the line (a comment may follow). */
  #inline(at: number, end: number, level: number, path: string | undefined): unknown {
    const text = this.#text;
    const first = text.charCodeAt(at);
    let value: unknown;
    if (first === 0x22 /* " */ || first === 0x27 /* ' */) {
      value = this.#quoted(at, end);
    } else if (first === 0x5b /* [ */ || first === 0x7b /* { */) {
      value = this.#flow(at, end, level, path);
    } else {
      let stop = at + 1;
      while (stop < end && !(text.charCodeAt(stop) === HASH && text.charCodeAt(stop - 1) === SPACE)) stop++;
      const raw = text.slice(at, stop).trimEnd();
      // `a: b: c` and `a: b:` are nested mappings (errors in YAML) or keys: not read here.
      if (raw.includes(': ') || raw.endsWith(':')) throw NOT_FAST;
      return this.#plain(raw);
    }
    const after = this.#next;
    let rest = after;
    while (rest < end && text.charCodeAt(rest) === SPACE) rest++;
    if (rest < end && (text.charCodeAt(rest) !== HASH || rest === after)) throw NOT_FAST;
    return value;
  }

  /** A quoted scalar closed on its own line; double quotes without escapes. Sets #next. */
  #quoted(at: number, end: number): unknown {
    const text = this.#text;
    const quote = text[at]!;
    let close = text.indexOf(quote, at + 1);
    if (quote === "'") {
      // '' inside single quotes is one quote.
      while (close !== -1 && close + 1 < end && text[close + 1] === "'") close = text.indexOf("'", close + 2);
    }
    if (close === -1 || close >= end) throw NOT_FAST;
    let raw = text.slice(at + 1, close);
    if (quote === '"') {
      if (raw.includes('\\')) throw NOT_FAST;
    } else if (raw.includes("''")) {
      raw = raw.replaceAll("''", "'");
    }
    this.#next = close + 1;
    return this.#interpolated(raw, false);
  }

  /** A `[…]` or `{…}` that closes on the same line. Sets #next. */
  #flow(at: number, end: number, level: number, path: string | undefined): unknown {
    if (level > FAST_MAX_DEPTH) throw NOT_FAST;
    const text = this.#text;
    const isList = text.charCodeAt(at) === 0x5b;
    const close = isList ? 0x5d /* ] */ : 0x7d; /* } */
    const list: unknown[] = [];
    const map: Record<string, unknown> = {};
    let p = this.#skipSpaces(at + 1, end);
    if (p < end && text.charCodeAt(p) === close) {
      this.#next = p + 1;
      return isList ? list : map;
    }
    for (;;) {
      if (isList) {
        const childPath = path === undefined ? undefined : this.#childPath(level, path, String(list.length));
        list.push(this.#flowNode(p, end, level + 1, childPath));
      } else {
        const key = this.#key(p, end, map);
        p = this.#next + 1;
        if (p >= end || text.charCodeAt(p) !== SPACE) throw NOT_FAST;
        p = this.#skipSpaces(p, end);
        const childPath = path === undefined ? undefined : this.#childPath(level, path, key);
        map[key] = this.#flowNode(p, end, level + 1, childPath);
      }
      p = this.#skipSpaces(this.#next, end);
      if (p >= end) throw NOT_FAST;
      const next = text.charCodeAt(p);
      if (next === close) {
        this.#next = p + 1;
        return isList ? list : map;
      }
      if (next !== 0x2c /* , */) throw NOT_FAST;
      p = this.#skipSpaces(p + 1, end);
      // A trailing comma, or an empty entry.
      if (p >= end || text.charCodeAt(p) === close || text.charCodeAt(p) === 0x2c) throw NOT_FAST;
    }
  }

  /** One entry inside `[…]` or value inside `{…}`. Sets #next. */
  #flowNode(at: number, end: number, level: number, path: string | undefined): unknown {
    if (at >= end) throw NOT_FAST;
    const text = this.#text;
    this.#spot(path, at);
    const first = text.charCodeAt(at);
    if (first === 0x22 || first === 0x27) return this.#quoted(at, end);
    if (first === 0x5b || first === 0x7b) return this.#flow(at, end, level, path);
    let p = at;
    while (p < end && !(CLASSES[text.charCodeAt(p)]! & FLOW_STOP)) p++;
    if (p < end) {
      const stop = text.charCodeAt(p);
      if (stop !== 0x2c && stop !== 0x5d && stop !== 0x7d) throw NOT_FAST;
    }
    this.#next = p;
    return this.#plain(text.slice(at, p).trimEnd());
  }

  /**
   * A mapping key at `at` (letters, digits, `_` and `-`, not starting with a digit or `-`) and
   * the offset of the colon after it in #next; `map` is the mapping read so far.
   */
  #key(at: number, end: number, map: Record<string, unknown>): string {
    const text = this.#text;
    if (at >= end || !(CLASSES[text.charCodeAt(at)]! & KEY_START)) throw NOT_FAST;
    let p = at + 1;
    while (p < end && CLASSES[text.charCodeAt(p)]! & KEY_PART) p++;
    if (p >= end || text.charCodeAt(p) !== 0x3a /* : */) throw NOT_FAST;
    const key = text.slice(at, p);
    // A duplicate is an error the full path reports; inherited names would not stay plain keys.
    if (Object.hasOwn(map, key) || INHERITED.has(key) || NON_TEXT_KEY.test(key)) throw NOT_FAST;
    this.#next = p;
    return key;
  }

  #skipSpaces(at: number, end: number): number {
    let p = at;
    while (p < end && this.#text.charCodeAt(p) === SPACE) p++;
    return p;
  }

  /** A plain scalar as YAML 1.2's core schema reads it; numbers other than short integers are left to the full path. */
  #plain(raw: string): unknown {
    if (raw === '' || CLASSES[raw.charCodeAt(0)]! & INDICATOR) throw NOT_FAST;
    switch (raw) {
      case '~':
      case 'null':
      case 'Null':
      case 'NULL':
        return null;
      case 'true':
      case 'True':
      case 'TRUE':
        return true;
      case 'false':
      case 'False':
      case 'FALSE':
        return false;
    }
    if (NUMBER_START.test(raw)) {
      if (INTEGER.test(raw)) return Number(raw);
      // `24h`, `1.2.3` and `0x` are text.
      if (OTHER_NUMBER.test(raw)) throw NOT_FAST;
    }
    return this.#interpolated(raw, true);
  }

  /** A text value after `${VAR}` interpolation; a reference that fails is left to the full path. */
  #interpolated(raw: string, plain: boolean): unknown {
    if (!raw.includes('$')) return raw;
    const result = expand(raw, this.#env, this.#variables);
    if (!('value' in result)) throw NOT_FAST;
    return plain ? asPlainScalar(result.value) : result.value;
  }
}
