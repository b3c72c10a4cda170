import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { registerApply } from './apply.js';
import { registerBackup } from './backup.js';
import { registerClone } from './clone.js';
import { type CliContext, type CliIO, colorEnabled, createContext, processIO } from './common.js';
import { registerLogs } from './logs.js';
import { registerPlan } from './plan.js';
import { registerRekey } from './rekey.js';
import { registerRestore } from './restore.js';
import { registerRotateSecret } from './rotate-secret.js';
import { registerServe } from './serve.js';
import { registerStartStop } from './start-stop.js';
import { registerState } from './state.js';
import { registerStatus } from './status.js';
import { registerToken } from './token.js';
import { registerValidate } from './validate.js';

function packageVersion(): string {
  // Same relative path from src/cli/ and dist/cli/.
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

/**
 * The `appvisor` program with every command registered. Commander never exits the process:
 * errors and `--help` surface as CommanderError, which {@link main} turns into an exit code.
 */
export function buildProgram(ctx: CliContext): Command {
  const program = new Command('appvisor')
    .description('Run many apps in one Node.js process, driven by YAML manifests.')
    .version(packageVersion(), '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => ctx.stdout.write(text),
      writeErr: (text) => ctx.stderr.write(text),
      getOutHasColors: () => colorEnabled(ctx.stdout, ctx.env),
      getErrHasColors: () => colorEnabled(ctx.stderr, ctx.env),
    });
  // Subcommands copy the settings above (output, exitOverride) when they are created.
  registerValidate(program, ctx);
  registerPlan(program, ctx);
  registerApply(program, ctx);
  registerServe(program, ctx);
  registerStatus(program, ctx);
  registerLogs(program, ctx);
  registerStartStop(program, ctx);
  registerToken(program, ctx);
  registerBackup(program, ctx);
  registerRestore(program, ctx);
  registerClone(program, ctx);
  registerRotateSecret(program, ctx);
  registerRekey(program, ctx);
  registerState(program, ctx);
  return program;
}

/** Runs the CLI with the arguments after `appvisor` and resolves to the exit code. */
export async function main(
  args: readonly string[] = process.argv.slice(2),
  io: CliIO = processIO(),
): Promise<number> {
  const ctx = createContext(io);
  const program = buildProgram(ctx);
  try {
    await program.parseAsync([...args], { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    throw err;
  }
  return ctx.exitCode;
}

function isEntryModule(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryModule()) {
  process.exitCode = await main();
}
