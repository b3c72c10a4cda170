/**
 * Master keys for tests that open the state store themselves (serve and apply load theirs
 * from `<dataDir>/master-key`). A fixed key, so a child process opening the same store opens
 * its secrets too; never used outside tests.
 */
import { type MasterKey, masterKeyOf } from '../../src/secrets/envelope.js';
import { loadMasterKey } from '../../src/secrets/master-key.js';

const TEST_KEY_BYTES = Buffer.alloc(32, 0x5a);
export const TEST_MASTER_KEY: MasterKey = masterKeyOf(TEST_KEY_BYTES, 'test master key');
/** The same key as `data/master-key` holds it (base64). */
export const TEST_MASTER_KEY_TEXT = TEST_KEY_BYTES.toString('base64');

/** The key `apply` or `serve` with this data folder uses (created there if it is not yet). */
export async function masterKeyIn(dataDir: string): Promise<MasterKey> {
  return (await loadMasterKey({ env: {}, dataDir, create: true }))!;
}
