/**
 * The application contract (SPEC §7): what a module must export so appvisor can run it as many
 * app instances in one process, and the loader that checks a module against it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { pathToFileURL } from 'node:url';
import type { Logger } from 'pino';
import { AppvisorError, messageOf } from '../errors.js';
import type { AppDatabase, SqlClient } from '../providers/provider.js';
import type { JwtHelpers } from './jwt.js';

/**
 * One schema step. `up` runs in a transaction where the dialect allows it; MySQL/MariaDB commit
 * DDL implicitly, so migrations must be idempotent there (`CREATE TABLE IF NOT EXISTS`, …).
 * `db.dialect` tells which SQL to write.
 */
export interface Migration {
  /** Integer >= 1; migrations are listed in strictly increasing order. */
  readonly version: number;
  readonly description: string;
  up(db: SqlClient): Promise<void>;
}

/** What an app instance gets from appvisor when it is created. */
export interface AppContext {
  /** The app's name (`main` for the main app). */
  readonly name: string;
  /** The manifest's displayName, when there is one. */
  readonly displayName?: string;
  /** `/apps/<name>` for a sub-app, `''` for the main app. Requests arrive with it stripped. */
  readonly basePath: string;
  /** The manifest's free-form `config`. */
  readonly config: Readonly<Record<string, unknown>>;
  /** The app's own database: a ready client and the settings behind it (for an ORM). */
  readonly database: AppDatabase;
  /** Bound to the app's secret and audience. */
  readonly jwt: JwtHelpers;
  /** A pino logger bound to the app. */
  readonly log: Logger;
  readonly isMain: boolean;
}

/** A running app instance: a Node request listener and what to do on stop. */
export interface AppInstance {
  /** A Node request listener: Express, Koa's `callback()`, Fastify's or Hono's node adapter fit. */
  readonly handler: (req: IncomingMessage, res: ServerResponse) => void;
  /** WebSocket (or other) upgrades routed to this app. */
  readonly upgrade?: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  /** Called when the instance stops, before its database pool is closed. */
  close?(): Promise<void> | void;
}

/** The default export of an application module. */
export interface Application {
  /**
   * Who the application is, e.g. `crm` or `@acme/crm`: recorded as the owner of every app's data
   * (in the app's database and in the state store), so a different module is refused on it
   * instead of running its migrations there (APP_WRONG_APPLICATION). Keep it across versions.
   */
  readonly name: string;
  /** The code's data version: integer >= 1; the data is migrated up to it. */
  readonly version: number;
  /** Ordered, unique versions, none above `version`. */
  readonly migrations: readonly Migration[];
  create(ctx: AppContext): Promise<AppInstance> | AppInstance;
}

/**
 * Imports an application module (an absolute path, a path relative to the working directory or a
 * `file:` URL), or the built-in sample app when `modulePath` is undefined, and checks its shape.
 * Throws CONFIG_INVALID naming the module and the problem.
 */
export async function loadApplication(modulePath: string | undefined): Promise<Application> {
  if (modulePath === undefined) {
    const mod = (await import('../sample-app/index.js')) as { default: unknown };
    return validateApplication(mod.default, 'built-in sample app');
  }
  const url = modulePath.startsWith('file:') ? modulePath : pathToFileURL(path.resolve(modulePath)).href;
  let mod: { default?: unknown };
  try {
    mod = (await import(url)) as { default?: unknown };
  } catch (err) {
    throw invalid(modulePath, `cannot be imported: ${messageOf(err)}`, err);
  }
  if (mod.default === undefined) throw invalid(modulePath, 'has no default export');
  return validateApplication(mod.default, modulePath);
}

/** Checks that `value` is an {@link Application}; `source` names it in errors. Returns it frozen. */
export function validateApplication(value: unknown, source: string): Application {
  if (typeof value !== 'object' || value === null) {
    throw invalid(source, 'default export must be an object { version, migrations, create }');
  }
  const app = value as Record<string, unknown>;
  if (app.name === undefined) {
    throw invalid(
      source,
      "has no name: add e.g. name: 'crm' to its default export (appvisor records which application owns each app's data, and refuses another one on it)",
    );
  }
  if (typeof app.name !== 'string' || !APPLICATION_NAME.test(app.name)) {
    throw invalid(source, `name must be 1-100 letters, digits or @ / . _ -, got ${describe(app.name)}`);
  }
  if (!isPositiveInteger(app.version)) {
    throw invalid(source, `version must be an integer >= 1, got ${describe(app.version)}`);
  }
  if (typeof app.create !== 'function') throw invalid(source, 'create must be a function');
  if (!Array.isArray(app.migrations)) throw invalid(source, 'migrations must be an array');
  let previous = 0;
  for (const [i, m] of (app.migrations as unknown[]).entries()) {
    const where = `migrations[${i}]`;
    if (typeof m !== 'object' || m === null) throw invalid(source, `${where} must be an object`);
    const migration = m as Record<string, unknown>;
    if (!isPositiveInteger(migration.version)) {
      throw invalid(source, `${where}.version must be an integer >= 1, got ${describe(migration.version)}`);
    }
    if (typeof migration.description !== 'string')
      throw invalid(source, `${where}.description must be a string`);
    if (typeof migration.up !== 'function') throw invalid(source, `${where}.up must be a function`);
    if (migration.version === previous) {
      throw invalid(source, `${where}.version ${migration.version} is listed twice`);
    }
    if (migration.version < previous) {
      throw invalid(source, `${where}.version ${migration.version} comes after ${previous}: sort migrations`);
    }
    if (migration.version > app.version) {
      throw invalid(
        source,
        `${where}.version ${migration.version} is above the app's version ${app.version}`,
      );
    }
    previous = migration.version;
  }
  const create = app.create as Application['create'];
  return Object.freeze({
    name: app.name,
    version: app.version,
    migrations: Object.freeze([...(app.migrations as Migration[])]),
    // Bound so a class instance's method keeps its `this`.
    create: create.bind(app),
  });
}

const APPLICATION_NAME = /^[A-Za-z0-9@/._-]{1,100}$/;

function isPositiveInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1;
}

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

function invalid(source: string, detail: string, cause?: unknown): AppvisorError {
  return new AppvisorError('CONFIG_INVALID', { detail: `application ${source}: ${detail}` }, { cause });
}
