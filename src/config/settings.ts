import { statSync } from 'node:fs';
import path from 'node:path';
import { isMap } from 'yaml';
import { DEFAULT_SCHEMA_POOL_SIZE } from '../dialects/postgres/provider.js';
import { isDatabaseUrl, resolveDatabaseUrl } from '../dialects/registry.js';
import { AppvisorError } from '../errors.js';
import { readTextFileSync } from '../manifests/files.js';
import { MAX_ALIASES } from '../manifests/limits.js';
import { parseYaml, type YamlProblem } from '../manifests/parse.js';
import { schemaProblems, validateSettingsSchema } from '../manifests/validate.js';
import { parseDuration, parseIdleStop } from './duration.js';
import { DISCOVERY_ADAPTERS, PROCESS_ADAPTERS, type Settings, type SettingsInput } from './types.js';

/** Where settings come from besides appvisor.yaml. */
export interface SettingsOptions {
  /** `--config FILE`: this file must exist. @default `appvisor.yaml` in `cwd`, when there is one */
  readonly configFile?: string;
  /** `--dir DIR`: wins over the environment and the file. */
  readonly appsDir?: string;
  /** @default process.env */
  readonly env?: NodeJS.ProcessEnv;
  /** Relative paths (in the file, the environment and flags) are resolved against it. @default process.cwd() */
  readonly cwd?: string;
}

export const DEFAULT_CONFIG_FILE = 'appvisor.yaml';

/** The defaults of SPEC §3, before paths are resolved. */
export const SETTINGS_DEFAULTS = Object.freeze({
  host: '127.0.0.1',
  port: 13000,
  appsDir: 'apps.d',
  dataDir: 'data',
  backupsDir: 'backups',
  connectionBudget: 64,
  schemaPoolSize: DEFAULT_SCHEMA_POOL_SIZE,
  reconcileConcurrency: 4,
  deletionGrace: '24h',
  maxAppLabels: 5000,
});

/**
 * Reads appvisor.yaml (optional unless named with `configFile`), then applies the environment
 * and the flags: flags win over the environment, which wins over the file.
 * @throws AppvisorError CONFIG_INVALID (with `file:line:col` for problems in the file) or ADAPTER_UNSUPPORTED.
 */
export async function loadSettings(opts: SettingsOptions = {}): Promise<Settings> {
  const cwd = opts.cwd ?? process.cwd();
  const env = opts.env ?? process.env;
  const file = readSettingsFile(cwd, opts.configFile);
  return resolveSettings(file?.input ?? {}, { env, cwd, appsDir: opts.appsDir, configFile: file?.path });
}

