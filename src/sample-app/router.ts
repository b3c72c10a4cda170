/**
 * A tiny router: exact path segments and `:param` segments, one handler per method and pattern.
 * HEAD is answered by the GET handler (node:http drops the body of HEAD responses).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export type Params = Readonly<Record<string, string>>;

export type RouteHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  params: Params,
) => Promise<void> | void;

export type Match =
  | { readonly kind: 'found'; readonly handler: RouteHandler; readonly params: Params }
  | { readonly kind: 'method-not-allowed'; readonly allow: readonly string[] }
  | { readonly kind: 'not-found' };

interface Route {
  readonly method: string;
  readonly segments: readonly string[];
  readonly handler: RouteHandler;
}

export class Router {
  readonly #routes: Route[] = [];

  /** Adds a route; `pattern` is like `/api/notes/:id`. */
  on(method: string, pattern: string, handler: RouteHandler): this {
    this.#routes.push({ method: method.toUpperCase(), segments: pattern.split('/'), handler });
    return this;
  }

  match(method: string | undefined, path: string): Match {
    const wanted = method === 'HEAD' ? 'GET' : (method ?? 'GET');
    const segments = path.split('/');
    const allow = new Set<string>();
    for (const route of this.#routes) {
      const params = matchSegments(route.segments, segments);
      if (!params) continue;
      if (route.method === wanted) return { kind: 'found', handler: route.handler, params };
      allow.add(route.method);
      if (route.method === 'GET') allow.add('HEAD');
    }
    return allow.size > 0 ? { kind: 'method-not-allowed', allow: [...allow] } : { kind: 'not-found' };
  }
}

function matchSegments(
  pattern: readonly string[],
  path: readonly string[],
): Record<string, string> | undefined {
  if (pattern.length !== path.length) return undefined;
  const params: Record<string, string> = {};
  for (const [i, part] of pattern.entries()) {
    const actual = path[i]!;
    if (part.startsWith(':')) {
      if (actual === '') return undefined;
      params[part.slice(1)] = actual;
    } else if (part !== actual) {
      return undefined;
    }
  }
  return params;
}
