import type { Command } from 'commander';
import {
  ADMIN_TOKEN_ENV,
  checkTokenName,
  checkTokenScope,
  createNamedToken,
  listNamedTokens,
  revokeNamedToken,
  type TokenView,
} from '../admin/token.js';
import type { Settings } from '../config/types.js';
import { parseDatabaseUrl } from '../dialects/registry.js';
import { createLogger } from '../log.js';
import { openStateStore } from '../state/store.js';
import type { StateStore } from '../state/types.js';
import {
  action,
  type CliContext,
  type CommonOptions,
  colorEnabled,
  println,
  settingsFor,
  styles,
  withConfigOption,
  withJsonOption,
} from './common.js';

interface CreateFlags extends CommonOptions {
  readonly scope: string;
}

/** The scope a token gets when `--scope` is not given: the least, so a forgotten flag never grants more. */
export const DEFAULT_SCOPE = 'read';

const STORE_HELP = [
  "Works on the state store directly (the settings' database.url, as apply does), so no server needs to run;",
  'every running replica accepts a new token, and refuses a revoked one, within 3 seconds.',
].join('\n');

/** `appvisor token create|list|revoke`: named admin tokens with scopes (SPEC §8.7). */
export function registerToken(program: Command, ctx: CliContext): Command {
  const token = program
    .command('token')
    .description('create, list and revoke named admin tokens')
    .addHelpText('after', `\n${STORE_HELP}`);

  const create = token
    .command('create <name>')
    .description('make a named admin token and print it (once: only its hash is kept)')
    .option(
      '--scope <scope>',
      'read (sees), operate (also starts, stops, backs up) or admin (everything)',
      DEFAULT_SCOPE,
    )
    .addHelpText(
      'after',
      [
        '',
        'The token goes to stdout alone (token=$(appvisor token create ci --scope operate)); how to use it, to stderr.',
        "Names: 1 to 40 lower-case letters, digits, '.', '_' or '-'. A name in use, or a revoked token's, is refused.",
        'Exit codes: 0 made, 1 refused or failed.',
      ].join('\n'),
    );
  withConfigOption(create);
  withJsonOption(create);
  create.action(action(ctx, (name: string, opts: CreateFlags) => runTokenCreate(ctx, name, opts)));

  const list = token
    .command('list')
    .description('list the admin tokens: name, scope, created, last used, revoked (never the token)')
    .addHelpText('after', '\nExit codes: 0, 1 the state store cannot be read.');
  withConfigOption(list);
  withJsonOption(list);
  list.action(action(ctx, (opts: CommonOptions) => runTokenList(ctx, opts)));

  const revoke = token
    .command('revoke <name>')
    .description('revoke an admin token on every replica (kept as revoked; its name is not reused)')
    .addHelpText('after', '\nExit codes: 0 revoked (or already), 1 no token of that name.');
  withConfigOption(revoke);
  withJsonOption(revoke);
  revoke.action(action(ctx, (name: string, opts: CommonOptions) => runTokenRevoke(ctx, name, opts)));
  return token;
}

/** Opens the settings' state store for `run`, and closes it afterwards. */
async function withStore<T>(settings: Settings, run: (store: StateStore) => Promise<T>): Promise<T> {
  const log = createLogger({ level: 'warn', pretty: true });
  const store = await openStateStore(parseDatabaseUrl(settings.database.url), {
    log,
    adopt: settings.mainDatabase?.adopt ?? false,
  });
  try {
    return await run(store);
  } finally {
    await store.close();
  }
}

export async function runTokenCreate(ctx: CliContext, name: string, opts: CreateFlags): Promise<number> {
  // Checked before the store is opened: a typo costs no connection.
  checkTokenName(name);
  const scope = checkTokenScope(opts.scope);
  const settings = await settingsFor(ctx, opts);
  const { token, view } = await withStore(settings, (store) => createNamedToken(store, name, scope));
  if (opts.json) {
    println(ctx.stdout, JSON.stringify({ ...view, token }));
    return 0;
  }
  println(ctx.stdout, token);
  const s = styles(colorEnabled(ctx.stderr, ctx.env));
  println(
    ctx.stderr,
    [
      `Made admin token ${s.bold(view.name)} with scope ${s.bold(view.scope)} (${scopeMeaning(view.scope)}).`,
      `It is shown only this once (the store keeps its hash): keep it somewhere safe.`,
      `Use it as the header "Authorization: Bearer <token>" on /_supervisor/api/…, sign in to the admin UI with it,`,
      `or set ${ADMIN_TOKEN_ENV}=<token> for the CLI's status, start and stop. Every replica accepts it within 3 seconds.`,
      `Revoke it with: appvisor token revoke ${view.name}`,
    ].join('\n'),
  );
  return 0;
}

export async function runTokenList(ctx: CliContext, opts: CommonOptions): Promise<number> {
  const settings = await settingsFor(ctx, opts);
  const tokens = await withStore(settings, (store) => listNamedTokens(store));
  if (opts.json) {
    println(ctx.stdout, JSON.stringify(tokens));
    return 0;
  }
  if (tokens.length === 0) {
    println(ctx.stdout, 'No admin tokens yet (a first `appvisor serve` makes the default one).');
    return 0;
  }
  const s = styles(colorEnabled(ctx.stdout, ctx.env));
  const rows = tokens.map((t: TokenView) => [
    t.name,
    t.scope,
    t.createdAt,
    t.lastUsedAt ?? 'never',
    t.revokedAt ?? '-',
  ]);
  const header = ['NAME', 'SCOPE', 'CREATED', 'LAST USED', 'REVOKED'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  println(ctx.stdout, s.bold(line(header)));
  for (const [i, row] of rows.entries()) {
    const text = line(row);
    println(ctx.stdout, tokens[i]!.revokedAt !== undefined ? s.dim(text) : text);
  }
  return 0;
}

export async function runTokenRevoke(ctx: CliContext, name: string, opts: CommonOptions): Promise<number> {
  const settings = await settingsFor(ctx, opts);
  const { view, already } = await withStore(settings, (store) => revokeNamedToken(store, name));
  if (opts.json) println(ctx.stdout, JSON.stringify({ ...view, already }));
  else if (already)
    println(ctx.stdout, `Admin token ${view.name} was already revoked (at ${view.revokedAt}).`);
  else
    println(
      ctx.stdout,
      `Revoked admin token ${view.name} (scope ${view.scope}); every replica refuses it within 3 seconds. Its name stays taken.`,
    );
  return 0;
}

function scopeMeaning(scope: TokenView['scope']): string {
  switch (scope) {
    case 'read':
      return 'sees apps, plan, history and events';
    case 'operate':
      return 'also starts, stops and backs up apps';
    case 'admin':
      return 'everything, tokens too';
  }
}
