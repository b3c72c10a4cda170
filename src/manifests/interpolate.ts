import { type Document, isMap, isScalar, isSeq, type Node, type Scalar } from 'yaml';
import type { YamlProblem } from './parse.js';

/** What interpolation changed and where it failed. */
export interface InterpolationResult {
  readonly problems: readonly YamlProblem[];
  /** Scalars left as written because a variable was missing: schema errors on them are noise. */
  readonly failed: ReadonlySet<Node>;
  /** Names of the environment variables the document refers to. */
  readonly variables: ReadonlySet<string>;
}

type Expansion = { readonly value: string } | { readonly error: string; readonly token: string };

/**
 * Replaces `${VAR}` and `${VAR:-default}` in every string value (keys are left alone) with
 * values from `env`, in place in the parsed document, so positions stay those of the file.
 * `${VAR:-default}` uses the default when VAR is unset or empty, as in the shell; `$${`
 * writes a literal `${`. Aliases are not followed: their anchors are visited where defined.
 * An unquoted value that becomes `true`, `false` or a whole number is read as one, as YAML
 * would have read it written out (`enabled: ${ENABLED:-true}`); quote it to keep text.
 */
export function interpolate(doc: Document.Parsed, env: NodeJS.ProcessEnv, text: string): InterpolationResult {
  const problems: YamlProblem[] = [];
  const failed = new Set<Node>();
  const variables = new Set<string>();

  const visit = (node: unknown): void => {
    if (isMap(node)) {
      for (const pair of node.items) visit(pair.value);
    } else if (isSeq(node)) {
      for (const item of node.items) visit(item);
    } else if (isScalar(node) && typeof node.value === 'string' && node.value.includes('$')) {
      const result = expand(node.value, env, variables);
      if ('value' in result) {
        node.value = node.type === 'PLAIN' ? asPlainScalar(result.value) : result.value;
      } else {
        failed.add(node);
        problems.push({ offset: offsetIn(node, result.token, text), message: result.error });
      }
    }
  };

  visit(doc.contents);
  return { problems, failed, variables };
}

const REFERENCE = /^([A-Za-z_][A-Za-z0-9_]*)(?::-([\s\S]*))?$/;

/** Expands one string; exported for tests. */
export function expand(input: string, env: NodeJS.ProcessEnv, variables?: Set<string>): Expansion {
  let out = '';
  let i = 0;
  while (i < input.length) {
    const dollar = input.indexOf('$', i);
    if (dollar === -1) {
      out += input.slice(i);
      break;
    }
    out += input.slice(i, dollar);
    if (input.startsWith('$${', dollar)) {
      out += '${';
      i = dollar + 3;
      continue;
    }
    if (input[dollar + 1] !== '{') {
      out += '$';
      i = dollar + 1;
      continue;
    }
    const close = input.indexOf('}', dollar + 2);
    if (close === -1) {
      return { error: 'unterminated ${ (write $${ for a literal ${)', token: '${' };
    }
    const token = input.slice(dollar, close + 1);
    const match = REFERENCE.exec(input.slice(dollar + 2, close));
    if (!match) {
      return { error: `${token} is not a variable reference; use \${NAME} or \${NAME:-default}`, token };
    }
    const name = match[1]!;
    variables?.add(name);
    const fallback = match[2];
    const value = env[name];
    if (fallback !== undefined) {
      out += value === undefined || value === '' ? fallback : value;
    } else if (value === undefined) {
      return {
        error: `environment variable ${name} is not set (set it, or give a default: \${${name}:-value})`,
        token,
      };
    } else {
      out += value;
    }
    i = close + 1;
  }
  return { value: out };
}

const BOOLEAN = /^(?:true|True|TRUE|false|False|FALSE)$/;
const INTEGER = /^[-+]?[0-9]{1,15}$/;

/** How a plain (unquoted) scalar that interpolation changed is read: true, false, a whole number or text. */
export function asPlainScalar(value: string): string | boolean | number {
  if (BOOLEAN.test(value)) return value.toLowerCase() === 'true';
  if (INTEGER.test(value)) return Number(value);
  return value;
}

/** Offset of `token` inside the scalar's source text, or the scalar's start. */
function offsetIn(node: Scalar, token: string, text: string): number {
  const [start, end] = node.range ?? [0, 0];
  const at = text.slice(start, end).indexOf(token);
  return at === -1 ? start : start + at;
}
