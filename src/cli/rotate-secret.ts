import type { Command } from 'commander';
import type { Settings } from '../config/types.js';
import { openCommandStore } from '../reconcile/command-store.js';
import type { HeldLease } from '../reconcile/lease.js';
import type { MasterKey } from '../secrets/envelope.js';
import { DEFAULT_GRACE, parseGrace, type RotationResult, rotateAppSecret } from '../secrets/rotate.js';
import type { StateStore } from '../state/types.js';
import { adminRequest, CLIENT_HELP, cliClient, URL_OPTION_HELP, whenServerAnswers } from './admin-client.js';
import {
  action,
  type CliContext,
  type CommonOptions,
  println,
  settingsFor,
  withConfigOption,
} from './common.js';

interface Flags extends CommonOptions {
  readonly url?: string;
  readonly grace?: string;
}

/** `appvisor rotate-secret NAME [--grace 1h]` (SPEC §8.4). */
export function registerRotateSecret(program: Command, ctx: CliContext): void {
  const cmd = program
    .command('rotate-secret <name>')
    .description("give an app a new JWT secret (main: the main app's, which shared apps follow)")
    .option('--grace <duration>', 'how long tokens signed with the old secret stay valid', DEFAULT_GRACE)
    .option('--url <url>', URL_OPTION_HELP)
    .addHelpText(
      'after',
      `\nWith a server running, it asks the server (the leader rotates it; the running apps take the new secret without a restart; an admin-scope token). Without one it works on the state store under the reconcile lock.\n${CLIENT_HELP}\nA second rotation within the grace ends the first one's old secret at once.\nExit codes: 0, 1 refused or failed (nothing changed).`,
    );
  withConfigOption(cmd);
  cmd.action(action(ctx, (name: string, opts: Flags) => runRotateSecret(ctx, name, opts)));
}

export async function runRotateSecret(ctx: CliContext, name: string, opts: Flags): Promise<number> {
  const settings = await settingsFor(ctx, opts);
  const graceMs = parseGrace(opts.grace);
  const result =
    (await viaServer(ctx, settings, name, opts)) ??
    (await onStore(ctx, settings, async (store, lease) =>
      rotateAppSecret(store, {
        name,
        graceMs,
        by: `${cliClient()} (on the state store)`,
        fence: lease.fence,
      }),
    ));
  println(
    ctx.stdout,
    `Rotated the JWT secret of ${result.app}: new key ${result.kid}; tokens of key ${result.previousKid} ${
      result.graceMs > 0 ? `stay valid until ${result.previousUntil}` : 'are no longer valid'
    }.`,
  );
  return 0;
}

/** The server's answer, or undefined when no server answers (then the store is worked on). */
function viaServer(
  ctx: CliContext,
  settings: Settings,
  name: string,
  opts: Flags,
): Promise<RotationResult | undefined> {
  return whenServerAnswers(settings, ctx.env, opts.url, (target, token) =>
    adminRequest<RotationResult>(
      target,
      token,
      'POST',
      `_supervisor/api/apps/${encodeURIComponent(name)}/rotate-secret`,
      { grace: opts.grace ?? DEFAULT_GRACE },
    ),
  );
}

/**
 * Runs `work` on the state store under the leader lease, as `apply` does: a running server
 * (which leads) refuses it at once with LOCK_HELD naming the server.
 */
export async function onStore<T>(
  ctx: CliContext,
  settings: Settings,
  work: (store: StateStore, lease: HeldLease, key: MasterKey) => Promise<T>,
): Promise<T> {
  const held = await openCommandStore(settings, { env: ctx.env });
  try {
    return await work(held.store, held.lease, held.masterKey);
  } finally {
    await held.close();
  }
}
