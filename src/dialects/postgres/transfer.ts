/**
 * PostgreSQL's data transfer (src/ops/transfer.ts): `pg_dump -Fc` of the app's database or schema,
 * `pg_restore` into a temporary database or schema beside it, and a swap of renames in one
 * transaction.
 *
 * Temporary objects are named and marked as the provider's leftovers (`temporaryName`, a
 * `COMMENT` carrying the owner), so what a killed restore left is listed by `listLeftovers` and
 * swept. The password reaches the tools by `PGPASSWORD`, never on a command line.
 *
 * Schema mode: `pg_restore` cannot rename a schema, so a schema's dump is restored into a
 * temporary database, renamed there to its temporary name, dumped again and restored into the
 * app's database (one transaction: the schema never exists there without its marker). That costs
 * a second dump and restore of the data (bench/backup.ts measures it). Function bodies that name
 * their own schema in their text are not rewritten by the rename.
 */
import fs from 'node:fs';
import { PassThrough, type Writable } from 'node:stream';
import pg from 'pg';
import { AppvisorError } from '../../errors.js';
import { runTool, type Tool, toolVersion, transferError } from '../../ops/tools.js';
import type { DataPlace, DataTransfer, TransferOptions } from '../../ops/transfer.js';
import type { OpOptions } from '../../providers/provider.js';
import { validateOwner } from '../identifiers.js';
import { type DatabaseUrl, parseServerUrl, serverOf, withDatabase } from '../url.js';
import { translateError } from './errors.js';
import { quoteIdentifier, quoteLiteral, validateIdentifier } from './identifiers.js';
import { isTemporaryName, temporaryName } from './provider.js';

const PG_DUMP: Tool = { command: 'pg_dump', debianPackage: 'postgresql-client' };
const PG_RESTORE: Tool = { command: 'pg_restore', debianPackage: 'postgresql-client' };

/** SQLSTATE 55006 object_in_use: a connection to a database being renamed. */
const OBJECT_IN_USE = '55006';
/** Schemas a database has before anything is restored into it. */
const SYSTEM_SCHEMA = /^(pg_.*|information_schema|public)$/;

export function createPostgresTransfer(opts: TransferOptions): DataTransfer {
  return new PostgresTransfer(parseServerUrl(opts.url, 'postgres', 5432));
}

class PostgresTransfer implements DataTransfer {
  readonly dialect = 'postgres' as const;
  readonly member = 'data.pgdump';
  readonly #url: DatabaseUrl;
  readonly #server: string;
  /** The database the transfer's own SQL connects to (never one it renames or drops). */
  readonly #adminDatabase: string;

  constructor(url: DatabaseUrl) {
    this.#url = url;
    this.#server = serverOf(url);
    this.#adminDatabase = url.database ?? 'postgres';
  }

