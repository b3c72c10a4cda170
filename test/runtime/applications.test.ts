/** The application set (src/runtime/applications.ts): each module imported once, checked, named. */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadApplications } from '../../src/runtime/applications.js';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'applications');
const GUESTBOOK = path.join(FIXTURES, 'guestbook.mjs');
const CRM = path.join(FIXTURES, 'crm.mjs');

describe('loadApplications', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-applications-'));
    // Another module that calls itself crm-app too.
    await fs.writeFile(
      path.join(dir, 'fake-crm.mjs'),
      `export default { name: 'crm-app', version: 1, migrations: [], create: () => ({ handler: (q, s) => s.end() }) };\n`,
    );
    await fs.writeFile(
      path.join(dir, 'nameless.mjs'),
      'export default { version: 1, migrations: [], create() {} };\n',
    );
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  it('loads the default application and each named one; a manifest picks by key', async () => {
    const set = await loadApplications({ app: undefined, applications: { guestbook: GUESTBOOK, crm: CRM } });
    expect(set.default.application.name).toBe('appvisor-sample');
    expect(set.keys()).toEqual(['crm', 'guestbook']);
    expect(set.of({ name: 'x' }).application.name).toBe('appvisor-sample');
    expect(set.of({ name: 'x', application: 'crm' })).toMatchObject({ key: 'crm', module: CRM });
    expect(set.of({ name: 'x', application: 'crm' }).application.name).toBe('crm-app');
    expect(set.byModule(GUESTBOOK)?.name).toBe('guestbook-app');
    expect(set.byModule(null)?.name).toBe('appvisor-sample');
    expect(Object.fromEntries(set.codes())).toEqual({
      crm: { name: 'crm-app', version: 1 },
      guestbook: { name: 'guestbook-app', version: 1 },
    });
    expect(() => set.of({ name: 'x', application: 'wiki' })).toThrow(
      "app x names application 'wiki', which settings applications does not list (known: crm, guestbook)",
    );
  });

  it('two keys may name one module: it is imported once, one application', async () => {
    const set = await loadApplications({ app: CRM, applications: { crm: CRM, sales: CRM } });
    expect(set.named('crm')?.application).toBe(set.named('sales')?.application);
    expect(set.named('crm')?.application).toBe(set.default.application);
  });

  it('two different modules claiming one name is a settings error naming both', async () => {
    await expect(
      loadApplications({ app: undefined, applications: { crm: CRM, other: path.join(dir, 'fake-crm.mjs') } }),
    ).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringMatching(
        /^applications\.crm \(.*crm\.mjs\) and applications\.other \(.*fake-crm\.mjs\) are different modules that both call themselves 'crm-app'/,
      ),
    });
  });

  it('a module that cannot be used names the settings key and the module', async () => {
    const missing = path.join(dir, 'missing.mjs');
    await expect(loadApplications({ app: undefined, applications: { wiki: missing } })).rejects.toMatchObject(
      {
        code: 'CONFIG_INVALID',
        message: expect.stringContaining(
          `applications.wiki (${missing}): application ${missing}: cannot be imported`,
        ),
      },
    );
    const nameless = path.join(dir, 'nameless.mjs');
    await expect(
      loadApplications({ app: undefined, applications: { wiki: nameless } }),
    ).rejects.toMatchObject({
      message: expect.stringContaining(
        `applications.wiki (${nameless}): application ${nameless}: has no name`,
      ),
    });
  });
});
