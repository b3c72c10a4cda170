/**
 * The manifest types. `schema/app.schema.json` is the single source of truth; a test
 * (test/manifests/schema-types.test.ts) fails when these drift from it.
 */

export type DatabaseMode = 'new-database' | 'new-connection' | 'new-schema';
export type StartMode = 'on-first-visit' | 'with-main';
export type SecretMode = 'own' | 'shared';
export type DeletionPolicy = 'retain' | 'drop';
/** SPEC §8.3: where the app's code runs. */
export type IsolationMode = 'shared' | 'worker' | 'process';

/** A manifest's `isolation` with its defaults filled in (see `isolationOf`). */
export interface Isolation {
  readonly mode: IsolationMode;
  /** worker/process: the app is restarted when it uses more (JS heap for a worker; RSS for a process). */
  readonly memoryLimitMb: number;
  /** worker/process: an event loop blocked longer than this gets the app restarted. */
  readonly watchdogMs: number;
}

/** A manifest after defaults are applied: every optional field has its value. Frozen. */
export interface AppManifest {
  readonly apiVersion: 'appvisor/v1';
  readonly kind: 'App';
  readonly name: string;
  readonly displayName: string;
  readonly enabled: boolean;
  readonly startMode: StartMode;
  readonly environment: 'local';
  readonly database: {
    readonly mode: DatabaseMode;
    /** Database name; for new-schema, the main database (informational). */
    readonly name: string;
    /** PostgreSQL schema name, only for new-schema. */
    readonly schema?: string;
    /** Another server, only for new-connection. */
    readonly connection?: { readonly url: string };
    readonly adopt: boolean;
  };
  readonly upgrade: boolean;
  readonly jwt: { readonly secret: SecretMode };
  readonly domains: readonly string[];
  readonly config: Readonly<Record<string, unknown>>;
  readonly deletionPolicy: DeletionPolicy;
  /** Only with deletionPolicy: drop: the grace before a removed app's data is dropped (a duration, e.g. `24h`); absent: the deletionGrace setting. */
  readonly dropAfter?: string;
  /**
   * Stop the app after it served nothing for this long (a duration, e.g. `15m`); `off` or `0`:
   * never, whatever the settings say; absent: the idleStop setting.
   */
  readonly idleStop?: IdleStop;
  /**
   * Which application runs the app: a key of the settings' `applications`; absent: the default
   * application (settings `app`). Kept absent when not written, so older manifests keep their hash.
   */
  readonly application?: string;
  /**
   * As written, defaults filled in; absent when the manifest does not set it (shared mode):
   * read it through `isolationOf`, so older manifests keep their hash.
   */
  readonly isolation?: Isolation;
}

/** A manifest's `idleStop` as written: a duration, or `off` / `0` for never. */
export type IdleStop = string | 0;

/** One problem in one file, with a 1-based position. */
export interface ManifestError {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly message: string;
}

/** A valid manifest and where it came from. */
export interface LoadedManifest {
  readonly file: string;
  readonly manifest: AppManifest;
  /** Stable hash of the manifest after defaults (not of the file's text). */
  readonly hash: string;
}

/** A file that could not be turned into a valid manifest. */
export interface InvalidFile {
  readonly file: string;
  /** The app name, when the file still names one (so the planner can keep that app running). */
  readonly name?: string;
  readonly errors: readonly ManifestError[];
}

/** The result of reading an apps folder: valid manifests plus the errors per file. */
export interface ManifestSet {
  readonly dir: string;
  readonly apps: readonly LoadedManifest[];
  readonly invalid: readonly InvalidFile[];
}
