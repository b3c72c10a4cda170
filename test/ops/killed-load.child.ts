/**
 * Child process for the transfer tests: runs `transfer.load` of the dump file given in the JSON
 * argument (`{dialect, url, place, file, owner}`), printing `loading` first; the parent kills
 * its whole process group (it and the client tool it spawned) with SIGKILL mid-way.
 */
import os from 'node:os';
import { transferFor } from '../../src/ops/transfers.js';

const { dialect, url, place, file, owner } = JSON.parse(process.argv[2] ?? '');
const transfer = transferFor(dialect, { url, dataDir: os.tmpdir() });
process.stdout.write('loading\n');
await transfer.load(place, file, owner);
process.stdout.write('load finished: the kill came too late\n');
