/**
 * The error registry: every error appvisor reports has a stable code, a message template,
 * an HTTP status where one applies, and whether retrying can help.
 *
 * Codes are part of the product contract (scripts match on them); each is documented in
 * README.md (a test checks that).
 */

export interface ErrorDefinition {
  /** Message template; `{key}` is replaced from the params. */
  readonly message: string;
  /** HTTP status when the error is answered over HTTP. */
  readonly status?: number;
  /** Whether the reconciler should retry with backoff (true) or wait for a manifest change (false). */
  readonly retryable: boolean;
  /** Answered over HTTP with `Retry-After` (SPEC §6: a start that is still under way). */
  readonly retryAfter?: true;
}

export const ERRORS = {
  // Manifests and settings
  MANIFEST_INVALID: { message: '{file}: {detail}', retryable: false },
  CONFIG_INVALID: { message: '{detail}', retryable: false },
  ADAPTER_UNSUPPORTED: {
    message: '{setting}={value} is not supported; supported: {supported}',
    retryable: false,
  },
  // Provisioning
  INVALID_IDENTIFIER: { message: '{kind} name {name} is not allowed: {reason}', retryable: false },
  DB_UNREACHABLE: { message: 'cannot reach {dialect} server {server}: {detail}', retryable: true },
  DB_PERMISSION_DENIED: {
    message: '{dialect} server {server} refused {operation}: {detail}',
    retryable: false,
  },
  DB_OPERATION_FAILED: {
    message: '{operation} failed on {dialect} server {server}: {detail}',
    retryable: true,
  },
  ADOPT_REFUSED: {
    message:
      '{kind} {name} already exists and appvisor did not create it; set database.adopt: true to use it',
    // Answered by a main app refused on a main database holding foreign tables.
    status: 503,
    retryable: false,
  },
  DROP_REFUSED: { message: 'not dropping {kind} {name}: {reason}', retryable: false },
  UNSUPPORTED_MODE: { message: '{detail}', retryable: false },
  EMPTY_SET_GUARD: {
    message:
      'no valid manifest is left but {count} app(s) are known; nothing is removed (pass --allow-empty to remove them all)',
    retryable: false,
  },
  STEP_TIMEOUT: { message: '{step} for app {app} did not finish within {ms} ms', retryable: true },
  LOCK_HELD: {
    message: 'another appvisor process holds the reconcile lock on {target}{holder}; waited {ms} ms',
    // Over HTTP: an operation asked of a replica that does not lead, or while a command holds the lease.
    status: 409,
    retryable: true,
  },
  STATE_STORE_FAILED: { message: 'state store {target}: {detail}', retryable: true },
  STATE_EXPORT_INVALID: { message: 'state file {file}: {detail}', retryable: false },
  // Fencing (every write of a reconcile is a compare-and-set on the record version and the lock term).
  LOCK_LOST: {
    message:
      'the reconcile lock on {target} was lost ({detail}); this run writes nothing more and runs again once the lock is taken again',
    retryable: true,
  },
  STATE_CONFLICT: {
    message:
      "app {app}'s record changed in the state store since this reconcile read it (version {expected}, now {actual}); nothing was written, and the app is reconciled again",
    retryable: true,
  },
  // Runtime and HTTP
  APP_NOT_FOUND: { message: 'no app named {app}', status: 404, retryable: false },
  APP_DISABLED: { message: 'app {app} is disabled', status: 503, retryable: false },
  APP_NEEDS_UPGRADE: {
    message:
      'app {app} has data version {dataVersion} but the code is at {codeVersion}; set upgrade: true to migrate',
    status: 503,
    retryable: false,
    // On a replica whose code is newer than the data during a rolling upgrade: others serve it.
    retryAfter: true,
  },
  APP_DATA_NEWER: {
    message:
      "app {app} has data version {dataVersion}, newer than the code ({codeVersion}); upgrade appvisor's app",
    status: 503,
    retryable: false,
    // During a rolling upgrade another replica runs the newer code: the load balancer retries there.
    retryAfter: true,
  },
  UPGRADE_HELD_BACK: {
    message:
      'the upgrade of app {app} to version {codeVersion} is held back: replica {replica} runs version {version}, which could not serve the migrated data; it runs once no live replica runs an older version',
    status: 503,
    retryable: true,
    retryAfter: true,
  },
  APP_WRONG_APPLICATION: {
    message:
      "app {app}'s data belongs to application {data}, but this appvisor runs application {code} on it; nothing was run. Pick the application that owns the data (the manifest's application: <name> from settings applications, or settings app / APPVISOR_APP for an app that names none), give the app another database, or empty its data (drop its tables) to move it to {code}",
    status: 503,
    retryable: false,
  },
  APP_STOPPED: {
    message:
      'app {app} was stopped by {by} at {at}; it stays stopped until started again: `appvisor start {app}` or POST /_supervisor/api/apps/{app}/start',
    status: 503,
    retryable: false,
  },
  APP_ERROR: { message: 'app {app} failed: {detail}', status: 503, retryable: true },
  // An isolated app (SPEC §8.3) that the watchdog or its own exit ended: it is restarted with the
  // queue's backoff, and answered 503 with Retry-After meanwhile.
  APP_CRASHED: {
    message: 'app {app} crashed ({detail}); it is restarted (with backoff if it keeps crashing)',
    status: 503,
    retryable: true,
    retryAfter: true,
  },
  APP_UNRESPONSIVE: {
    message:
      "app {app}'s event loop was blocked for more than {ms} ms (isolation.watchdogMs); it was stopped and is restarted (with backoff if it keeps failing)",
    status: 503,
    retryable: true,
    retryAfter: true,
  },
  APP_OUT_OF_MEMORY: {
    message:
      'app {app} used {usedMb} MiB, over its isolation.memoryLimitMb of {limitMb} MiB; it was stopped and is restarted (with backoff if it keeps failing)',
    status: 503,
    retryable: true,
    retryAfter: true,
  },
  APP_STARTING: {
    message: 'app {app} is starting; retry shortly',
    status: 503,
    retryable: true,
    retryAfter: true,
  },
  APP_START_TIMEOUT: {
    message: 'app {app} did not start within {ms} ms',
    status: 503,
    retryable: true,
    retryAfter: true,
  },
  APP_HANDLER_FAILED: { message: 'app {app} failed to handle the request', status: 500, retryable: false },
  UNAUTHORIZED: { message: 'missing or invalid admin token', status: 401, retryable: false },
  NOT_FOUND: { message: 'no such route', status: 404, retryable: false },
  METHOD_NOT_ALLOWED: { message: 'allowed methods: {allow}', status: 405, retryable: false },
  INTERNAL: { message: 'internal error', status: 500, retryable: false },
  SERVER_UNREACHABLE: { message: 'no appvisor server answers at {url}: {detail}', retryable: true },
  // Per-app operations and secrets (SPEC §8.4, §8.5, §8.7)
  FORBIDDEN: {
    message: 'admin token {token} has scope {scope}; {action} needs scope {needs}',
    status: 403,
    retryable: false,
  },
  TOOL_MISSING: {
    message:
      '{tool} is not installed or not on PATH; it comes with the Debian package {package} (apt-get install {package})',
    retryable: false,
  },
  ARCHIVE_INVALID: { message: 'backup archive {file} is unusable: {detail}', status: 400, retryable: false },
  MASTER_KEY_INVALID: { message: 'master key {source}: {detail}', retryable: false },
  REQUEST_INVALID: { message: '{detail}', status: 400, retryable: false },
  SHUTTING_DOWN: { message: 'appvisor is shutting down', status: 503, retryable: true, retryAfter: true },
  TOKEN_INVALID: { message: '{detail}', status: 400, retryable: false },
  TOKEN_EXISTS: { message: 'admin token name {token} is taken: {detail}', status: 409, retryable: false },
  TOKEN_NOT_FOUND: { message: 'no admin token named {token}', status: 404, retryable: false },
} as const satisfies Record<string, ErrorDefinition>;

