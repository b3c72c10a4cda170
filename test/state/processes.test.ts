/** Several appvisor processes starting on one new store at once (`serve` and `apply`, two servers). */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TABLES } from '../../src/state/dialect.js';
import { dialectsUnderTest, type TestDatabase } from './dialects.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CHILD = fileURLToPath(new URL('./open-store.child.ts', import.meta.url));

for (const { dialect, available, create } of await dialectsUnderTest()) {
  describe.skipIf(!available)(`state store shared by processes on ${dialect}`, () => {
    let db: TestDatabase;

    beforeEach(async () => {
      db = await create();
    });
    afterEach(async () => {
      await db.drop();
    });

    it('migrates once and agrees on one store id and one secret when processes start together', async () => {
      const outputs = await Promise.all(
        Array.from({ length: 3 }, () =>
          run(process.execPath, ['--import', 'tsx', CHILD, db.url], { cwd: ROOT }),
        ),
      );
      const results = outputs.map(({ stdout }) => JSON.parse(stdout) as { storeId: string; secret: string });
      expect(new Set(results.map((r) => r.storeId)).size).toBe(1);
      expect(new Set(results.map((r) => r.secret)).size).toBe(1);
      expect((await db.tables()).sort()).toEqual(Object.values(TABLES).sort());
    });
  });
}
