/**
 * The fake provider keeps the results the conformance suite asks of the real ones (create once,
 * 'unchanged' after; drop, then absent and 'unchanged'; an aborted signal does nothing), which
 * the executor tests rely on, plus its own failures and hooks.
 */
import { describe, expect, it } from 'vitest';
import { AppvisorError } from '../../src/errors.js';
import { FakeProvider, fakeProviders } from './fake-provider.js';

const OWNER = 'appvisor:store-1:crm';

describe('FakeProvider', () => {
  it('creates a database once with its marker, observes it, and drops it', async () => {
    const p = new FakeProvider();
    expect(await p.observeDatabase('crm')).toEqual({ exists: false });
    expect(await p.createDatabase('crm', OWNER)).toBe('created');
    expect(await p.createDatabase('crm', 'appvisor:other:crm')).toBe('unchanged');
    expect(await p.observeDatabase('crm')).toEqual({ exists: true, owner: OWNER });
    expect(await p.dropDatabase('crm')).toBe('deleted');
    expect(await p.dropDatabase('crm')).toBe('unchanged');
    expect(await p.observeDatabase('crm')).toEqual({ exists: false });
    expect(p.changes()).toEqual([
      'createDatabase crm',
      'createDatabase crm',
      'dropDatabase crm',
      'dropDatabase crm',
    ]);
  });

  it('has schemas only on PostgreSQL', async () => {
    const pg = new FakeProvider();
    expect(await pg.createSchema('crm', OWNER)).toBe('created');
    expect(await pg.observeSchema('crm')).toEqual({ exists: true, owner: OWNER });
    const sqlite = new FakeProvider({ dialect: 'sqlite', server: 'data' });
    await expect(sqlite.observeSchema('crm')).rejects.toMatchObject({ code: 'UNSUPPORTED_MODE' });
  });

  it('fails a chosen operation (on a chosen name) and runs hooks inside the call', async () => {
    const err = new AppvisorError('DB_PERMISSION_DENIED', {});
    const p = new FakeProvider().fail('createDatabase', err, 'crm');
    await expect(p.createDatabase('crm', OWNER)).rejects.toBe(err);
    expect(await p.createDatabase('support', OWNER)).toBe('created');
    expect(p.databases.has('crm')).toBe(false);

    const seen: string[] = [];
    p.during('dropDatabase', () => {
      seen.push(`in drop: ${p.databases.has('support')}`);
    });
    await p.dropDatabase('support');
    expect(seen).toEqual(['in drop: true']);
  });

  it('does nothing on an aborted signal, rejecting with its reason', async () => {
    const p = new FakeProvider();
    const controller = new AbortController();
    const reason = new AppvisorError('LOCK_LOST', {});
    controller.abort(reason);
    await expect(p.createDatabase('crm', OWNER, { signal: controller.signal })).rejects.toBe(reason);
    expect(p.databases.size).toBe(0);
  });

  it('sweeps only a leftover that still carries the marker', async () => {
    const p = new FakeProvider();
    p.leftovers.set('_avtmp_crm', OWNER);
    expect(await p.listLeftovers()).toEqual([{ name: '_avtmp_crm', owner: OWNER }]);
    expect(await p.sweepLeftover('_avtmp_crm', 'appvisor:other:crm')).toBe('unchanged');
    expect(await p.sweepLeftover('_avtmp_crm', OWNER)).toBe('deleted');
    expect(await p.listLeftovers()).toEqual([]);
  });

  it('serves main targets and named connection URLs from a fake ProviderSet', () => {
    const main = new FakeProvider();
    const other = new FakeProvider({ dialect: 'mysql', server: 'db:3306' });
    const set = fakeProviders(main, { 'mysql://u:pw@db:3306/': other });
    expect(set.forTarget({ serverRef: 'main' })).toBe(main);
    expect(set.forTarget({ serverRef: { url: 'mysql://u:pw@db:3306/' } })).toBe(other);
    expect(() => set.forTarget({ serverRef: { url: 'mysql://elsewhere/' } })).toThrow(/elsewhere/);
  });
});
