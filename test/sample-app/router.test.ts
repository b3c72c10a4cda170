import { describe, expect, it } from 'vitest';
import { Router } from '../../src/sample-app/router.js';

const noop = () => {};
const router = new Router()
  .on('GET', '/api/info', noop)
  .on('get', '/api/notes', noop)
  .on('POST', '/api/notes', noop)
  .on('DELETE', '/api/notes/:id', noop)
  .on('GET', '/admin/', noop);

describe('Router', () => {
  it.each([
    { method: 'GET', path: '/api/info', kind: 'found', params: {} },
    { method: 'HEAD', path: '/api/info', kind: 'found', params: {} },
    { method: 'GET', path: '/api/notes', kind: 'found', params: {} },
    { method: 'DELETE', path: '/api/notes/42', kind: 'found', params: { id: '42' } },
    { method: 'GET', path: '/admin/', kind: 'found', params: {} },
    { method: 'GET', path: '/admin', kind: 'not-found' },
    { method: 'DELETE', path: '/api/notes/', kind: 'not-found' },
    { method: 'DELETE', path: '/api/notes/1/2', kind: 'not-found' },
    { method: 'GET', path: '/API/info', kind: 'not-found' },
    { method: 'GET', path: '', kind: 'not-found' },
    { method: 'PUT', path: '/api/notes', kind: 'method-not-allowed', allow: ['GET', 'HEAD', 'POST'] },
    { method: 'GET', path: '/api/notes/7', kind: 'method-not-allowed', allow: ['DELETE'] },
  ])('$method $path -> $kind', ({ method, path, kind, params, allow }) => {
    const match = router.match(method, path);
    expect(match.kind).toBe(kind);
    if (match.kind === 'found') expect(match.params).toEqual(params);
    if (match.kind === 'method-not-allowed') expect(match.allow).toEqual(allow);
  });
});
