import { copyFile, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { AppvisorError } from '../errors.js';
import type { MasterKey } from '../secrets/envelope.js';
import {
  generateMasterKeyText,
  MASTER_KEY_ENV,
  MASTER_KEY_FILE,
  parseMasterKey,
} from '../secrets/master-key.js';
import {
  action,
  type CliContext,
  type CommonOptions,
  println,
  settingsFor,
  withConfigOption,
} from './common.js';
import { onStore } from './rotate-secret.js';

/** Where `rekey` takes the new key from when the current one is in the environment. */
export const NEW_MASTER_KEY_ENV = 'APPVISOR_NEW_MASTER_KEY';
/** The old key beside the new one while the store is re-sealed. */
export const OLD_MASTER_KEY_FILE = 'master-key.old';

interface Flags extends CommonOptions {
  readonly newKeyFile?: string;
}

/** `appvisor rekey`: every secret in the state store re-sealed under a new master key (SPEC §8.5). */
export function registerRekey(program: Command, ctx: CliContext): void {
  const cmd = program
    .command('rekey')
    .description('re-encrypt every secret in the state store under a new master key')
    .option(
      '--new-key-file <file>',
      `the new key (base64 of 32 bytes); default: ${NEW_MASTER_KEY_ENV}, or a new random key`,
    )
    .addHelpText(
      'after',
      `\nRuns on the state store under the reconcile lock: stop the servers first (a running server refuses it with LOCK_HELD).\nWith the key in <dataDir>/${MASTER_KEY_FILE}, the new key is written there (the old one kept as ${OLD_MASTER_KEY_FILE} until the store is re-sealed).\nWith ${MASTER_KEY_ENV} set, give the new key with --new-key-file or ${NEW_MASTER_KEY_ENV}, then set ${MASTER_KEY_ENV} to it on every replica.\nExit codes: 0, 1 failed (the store and the key as before).`,
    );
  withConfigOption(cmd);
  cmd.action(action(ctx, (opts: Flags) => runRekey(ctx, opts)));
}

export async function runRekey(ctx: CliContext, opts: Flags): Promise<number> {
  const settings = await settingsFor(ctx, opts);
  const fromEnv = (ctx.env[MASTER_KEY_ENV] ?? '') !== '';
  const next = await newKey(ctx, opts, fromEnv);
  const file = join(settings.dataDir, MASTER_KEY_FILE);
  const old = join(settings.dataDir, OLD_MASTER_KEY_FILE);
  const count = await onStore(ctx, settings, async (store, lease, current) => {
    if (next.key.id === current.id) {
      throw new AppvisorError('MASTER_KEY_INVALID', {
        source: next.key.source,
        detail: `the new key is the current one (${current.id})`,
      });
    }
    if (fromEnv) return store.rekey(next.key, lease.fence);
    // The old key stays beside the new one until the store is re-sealed under the new one.
    await copyFile(file, old);
    await writeKeyFile(file, next.text);
    try {
      const rows = await store.rekey(next.key, lease.fence);
      await rm(old, { force: true });
      return rows;
    } catch (err) {
      // Nothing was re-sealed: the old key goes back.
      await rename(old, file);
      throw err;
    }
  });
  println(ctx.stdout, `Re-sealed ${count} secret${count === 1 ? '' : 's'} under master key ${next.key.id}.`);
  if (fromEnv) {
    println(
      ctx.stdout,
      `Set ${MASTER_KEY_ENV} to the new key (id ${next.key.id}, from ${next.key.source}) on every replica before they start again.`,
    );
  } else {
    println(ctx.stdout, `The new key is in ${file}; copy it to every replica that reads this store.`);
  }
  return 0;
}

async function newKey(
  ctx: CliContext,
  opts: Flags,
  fromEnv: boolean,
): Promise<{ readonly key: MasterKey; readonly text: string }> {
  if (opts.newKeyFile !== undefined) {
    const text = (await readFile(opts.newKeyFile, 'utf8')).trim();
    return { key: parseMasterKey(text, opts.newKeyFile), text };
  }
  const env = ctx.env[NEW_MASTER_KEY_ENV];
  if (env !== undefined && env !== '')
    return { key: parseMasterKey(env, NEW_MASTER_KEY_ENV), text: env.trim() };
  if (fromEnv) {
    throw new AppvisorError('MASTER_KEY_INVALID', {
      source: MASTER_KEY_ENV,
      detail: `the key is set in the environment, so rekey cannot write the new one: give it with --new-key-file or ${NEW_MASTER_KEY_ENV}`,
    });
  }
  const text = generateMasterKeyText();
  return { key: parseMasterKey(text, 'a new random key'), text };
}

/** Writes the key file whole (a temporary file renamed over it), mode 0600. */
async function writeKeyFile(file: string, text: string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, `${text}\n`, { mode: 0o600 });
  await rename(tmp, file);
}
