import { describe, expect, it } from 'vitest';
import { isAppName, normaliseHost, type Route, resolveRoute } from '../../src/gateway/route.js';

const known = new Set(['crm', 'support', 'a', 'x-1_b']);
const domains = new Map([
  ['crm.example.com', 'crm'],
  ['[::1]', 'support'],
]);
const apps = {
  has: (name: string) => known.has(name),
  appForDomain: (host: string) => domains.get(host),
};

const main = (path: string): Route => ({ kind: 'main', path });
const app = (name: string, path: string): Route => ({ kind: 'app', name, prefix: `/apps/${name}`, path });
const domainApp = (name: string, path: string): Route => ({ kind: 'app', name, prefix: '', path });
const notFound = (name: string): Route => ({ kind: 'not-found', name });

describe('resolveRoute', () => {
  const cases: Array<[string, string | undefined, string, Route]> = [
    // path routing
    ['app root', 'localhost', '/apps/crm/', app('crm', '/')],
    ['app path', 'localhost', '/apps/crm/api/info', app('crm', '/api/info')],
    [
      'app path keeps the query',
      'localhost',
      '/apps/crm/api/info?x=1&y=/2',
      app('crm', '/api/info?x=1&y=/2'),
    ],
    ['app root with query', undefined, '/apps/crm/?q', app('crm', '/?q')],
    ['name with digits, dash, underscore', 'h', '/apps/x-1_b/z', app('x-1_b', '/z')],
    ['one-letter name', 'h', '/apps/a/', app('a', '/')],
    ['percent-encoded letters decode once', 'h', '/apps/%63rm/x', app('crm', '/x')],
    ['exact /apps/<name> redirects', 'h', '/apps/crm', { kind: 'redirect', location: '/apps/crm/' }],
    [
      'redirect keeps the query',
      'h',
      '/apps/crm?a=1&b=2',
      { kind: 'redirect', location: '/apps/crm/?a=1&b=2' },
    ],
    [
      'slash in the query is not a path',
      'h',
      '/apps/crm?next=/x',
      { kind: 'redirect', location: '/apps/crm/?next=/x' },
    ],
    ['unknown app', 'h', '/apps/nope/', notFound('nope')],
    ['unknown app, exact', 'h', '/apps/nope', notFound('nope')],
    ['reserved main', 'h', '/apps/main/', notFound('main')],
    ['upper case is not a name', 'h', '/apps/CRM/', notFound('CRM')],
    ['empty name', 'h', '/apps/', notFound('')],
    ['empty name, double slash', 'h', '/apps//crm/', notFound('')],
    ['name too long', 'h', `/apps/${'a'.repeat(41)}/`, notFound('a'.repeat(41))],
    ['bad percent-encoding', 'h', '/apps/%zz/', notFound('%zz')],
    // traversal: never the supervisor, never another app
    ['dot-dot to the supervisor', 'h', '/apps/../_supervisor/api/apps', notFound('..')],
    ['encoded dot-dot', 'h', '/apps/%2e%2e/', notFound('..')],
    ['encoded dot-dot, upper case', 'h', '/apps/%2E%2E/x', notFound('..')],
    ['encoded dot-dot to the supervisor', 'h', '/apps/%2e%2e/_supervisor/api/apps', notFound('..')],
    ['encoded slashes in the name', 'h', '/apps/crm%2F..%2F/', notFound('crm/../')],
    ['encoded slashes to another app', 'h', '/apps/crm%2F..%2Fsupport/x', notFound('crm/../support')],
    ['double-encoded dot-dot', 'h', '/apps/%252e%252e/_supervisor/', notFound('%2e%2e')],
    ['double-encoded slash', 'h', '/apps/crm%252F..%252F/', notFound('crm%2F..%2F')],
    ['single dot', 'h', '/apps/./crm/', notFound('.')],
    ['backslash after a name', 'h', '/apps/crm\\..\\_supervisor/', notFound('crm\\..\\_supervisor')],
    ['backslash instead of the slash', 'h', '/apps\\crm/', main('/apps\\crm/')],
    ['encoded backslash', 'h', '/apps/crm%5C..%5C/', notFound('crm\\..\\')],
    [
      'dot-dot after a valid name stays in that app',
      'h',
      '/apps/crm/../../_supervisor/api/apps',
      app('crm', '/../../_supervisor/api/apps'),
    ],
    [
      'encoded dot-dot after a valid name stays in that app',
      'h',
      '/apps/crm/%2e%2e/support/',
      app('crm', '/%2e%2e/support/'),
    ],
    ['NUL in the name', 'h', '/apps/crm%00/', notFound('crm\u0000')],
    // supervisor
    ['supervisor root', 'h', '/_supervisor/', { kind: 'supervisor', path: '/' }],
    ['supervisor exact', 'h', '/_supervisor', { kind: 'supervisor', path: '' }],
    ['supervisor api', 'h', '/_supervisor/api/apps?x=1', { kind: 'supervisor', path: '/api/apps' }],
    ['supervisor exact with query', 'h', '/_supervisor?x', { kind: 'supervisor', path: '' }],
    // An app's domain is the app's, every path included (SPEC §8.6).
    [
      'a domain owns /_supervisor/',
      'crm.example.com',
      '/_supervisor/metrics',
      domainApp('crm', '/_supervisor/metrics'),
    ],
    [
      'a domain owns /_supervisor exactly',
      'crm.example.com:8080',
      '/_supervisor',
      domainApp('crm', '/_supervisor'),
    ],
    [
      'a domain in upper case owns /_supervisor/',
      'CRM.example.com.',
      '/_supervisor/',
      domainApp('crm', '/_supervisor/'),
    ],
    [
      'an IPv6 domain owns /_supervisor/',
      '[::1]:13000',
      '/_supervisor/api/apps',
      domainApp('support', '/_supervisor/api/apps'),
    ],
    ['supervisor-like prefix is main', 'h', '/_supervisorx/', main('/_supervisorx/')],
    ['supervisor is case-sensitive', 'h', '/_SUPERVISOR/', main('/_SUPERVISOR/')],
    ['encoded supervisor is main', 'h', '/%5fsupervisor/api/apps', main('/%5fsupervisor/api/apps')],
    // domains
    ['exact domain', 'crm.example.com', '/api/info?x=1', domainApp('crm', '/api/info?x=1')],
    ['domain with port', 'crm.example.com:8080', '/', domainApp('crm', '/')],
    ['domain in upper case', 'CRM.Example.COM', '/x', domainApp('crm', '/x')],
    ['domain with trailing dot and port', 'crm.example.com.:443', '/x', domainApp('crm', '/x')],
    ['IPv6 literal with port', '[::1]:3000', '/x', domainApp('support', '/x')],
    ['domain owns /apps/ paths too', 'crm.example.com', '/apps/support/', domainApp('crm', '/apps/support/')],
    ['sub-domain is not the domain', 'www.crm.example.com', '/x', main('/x')],
    ['suffix is not the domain', 'crm.example.com.evil', '/x', main('/x')],
    ['unknown host is main', 'evil.example', '/x', main('/x')],
    ['unknown host, app path still routes', 'evil.example', '/apps/crm/x', app('crm', '/x')],
    ['no host', undefined, '/', main('/')],
    ['empty host', '', '/', main('/')],
    // main
    ['root', 'h', '/', main('/')],
    ['root with query', 'h', '/?app=crm', main('/?app=crm')],
    ['/apps alone', 'h', '/apps', main('/apps')],
    ['/apps? query', 'h', '/apps?x', main('/apps?x')],
    ['/appsx', 'h', '/appsx/crm/', main('/appsx/crm/')],
    ['asterisk', 'h', '*', main('*')],
    ['absolute-form', 'h', 'http://crm.example.com/apps/crm/', main('http://crm.example.com/apps/crm/')],
  ];

  it.each(cases)('%s: %s %s', (_label, host, url, expected) => {
    expect(resolveRoute(host, url, apps)).toEqual(expected);
  });
});

