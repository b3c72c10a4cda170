/**
 * Preloaded (`--import`) into a child the test kills: the rename of any file onto
 * PAUSE_BEFORE_RENAME_TO never happens; the child says so on stderr and waits for its SIGKILL.
 * A SQLite restore's load is a file copy of a few milliseconds, faster than any watcher could
 * kill it "mid-way": held here, it is killed at the one moment that matters, with the new data
 * loaded beside the app's and the old not yet replaced.
 */
import fs from 'node:fs/promises';
import path from 'node:path';

const PAUSED = 'paused before the rename';
const target = process.env.PAUSE_BEFORE_RENAME_TO;
const rename = fs.rename;
fs.rename = async (from, to) => {
  if (target !== undefined && path.resolve(String(to)) === path.resolve(target)) {
    process.stderr.write(`${PAUSED} of ${String(from)}\n`);
    await new Promise(() => undefined);
  }
  return rename(from, to);
};