  async checkTools(opts: OpOptions = {}): Promise<void> {
    const [dumpVersion] = await Promise.all([
      toolVersion(PG_DUMP, opts.signal),
      toolVersion(PG_RESTORE, opts.signal),
    ]);
    const toolMajor = majorOf(dumpVersion);
    const serverMajor = await this.#try('read the server version', opts, async (c) => {
      const { rows } = await c.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`);
      return Math.floor(Number(rows[0]?.v ?? 0) / 10000);
    });
    // pg_dump refuses a server newer than itself.
    if (toolMajor !== undefined && toolMajor < serverMajor) {
      throw new AppvisorError(
        'TOOL_MISSING',
        { tool: PG_DUMP.command, package: PG_DUMP.debianPackage },
        {
          message: `pg_dump ${toolMajor} cannot dump PostgreSQL ${serverMajor} on ${this.#server}: install pg_dump ${serverMajor} or newer (Debian package postgresql-client-${serverMajor}, from apt.postgresql.org on older releases)`,
        },
      );
    }
  }

  async dump(place: DataPlace, out: Writable, opts: OpOptions = {}): Promise<void> {
    // Uncompressed: the archive's gzip compresses it once (compressing twice costs time, saves nothing).
    const args = ['--format=custom', '--compress=0', ...this.#placeArgs(place)];
    await this.#tool('dump', place, opts, () =>
      runTool(PG_DUMP, {
        args,
        env: this.#env(),
        stdout: out,
        what: describe('pg_dump of', place),
        ...sig(opts),
      }),
    );
  }

  async load(place: DataPlace, dumpFile: string, owner: string, opts: OpOptions = {}): Promise<DataPlace> {
    validateOwner(owner);
    validatePlace(place);
    await fs.promises.access(dumpFile, fs.constants.R_OK);
    return place.kind === 'database'
      ? this.#loadDatabase(place, dumpFile, owner, opts)
      : this.#loadSchema(place, dumpFile, owner, opts);
  }

  async swap(place: DataPlace, loaded: DataPlace, owner: string, opts: OpOptions = {}): Promise<void> {
    validateOwner(owner);
    validatePlace(place);
    validateTemporary(loaded);
    if (place.kind !== loaded.kind || (place.kind === 'schema' && place.database !== loaded.database)) {
      throw new AppvisorError('UNSUPPORTED_MODE', {
        detail: `cannot swap ${describe('', loaded)} into ${describe('', place)}: not beside it`,
      });
    }
    if (place.kind === 'database') await this.#swapDatabase(place.database, loaded.database, owner, opts);
    else await this.#swapSchema(place.database, place.schema, (loaded as typeof place).schema, owner, opts);
  }

  async discard(loaded: DataPlace, opts: OpOptions = {}): Promise<void> {
    validateTemporary(loaded);
    if (loaded.kind === 'database') await this.#dropDatabase(loaded.database, opts);
    else {
      await this.#try(
        `drop temporary schema "${loaded.schema}"`,
        opts,
        (c) => c.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(loaded.schema)} CASCADE`),
        loaded.database,
      );
    }
  }

  async #loadDatabase(
    place: Extract<DataPlace, { kind: 'database' }>,
    dumpFile: string,
    owner: string,
    opts: OpOptions,
  ): Promise<DataPlace> {
    const temp = await this.#createTempDatabase(owner, opts);
    try {
      await this.#tool('load', place, opts, () =>
        runTool(PG_RESTORE, {
          args: restoreArgs(temp, dumpFile),
          env: this.#env(),
          what: `pg_restore into temporary database "${temp}" for ${describe('', place)}`,
          ...sig(opts),
        }),
      );
      return { kind: 'database', database: temp };
    } catch (err) {
      await this.#dropDatabase(temp, {}).catch(() => undefined);
      throw err;
    }
  }

  /**
   * Restores the dump into a temporary database, renames its schema there to a temporary name
   * with the marker, then copies that schema into the app's database in one transaction.
   */
  async #loadSchema(
    place: Extract<DataPlace, { kind: 'schema' }>,
    dumpFile: string,
    owner: string,
    opts: OpOptions,
  ): Promise<DataPlace> {
    const staging = await this.#createTempDatabase(owner, opts);
    const tempSchema = temporaryName('schema');
    let copied = false;
    try {
      await this.#tool('load', place, opts, () =>
        runTool(PG_RESTORE, {
          args: restoreArgs(staging, dumpFile),
          env: this.#env(),
          what: `pg_restore into staging database "${staging}" for ${describe('', place)}`,
          ...sig(opts),
        }),
      );
      await this.#try(
        `rename the restored schema in staging database "${staging}"`,
        opts,
        async (c) => {
          const { rows } = await c.query<{ name: string }>('SELECT nspname AS name FROM pg_namespace');
          const restored = rows.map((r) => r.name).filter((n) => !SYSTEM_SCHEMA.test(n));
          if (restored.length !== 1) {
            throw new AppvisorError('UNSUPPORTED_MODE', {
              detail: `the dump ${dumpFile} holds ${restored.length} schemas (${restored.join(', ') || 'none'}), not one app schema`,
            });
          }
          const q = pg.escapeIdentifier(tempSchema);
          await c.query(
            `ALTER SCHEMA ${pg.escapeIdentifier(restored[0]!)} RENAME TO ${q}; COMMENT ON SCHEMA ${q} IS ${quoteLiteral(owner)}`,
          );
        },
        staging,
      );
      // dump | restore, streamed: one transaction, so the schema and its marker arrive together.
      const pipe = new PassThrough();
      copied = true;
      await this.#tool('load', place, opts, () =>
        Promise.all([
          runTool(PG_DUMP, {
            args: ['--format=custom', `--schema=${pgPattern(tempSchema)}`, `--dbname=${staging}`],
            env: this.#env(),
            stdout: pipe,
            what: `pg_dump of staging schema "${tempSchema}"`,
            ...sig(opts),
          }).catch((err) => {
            pipe.destroy();
            throw err;
          }),
          runTool(PG_RESTORE, {
            args: ['--no-owner', '--exit-on-error', '--single-transaction', `--dbname=${place.database}`],
            env: this.#env(),
            stdin: pipe,
            what: `pg_restore of schema "${tempSchema}" into database "${place.database}"`,
            ...sig(opts),
          }),
        ]),
      );
      return { kind: 'schema', database: place.database, schema: tempSchema };
    } catch (err) {
      if (copied)
        await this.discard({ kind: 'schema', database: place.database, schema: tempSchema }).catch(
          () => undefined,
        );
      throw err;
    } finally {
      await this.#dropDatabase(staging, {}).catch(() => undefined);
    }
  }

  /**
   * One transaction of renames, so there is never a moment with neither database: the app's
   * database goes aside under a temporary name (marked, so a crash before the drop leaves a
   * leftover that is swept), the loaded one takes its name and the marker.
   */
  async #swapDatabase(name: string, loaded: string, owner: string, opts: OpOptions): Promise<void> {
    if (name === this.#adminDatabase) {
      throw new AppvisorError('UNSUPPORTED_MODE', {
        detail: `database "${name}" is the one appvisor connects to; it cannot be swapped`,
      });
    }
    const aside = temporaryName('database');
    const mark = quoteLiteral(owner);
    const renamed = await this.#try(`swap database "${loaded}" into "${name}"`, opts, async (c) => {
      for (let attempt = 1; ; attempt++) {
        // The app is stopped; connections still open (another process's pool) would block the rename.
        await c.query(
          'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ANY($1) AND pid <> pg_backend_pid()',
          [[name, loaded]],
        );
        const { rows } = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
        const exists = rows.length > 0;
        try {
          await c.query('BEGIN');
          if (exists) {
            await c.query(`COMMENT ON DATABASE ${quoteIdentifier('database', name)} IS ${mark}`);
            await c.query(
              `ALTER DATABASE ${quoteIdentifier('database', name)} RENAME TO ${pg.escapeIdentifier(aside)}`,
            );
          }
          await c.query(`COMMENT ON DATABASE ${pg.escapeIdentifier(loaded)} IS ${mark}`);
          await c.query(
            `ALTER DATABASE ${pg.escapeIdentifier(loaded)} RENAME TO ${quoteIdentifier('database', name)}`,
          );
          await c.query('COMMIT');
          return exists;
        } catch (err) {
          await c.query('ROLLBACK').catch(() => undefined);
          // A connection that arrived between the terminate and the rename: terminate it again.
          if ((err as { code?: unknown }).code === OBJECT_IN_USE && attempt < 5) continue;
          throw err;
        }
      }
    });
    // The data is in place: a drop that fails leaves a marked temporary database, swept later.
    if (renamed) await this.#dropDatabase(aside, {}).catch(() => undefined);
  }

  async #swapSchema(
    database: string,
    schema: string,
    loaded: string,
    owner: string,
    opts: OpOptions,
  ): Promise<void> {
    const aside = temporaryName('schema');
    const mark = quoteLiteral(owner);
    const q = (n: string) => pg.escapeIdentifier(n);
    const renamed = await this.#try(
      `swap schema "${loaded}" into "${schema}" in database "${database}"`,
      opts,
      async (c) => {
        await c.query('BEGIN');
        try {
          const { rows } = await c.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
          const exists = rows.length > 0;
          if (exists) {
            await c.query(`ALTER SCHEMA ${quoteIdentifier('schema', schema)} RENAME TO ${q(aside)}`);
            await c.query(`COMMENT ON SCHEMA ${q(aside)} IS ${mark}`);
          }
          await c.query(`ALTER SCHEMA ${q(loaded)} RENAME TO ${quoteIdentifier('schema', schema)}`);
          await c.query(`COMMENT ON SCHEMA ${quoteIdentifier('schema', schema)} IS ${mark}`);
          await c.query('COMMIT');
          return exists;
        } catch (err) {
          await c.query('ROLLBACK').catch(() => undefined);
          throw err;
        }
      },
      database,
    );
    // The data is in place: a drop that fails leaves a marked temporary schema, swept later.
    if (renamed) {
      await this.#try(
        `drop the old schema (set aside as "${aside}")`,
        {},
        (c) => c.query(`DROP SCHEMA ${q(aside)} CASCADE`),
        database,
      ).catch(() => undefined);
    }
  }

  /** CREATE DATABASE cannot run in a transaction: created, then marked at once. */
  async #createTempDatabase(owner: string, opts: OpOptions): Promise<string> {
    const temp = temporaryName('database');
    await this.#try(`create temporary database "${temp}"`, opts, async (c) => {
      await c.query(`CREATE DATABASE ${pg.escapeIdentifier(temp)}`);
      await c.query(`COMMENT ON DATABASE ${pg.escapeIdentifier(temp)} IS ${quoteLiteral(owner)}`);
    });
    return temp;
  }

  async #dropDatabase(name: string, opts: OpOptions): Promise<void> {
    await this.#try(`drop temporary database "${name}"`, opts, async (c) => {
      const { rows } = await c.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`);
      if (Number(rows[0]?.v ?? 0) >= 130000) {
        await c.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
        return;
      }
      await c.query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
        [name],
      );
      await c.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)}`);
    });
  }

  #placeArgs(place: DataPlace): string[] {
    validatePlace(place);
    return place.kind === 'database'
      ? [`--dbname=${place.database}`]
      : [`--schema=${pgPattern(place.schema)}`, `--dbname=${place.database}`];
  }

  /** The tools' connection, by environment (the password never on a command line). */
  #env(): Record<string, string> {
    const u = this.#url;
    const env: Record<string, string> = {
      PGHOST: u.host ?? '127.0.0.1',
      PGPORT: String(u.port ?? 5432),
      PGAPPNAME: 'appvisor:transfer',
      PGCONNECT_TIMEOUT: '10',
    };
    if (u.user) env.PGUSER = u.user;
    if (u.password !== undefined) env.PGPASSWORD = u.password;
    const sslmode = new URL(u.url).searchParams.get('sslmode');
    if (sslmode) env.PGSSLMODE = sslmode;
    return env;
  }

  async #tool<T>(op: string, place: DataPlace, opts: OpOptions, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      throw transferError(
        err,
        { dialect: 'postgres', server: this.#server, operation: `${op} ${describe('', place)}` },
        translateError,
      );
    }
  }

  /** Runs `work` on a fresh connection to `database` (the admin database by default). */
  async #try<T>(
    operation: string,
    opts: OpOptions,
    work: (c: pg.Client) => Promise<T>,
    database: string = this.#adminDatabase,
  ): Promise<T> {
    opts.signal?.throwIfAborted();
    const client = new pg.Client({
      connectionString: withDatabase(this.#url, database),
      connectionTimeoutMillis: 10_000,
      application_name: 'appvisor:transfer',
    });
    client.on('error', () => undefined);
    try {
      await client.connect();
      return await work(client);
    } catch (err) {
      if (err instanceof AppvisorError) throw err;
      throw translateError(err, { server: this.#server, operation });
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}

function restoreArgs(database: string, dumpFile: string): string[] {
  return ['--no-owner', '--exit-on-error', '--single-transaction', `--dbname=${database}`, dumpFile];
}

/** A schema name as a pg_dump pattern matching exactly it (quoted: no case folding). */
function pgPattern(schema: string): string {
  return `"${validateIdentifier('schema', schema)}"`;
}

function validatePlace(place: DataPlace): void {
  validateIdentifier('database', place.database);
  if (place.kind === 'schema') validateIdentifier('schema', place.schema);
}

/** Only what `load` made is swapped in or discarded. */
function validateTemporary(loaded: DataPlace): void {
  validatePlace(loaded);
  const ok =
    loaded.kind === 'database'
      ? isTemporaryName('database', loaded.database)
      : isTemporaryName('schema', loaded.schema);
  if (!ok) {
    throw new AppvisorError('INVALID_IDENTIFIER', {
      kind: loaded.kind,
      name: JSON.stringify(loaded.kind === 'database' ? loaded.database : loaded.schema),
      reason: 'only a temporary place a load made is swapped in or discarded',
    });
  }
}

function describe(prefix: string, place: DataPlace): string {
  const what =
    place.kind === 'database'
      ? `database "${place.database}"`
      : `schema "${place.schema}" in database "${place.database}"`;
  return prefix ? `${prefix} ${what}` : what;
}

function majorOf(version: string): number | undefined {
  const m = /(\d+)(?:\.\d+)?/.exec(version.replace(/^[^\d]*/, ''));
  return m ? Number(m[1]) : undefined;
}

function sig(opts: OpOptions): { signal?: AbortSignal } {
  return opts.signal ? { signal: opts.signal } : {};
}
