/** The sample app's `GET /admin/` page: static HTML naming the app, no script. */
import crypto from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** The gateway's prefix for a sub-app; anything else in X-Forwarded-Prefix is ignored. */
const PREFIX = /^\/apps\/[a-z][a-z0-9_-]*$/;

const STYLE =
  'body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#222}' +
  'code{background:#f3f3f3;padding:0 .25rem}li{margin:.25rem 0}';

// The page's only inline content is this style sheet; the CSP allows exactly it, by hash.
const CSP = [
  "default-src 'none'",
  `style-src 'sha256-${crypto.createHash('sha256').update(STYLE).digest('base64')}'`,
  "base-uri 'self'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export interface AdminPageInput {
  readonly name: string;
  readonly displayName?: string;
  readonly version: number;
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

/** The base href for links on the page: the gateway's prefix when it is a valid one, else `/`. */
export function baseHref(req: IncomingMessage): string {
  const prefix = req.headers['x-forwarded-prefix'];
  return typeof prefix === 'string' && PREFIX.test(prefix) ? `${prefix}/` : '/';
}

export function renderAdminPage(input: AdminPageInput, base: string): string {
  const title = escapeHtml(input.displayName || input.name);
  const name = escapeHtml(input.name);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<base href="${escapeHtml(base)}">
<title>${title}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>${title}</h1>
<p>App <code>${name}</code>, version ${input.version}.</p>
<ul>
<li><a href="api/info"><code>GET api/info</code></a></li>
<li><code>POST api/users</code> <code>{"username","password"}</code></li>
<li><code>POST api/auth/signin</code> <code>{"username","password"}</code></li>
<li><code>GET api/me</code>, <code>GET|POST api/notes</code> with <code>Authorization: Bearer …</code></li>
</ul>
</body>
</html>
`;
}

export function sendAdminPage(req: IncomingMessage, res: ServerResponse, input: AdminPageInput): void {
  const html = renderAdminPage(input, baseHref(req));
  res.writeHead(200, {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Length': Buffer.byteLength(html),
    'Content-Security-Policy': CSP,
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
    'Referrer-Policy': 'no-referrer',
    'Cache-Control': 'no-store',
  });
  res.end(html);
}