/** Applies defaults, the environment and flags to settings from a file. Pure. */
export function resolveSettings(
  input: SettingsInput,
  opts: {
    env: NodeJS.ProcessEnv;
    cwd: string;
    appsDir?: string | undefined;
    configFile?: string | undefined;
  },
): Settings {
  const { env, cwd } = opts;
  const fromEnv = (name: string): string | undefined => {
    const value = env[name];
    return value === undefined || value === '' ? undefined : value;
  };
  const port = fromEnv('APPVISOR_PORT');
  const envUrl = fromEnv('APPVISOR_DATABASE_URL');
  if (envUrl !== undefined && !isDatabaseUrl(envUrl)) {
    throw new AppvisorError('CONFIG_INVALID', {
      detail: 'APPVISOR_DATABASE_URL must be sqlite:PATH, postgres://user:password@host:port/db or mysql://…',
    });
  }
  const dataDir = path.resolve(
    cwd,
    fromEnv('APPVISOR_DATA_DIR') ?? input.dataDir ?? SETTINGS_DEFAULTS.dataDir,
  );
  const url = envUrl ?? input.database?.url;
  const budget = fromEnv('APPVISOR_DB_CONNECTION_BUDGET');
  const labels = fromEnv('APPVISOR_METRICS_MAX_APP_LABELS');
  const app = fromEnv('APPVISOR_APP') ?? input.app;
  return Object.freeze({
    listen: Object.freeze({
      host: fromEnv('APPVISOR_HOST') ?? input.listen?.host ?? SETTINGS_DEFAULTS.host,
      port: port === undefined ? (input.listen?.port ?? SETTINGS_DEFAULTS.port) : parsePort(port),
    }),
    appsDir: path.resolve(
      cwd,
      opts.appsDir ?? fromEnv('APPVISOR_APPS_DIR') ?? input.appsDir ?? SETTINGS_DEFAULTS.appsDir,
    ),
    dataDir,
    backupsDir: path.resolve(
      cwd,
      fromEnv('APPVISOR_BACKUPS_DIR') ?? input.backupsDir ?? SETTINGS_DEFAULTS.backupsDir,
    ),
    database: Object.freeze({
      url: url === undefined ? `sqlite:${path.join(dataDir, 'main.sqlite')}` : resolveDatabaseUrl(url, cwd),
      connectionBudget:
        budget === undefined
          ? (input.database?.connectionBudget ?? SETTINGS_DEFAULTS.connectionBudget)
          : parseBudget(budget),
      schemaPoolSize: input.database?.schemaPoolSize ?? SETTINGS_DEFAULTS.schemaPoolSize,
    }),
    app: app === undefined ? undefined : path.resolve(cwd, app),
    applications: Object.freeze(
      Object.fromEntries(
        Object.entries(input.applications ?? {}).map(([name, module]) => [name, path.resolve(cwd, module)]),
      ),
    ),
    reconcile: Object.freeze({
      concurrency: input.reconcile?.concurrency ?? SETTINGS_DEFAULTS.reconcileConcurrency,
    }),
    mainDatabase: Object.freeze({ adopt: input.mainDatabase?.adopt ?? false }),
    admin: Object.freeze(input.admin?.hosts ? { hosts: Object.freeze([...input.admin.hosts]) } : {}),
    metrics: Object.freeze({
      maxAppLabels:
        labels === undefined
          ? (input.metrics?.maxAppLabels ?? SETTINGS_DEFAULTS.maxAppLabels)
          : parseMaxAppLabels(labels),
    }),
    discoveryAdapter: adapter('APP_DISCOVERY_ADAPTER', fromEnv('APP_DISCOVERY_ADAPTER'), DISCOVERY_ADAPTERS),
    processAdapter: adapter('APP_PROCESS_ADAPTER', fromEnv('APP_PROCESS_ADAPTER'), PROCESS_ADAPTERS),
    deletionGraceMs: parseGrace(fromEnv('APPVISOR_DELETION_GRACE'), input.deletionGrace),
    idleStopMs: parseIdleStopSetting(fromEnv('APPVISOR_IDLE_STOP'), input.idleStop),
    shutdownDrainMs: parseDrain(fromEnv('APPVISOR_SHUTDOWN_DRAIN'), input.shutdownDrain),
    configFile: opts.configFile,
  });
}

function parseBudget(value: string): number {
  const budget = /^\d{1,6}$/.test(value) ? Number(value) : Number.NaN;
  if (!(budget >= 1)) {
    throw new AppvisorError('CONFIG_INVALID', {
      detail: `APPVISOR_DB_CONNECTION_BUDGET must be a whole number of at least 1, got '${value}'`,
    });
  }
  return budget;
}

function parseMaxAppLabels(value: string): number {
  const n = /^\d{1,6}$/.test(value) ? Number(value) : Number.NaN;
  if (!(n >= 1 && n <= 100_000)) {
    throw new AppvisorError('CONFIG_INVALID', {
      detail: `APPVISOR_METRICS_MAX_APP_LABELS must be a whole number from 1 to 100000, got '${value}'`,
    });
  }
  return n;
}

function parseGrace(env: string | undefined, file: string | undefined): number {
  const text = env ?? file ?? SETTINGS_DEFAULTS.deletionGrace;
  const ms = parseDuration(text);
  if (ms === undefined) {
    // The file's value passed the schema's pattern; only the environment gets here.
    throw new AppvisorError('CONFIG_INVALID', {
      detail: `APPVISOR_DELETION_GRACE must be a duration such as 30m, 24h or 7d, got '${text}'`,
    });
  }
  return ms;
}

