/**
 * Child process for state store tests: opens the store at the URL given as the first argument
 * (creating or migrating its tables), writes a secret, and prints the store id and the secret
 * it ended up with.
 */
import { generateSecret } from '../../src/providers/secrets.js';
import { openStateStore } from '../../src/state/store.js';
import { TEST_MASTER_KEY } from '../helpers/master-key.js';

const url = process.argv[2];
if (!url) throw new Error('usage: open-store.child.ts DATABASE_URL');
const store = await openStateStore(url, { masterKey: TEST_MASTER_KEY });
const secret = await store.ensureMainSecret(generateSecret());
process.stdout.write(`${JSON.stringify({ storeId: store.storeId, secret })}\n`);
await store.close();
