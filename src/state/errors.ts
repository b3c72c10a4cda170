import { dialectNamed } from '../dialects/registry.js';
import type { DatabaseUrl } from '../dialects/url.js';
import { AppvisorError, messageOf } from '../errors.js';
import type { Dialect } from '../providers/provider.js';
import { CorruptRowError } from './rows.js';

/** Where a store lives, for messages. */
export interface StoreTarget {
  readonly dialect: Dialect;
  /** Redacted (no password). */
  readonly target: string;
}

/**
 * A state store failure as an AppvisorError: DB_UNREACHABLE (retryable) when the server cannot
 * be reached, DB_PERMISSION_DENIED (terminal) when it refuses, else STATE_STORE_FAILED
 * (retryable) with the server's message. AppvisorErrors pass through.
 */
export function storeError(err: unknown, where: StoreTarget, operation: string): AppvisorError {
  if (err instanceof AppvisorError) return err;
  if (err instanceof CorruptRowError) {
    return new AppvisorError('STATE_STORE_FAILED', {
      target: where.target,
      detail: `${operation}: ${err.message}`,
    });
  }
  const translated = dialectNamed(where.dialect).translateError(err, {
    server: where.target,
    operation: `state store ${operation}`,
  });
  switch (translated.code) {
    case 'DB_UNREACHABLE':
      return new AppvisorError(
        'DB_UNREACHABLE',
        {
          ...translated.params,
          detail: `state store unavailable during ${operation} (${translated.params.detail})`,
        },
        { cause: err },
      );
    case 'DB_PERMISSION_DENIED':
      return translated;
    default:
      return new AppvisorError(
        'STATE_STORE_FAILED',
        { target: where.target, detail: `${operation}: ${translated.params.detail ?? messageOf(err)}` },
        { cause: err },
      );
  }
}

/** Runs `fn`, turning whatever it throws into a state store error. */
export async function guard<T>(where: StoreTarget, operation: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw storeError(err, where, operation);
  }
}

/** Some URLs may leave the database out (`mysql://host/`), but the store needs one to live in. */
export function requireDatabase(url: DatabaseUrl): void {
  const dialect = dialectNamed(url.dialect);
  if (dialect.storeNeedsDatabase && !url.database) {
    throw new AppvisorError('CONFIG_INVALID', {
      detail: `database URL ${url.redacted} names no database; the state store needs one (${dialect.urlForm}${dialect.exampleDatabase})`,
    });
  }
}