function parseDrain(env: string | undefined, file: string | undefined): number {
  const text = env ?? file ?? '0s';
  const ms = parseDuration(text);
  if (ms === undefined) {
    throw new AppvisorError('CONFIG_INVALID', {
      detail: `APPVISOR_SHUTDOWN_DRAIN must be a duration such as 1500ms or 2s, got '${text}'`,
    });
  }
  return ms;
}

/** Apps reconciled at once: the setting, or its default for hand-built settings. */
export function reconcileConcurrency(settings: Pick<Settings, 'reconcile'>): number {
  return settings.reconcile?.concurrency ?? SETTINGS_DEFAULTS.reconcileConcurrency;
}

function parseIdleStopSetting(env: string | undefined, file: string | 0 | undefined): number {
  const value = env ?? file ?? 'off';
  const ms = parseIdleStop(value);
  if (ms === undefined) {
    // The file's value passed the schema's pattern; only the environment gets here.
    throw new AppvisorError('CONFIG_INVALID', {
      detail: `APPVISOR_IDLE_STOP must be a duration such as 15m or 1h, or off, got '${value}'`,
    });
  }
  return ms;
}

function parsePort(value: string): number {
  const port = /^\d{1,5}$/.test(value) ? Number(value) : Number.NaN;
  if (!(port >= 0 && port <= 65535)) {
    throw new AppvisorError('CONFIG_INVALID', {
      detail: `APPVISOR_PORT must be a whole number from 0 to 65535, got '${value}'`,
    });
  }
  return port;
}

function adapter<T extends string>(setting: string, value: string | undefined, supported: readonly T[]): T {
  if (value === undefined) return supported[0]!;
  if ((supported as readonly string[]).includes(value)) return value as T;
  throw new AppvisorError('ADAPTER_UNSUPPORTED', { setting, value, supported: supported.join(', ') });
}

function readSettingsFile(
  cwd: string,
  configFile: string | undefined,
): { path: string; input: SettingsInput } | undefined {
  const display = configFile ?? DEFAULT_CONFIG_FILE;
  const file = path.resolve(cwd, display);
  if (configFile === undefined && !exists(file)) return undefined;
  if (configFile !== undefined && !exists(file)) {
    throw new AppvisorError('CONFIG_INVALID', { detail: `config file ${display} does not exist` });
  }
  const read = readTextFileSync(file);
  if (!read.ok) {
    const { line, column, message } = read.problem;
    throw new AppvisorError('CONFIG_INVALID', { detail: `${display}:${line}:${column}: ${message}` });
  }
  const parsed = parseYaml(read.text);
  const fail = (problems: readonly YamlProblem[]): never => {
    const lines = problems.map((problem) => {
      const { line, column } = parsed.source.position(problem.offset);
      return { line, column, text: `${display}:${line}:${column}: ${problem.message}` };
    });
    lines.sort((a, b) => a.line - b.line || a.column - b.column);
    throw new AppvisorError('CONFIG_INVALID', { detail: lines.map((l) => l.text).join('\n') });
  };
  // An empty appvisor.yaml (or one with only comments) means "all defaults".
  if (parsed.empty) return { path: file, input: {} };
  if (!parsed.doc || parsed.problems.length > 0) fail(parsed.problems);
  if (!isMap(parsed.doc?.contents)) {
    fail([
      { offset: 0, message: 'expected a mapping of settings (listen, appsDir, dataDir, database, app)' },
    ]);
  }
  let value: unknown;
  try {
    value = parsed.doc?.toJS({ maxAliasCount: MAX_ALIASES });
  } catch (err) {
    fail([
      { offset: 0, message: `cannot read the YAML: ${err instanceof Error ? err.message : String(err)}` },
    ]);
  }
  const problems = schemaProblems(validateSettingsSchema, value, parsed.source);
  if (problems.length > 0) fail(problems);
  return { path: file, input: value as SettingsInput };
}

function exists(file: string): boolean {
  try {
    statSync(file);
    return true;
  } catch {
    return false;
  }
}