describe('resolveRoute with supervisor hosts (settings admin.hosts)', () => {
  const supervisorHosts = new Set(['admin.example.com', '127.0.0.1', '[::1]']);
  const sup = (path: string): Route => ({ kind: 'supervisor', path });
  const cases: Array<[string, string | undefined, string, Route]> = [
    ['an admin host', 'admin.example.com', '/_supervisor/metrics', sup('/metrics')],
    ['an admin host with a port, in upper case', 'ADMIN.Example.com:8443', '/_supervisor/', sup('/')],
    ['an admin host with a trailing dot', 'admin.example.com.', '/_supervisor', sup('')],
    ['an IPv4 admin host with a port', '127.0.0.1:13000', '/_supervisor/healthz', sup('/healthz')],
    ['another host: the main app', 'www.example.com', '/_supervisor/metrics', main('/_supervisor/metrics')],
    ['a sub-domain of an admin host', 'x.admin.example.com', '/_supervisor/', main('/_supervisor/')],
    ['no Host header', undefined, '/_supervisor/api/apps', main('/_supervisor/api/apps')],
    ['an empty Host header', '', '/_supervisor/', main('/_supervisor/')],
    ['an app domain, even when listed', '[::1]', '/_supervisor/', domainApp('support', '/_supervisor/')],
    ['app paths still route on an admin host', 'admin.example.com', '/apps/crm/x', app('crm', '/x')],
    ['the main app on an admin host', 'admin.example.com', '/', main('/')],
  ];

  it.each(cases)('%s: %s %s', (_label, host, url, expected) => {
    expect(resolveRoute(host, url, apps, { supervisorHosts })).toEqual(expected);
  });
});

describe('normaliseHost', () => {
  it.each([
    ['Example.COM', 'example.com'],
    ['example.com:80', 'example.com'],
    ['example.com.', 'example.com'],
    ['example.com.:80', 'example.com'],
    ['[::1]:8080', '[::1]'],
    ['[::1]', '[::1]'],
    ['', ''],
  ])('%s -> %s', (input, expected) => {
    expect(normaliseHost(input)).toBe(expected);
  });
});

describe('isAppName', () => {
  it.each([
    ['crm', true],
    ['a', true],
    [`a${'b'.repeat(39)}`, true],
    [`a${'b'.repeat(40)}`, false],
    ['main', false],
    ['mainx', true],
    ['1crm', false],
    ['-crm', false],
    ['Crm', false],
    ['crm.x', false],
    ['a_b-c9', true],
    ['a/b', false],
    ['a{', false],
    ['a`', false],
    ['a%2e', false],
    ['', false],
  ])('%s -> %s', (name, expected) => {
    expect(isAppName(name)).toBe(expected);
  });
});