export type ErrorCode = keyof typeof ERRORS;

/** Whether `x` is one of the registry's codes (e.g. a code read back from the state store). */
export function isErrorCode(x: unknown): x is ErrorCode {
  return typeof x === 'string' && Object.hasOwn(ERRORS, x);
}

/** An error as records, history, views and events store and show it: a registry code and a message. */
export interface ErrorSummary {
  readonly code: ErrorCode;
  readonly message: string;
}

export type ErrorParams = Record<string, string | number | boolean | undefined>;

function render(template: string, params: ErrorParams): string {
  return template.replace(/\{(\w+)\}/g, (whole, key: string) => {
    const value = params[key];
    return value === undefined ? whole : String(value);
  });
}

/** An error with a registry code. `retryable` follows the registry unless overridden. */
export class AppvisorError extends Error {
  readonly code: ErrorCode;
  readonly status: number | undefined;
  readonly retryable: boolean;
  readonly params: ErrorParams;

  /** `options.message` replaces the rendered template (for a message composed elsewhere, e.g. a plan step). */
  constructor(
    code: ErrorCode,
    params: ErrorParams = {},
    options: { cause?: unknown; retryable?: boolean; message?: string } = {},
  ) {
    const def: ErrorDefinition = ERRORS[code];
    super(
      options.message ?? render(def.message, params),
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = 'AppvisorError';
    this.code = code;
    this.status = def.status;
    this.retryable = options.retryable ?? def.retryable;
    this.params = params;
  }

  toJSON(): ErrorSummary {
    return { code: this.code, message: this.message };
  }
}

/**
 * The one way any thrown value becomes an AppvisorError: an AppvisorError is returned unchanged;
 * anything else (a driver error, a plain Error, a rejection with a string) becomes `fallback`,
 * with its message as the `detail` param (the one the registry's templates show) unless `params`
 * sets one, and the original as the cause. A foreign `code` property (`42P01`, `ER_BAD_DB_ERROR`,
 * `ECONNRESET`) is never taken as the code. Where a database driver may have thrown, translate
 * with the dialect's `translateDbError` first: it knows which driver codes mean what.
 */
export function toAppvisorError(err: unknown, fallback: ErrorCode, params: ErrorParams = {}): AppvisorError {
  return err instanceof AppvisorError ? err : wrapError(err, fallback, params);
}

/** `err` as a new `code` error: its message as `detail` unless `params` sets one, itself as the cause. */
export function wrapError(err: unknown, code: ErrorCode, params: ErrorParams = {}): AppvisorError {
  return new AppvisorError(
    code,
    { ...params, detail: params.detail ?? messageOf(err) },
    err === undefined ? {} : { cause: err },
  );
}

/** The stored/shown form of any thrown value; see {@link toAppvisorError}. */
export function summaryOf(err: unknown, fallback: ErrorCode, params: ErrorParams = {}): ErrorSummary {
  return toAppvisorError(err, fallback, params).toJSON();
}

/**
 * Marks a failure that must not be retried until the manifest changes (controller-runtime's
 * TerminalError). Any AppvisorError with `retryable: false` is terminal too.
 */
export function isTerminal(err: unknown): boolean {
  return err instanceof AppvisorError && !err.retryable;
}

/** A one-line message for any thrown value, for logs and records. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** The code of an error, or undefined for foreign errors. */
export function codeOf(err: unknown): ErrorCode | undefined {
  return err instanceof AppvisorError ? err.code : undefined;
}
