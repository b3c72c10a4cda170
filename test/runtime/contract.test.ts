import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadApplication, validateApplication } from '../../src/runtime/contract.js';

let dir: string;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-contract-'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

async function writeModule(name: string, source: string): Promise<string> {
  const file = path.join(dir, name);
  await fs.writeFile(file, source);
  return file;
}

const create = () => ({ handler: () => {} });
const m = (version: number) => ({ version, description: `m${version}`, up: async () => {} });

describe('loadApplication', () => {
  it('loads the built-in sample app when no module is given', async () => {
    const app = await loadApplication(undefined);
    expect(app.version).toBe(2);
    expect(app.migrations.map((x) => x.version)).toEqual([1, 2]);
    expect(typeof app.create).toBe('function');
  });

  it('loads a user module by path and by file URL', async () => {
    const file = await writeModule(
      'good.mjs',
      `export default { name: 'mine', version: 3, migrations: [{ version: 1, description: 'one', async up() {} }],
        create() { return { handler: (req, res) => res.end('hi') }; } };`,
    );
    for (const spec of [file, pathToFileURL(file).href]) {
      const app = await loadApplication(spec);
      expect(app).toMatchObject({ name: 'mine', version: 3 });
      expect(app.migrations).toHaveLength(1);
    }
  });

  it('keeps `this` for an application that is a class instance', async () => {
    const file = await writeModule(
      'class.mjs',
      `class App { name = 'cls'; version = 1; migrations = []; #h = () => {}; create() { return { handler: this.#h }; } }
       export default new App();`,
    );
    const app = await loadApplication(file);
    expect(typeof (await app.create({} as never)).handler).toBe('function');
  });

  it.each([
    {
      name: 'a module without a default export',
      source: 'export const version = 1;',
      error: /no default export/,
    },
    {
      name: 'a module that fails to import',
      source: 'throw new Error("kaput");',
      error: /cannot be imported: kaput/,
    },
  ])('explains $name', async ({ name, source, error }) => {
    const file = await writeModule(`${name.replace(/\W+/g, '-')}.mjs`, source);
    await expect(loadApplication(file)).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringMatching(error),
    });
  });

  it('explains a missing module', async () => {
    await expect(loadApplication(path.join(dir, 'nope.mjs'))).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
    });
  });
});

describe('validateApplication', () => {
  it.each([
    { name: 'not an object', value: 42, error: /must be an object/ },
    {
      name: 'no name',
      value: { version: 1, migrations: [], create },
      error: /has no name: add e\.g\. name: 'crm'/,
    },
    {
      name: 'a name with spaces',
      value: { name: 'my app', version: 1, migrations: [], create },
      error: /name must be 1-100 letters/,
    },
    {
      name: 'a non-string name',
      value: { name: 1, version: 1, migrations: [], create },
      error: /name must be 1-100 letters/,
    },
    {
      name: 'version 0',
      value: { name: 'x', version: 0, migrations: [], create },
      error: /version must be an integer >= 1, got 0/,
    },
    {
      name: 'version 1.5',
      value: { name: 'x', version: 1.5, migrations: [], create },
      error: /integer >= 1, got 1.5/,
    },
    {
      name: 'a string version',
      value: { name: 'x', version: '2', migrations: [], create },
      error: /got "2"/,
    },
    {
      name: 'no create',
      value: { name: 'x', version: 1, migrations: [] },
      error: /create must be a function/,
    },
    {
      name: 'migrations not an array',
      value: { name: 'x', version: 1, migrations: {}, create },
      error: /must be an array/,
    },
    {
      name: 'unsorted migrations',
      value: { name: 'x', version: 3, migrations: [m(2), m(1)], create },
      error: /migrations\[1\]\.version 1 comes after 2/,
    },
    {
      name: 'duplicate versions',
      value: { name: 'x', version: 3, migrations: [m(1), m(1)], create },
      error: /migrations\[1\]\.version 1 is listed twice/,
    },
    {
      name: 'a migration above the version',
      value: { name: 'x', version: 1, migrations: [m(1), m(2)], create },
      error: /migrations\[1\]\.version 2 is above the app's version 1/,
    },
    {
      name: 'a migration without up',
      value: { name: 'x', version: 1, migrations: [{ name: 'x', version: 1, description: 'x' }], create },
      error: /migrations\[0\]\.up must be a function/,
    },
    {
      name: 'a migration without description',
      value: { name: 'x', version: 1, migrations: [{ name: 'x', version: 1, up: async () => {} }], create },
      error: /migrations\[0\]\.description must be a string/,
    },
  ])('refuses $name', ({ value, error }) => {
    expect(() => validateApplication(value, 'test.mjs')).toThrow(error);
    expect(() => validateApplication(value, 'test.mjs')).toThrow(/^application test\.mjs: /);
  });

  it('accepts a version above the last migration', () => {
    expect(
      validateApplication({ name: 'x', version: 5, migrations: [m(1), m(3)], create }, 'x').version,
    ).toBe(5);
  });
});
