/** Supervisor settings as a user writes them in appvisor.yaml (all optional). */
export interface SettingsInput {
  listen?: {
    /** @default '127.0.0.1' */
    host?: string;
    /** @default 13000 */
    port?: number;
  };
  /** @default 'apps.d' */
  appsDir?: string;
  /** Where backups go by default (`appvisor backup`, the backup before a drop). @default 'backups' */
  backupsDir?: string;
  /** @default 'data' */
  dataDir?: string;
  database?: {
    /** Main database; holds the state store. @default 'sqlite:<dataDir>/main.sqlite' */
    url?: string;
    /** Most open connections of all app pools to one PostgreSQL server. @default 64 */
    connectionBudget?: number;
    /**
     * Connections of the one pool the new-schema apps of a PostgreSQL database share (each
     * checkout sets the app's search_path); 0 gives each app its own pool instead, for apps that
     * keep session state (`SET`, `LISTEN`, advisory locks) between statements. @default 10
     */
    schemaPoolSize?: number;
  };
  /** Module path of the application every instance runs. @default the built-in sample app */
  app?: string;
  /**
   * More applications by name (SPEC §8.6): a manifest's `application: <name>` picks one; the
   * others run the default one (`app`). @default {}
   */
  applications?: Record<string, string>;
  /**
   * Grace between a removal and the drop of an app with deletionPolicy: drop (a duration; a
   * manifest's dropAfter wins). @default '24h'
   */
  deletionGrace?: string;
  /** On SIGTERM, how long readyz says 503 while requests are still served (a duration). @default '0s' */
  shutdownDrain?: string;
  reconcile?: {
    /**
     * Apps reconciled at once (`serve` and `apply`); one app never has two runs at once.
     * @default 4
     */
    concurrency?: number;
  };
  /**
   * Stop an app after it served nothing for this long (a duration; `off` or `0`: never; a
   * manifest's idleStop wins). @default 'off'
   */
  idleStop?: string | 0;
  mainDatabase?: {
    /**
     * Let appvisor install the state store and the main app in a main database (PostgreSQL: its
     * schemas `appvisor` and `public`) that holds tables appvisor did not create. @default false
     */
    adopt?: boolean;
  };
  /** The supervisor's own routes, `/_supervisor/…` (admin UI and API, healthz, readyz, metrics). */
  admin?: {
    /**
     * Host names on which `/_supervisor/…` answers (case-insensitive, any port); on any other
     * host those paths go to the main app like any other path. An app's domain never serves them.
     * @default every host that is not one of an app's `domains`
     */
    hosts?: string[];
  };
  /** What `GET /_supervisor/metrics` exports. */
  metrics?: {
    /**
     * Most distinct `app` label values of each per-app metric; later apps count as `other`.
     * Env: APPVISOR_METRICS_MAX_APP_LABELS. @default 5000
     */
    maxAppLabels?: number;
  };
}

export const DISCOVERY_ADAPTERS = ['local'] as const;
export const PROCESS_ADAPTERS = ['local'] as const;

/** Resolved settings: defaults and environment applied, paths absolute, frozen. */
export interface Settings {
  readonly listen: { readonly host: string; readonly port: number };
  /** Absolute path. */
  readonly appsDir: string;
  /** Absolute path. */
  readonly dataDir: string;
  /**
   * Absolute path of the default backups folder. Always set by loadSettings; optional so
   * hand-built settings may omit it (`backups` beside the apps folder).
   */
  readonly backupsDir?: string;
  readonly database: {
    readonly url: string;
    /** Always set by loadSettings; optional so hand-built settings (tests, embedders) may omit it (64). */
    readonly connectionBudget?: number;
    /** Always set by loadSettings; optional so hand-built settings may omit it (10). */
    readonly schemaPoolSize?: number;
  };
  /** Absolute module path, or undefined for the built-in sample app. */
  readonly app: string | undefined;
  /**
   * Absolute module paths of the named applications (a manifest's `application`). Always set by
   * loadSettings; optional so hand-built settings may omit it (none).
   */
  readonly applications?: Readonly<Record<string, string>>;
  /** Always set by loadSettings; optional so hand-built settings may omit it (concurrency 4). */
  readonly reconcile?: { readonly concurrency: number };
  /** Always set by loadSettings; optional so hand-built settings may omit it (adopt: false). */
  readonly mainDatabase?: { readonly adopt: boolean };
  /** Always set by loadSettings; optional so hand-built settings may omit it (no host restriction). */
  readonly admin?: { readonly hosts?: readonly string[] };
  /** Always set by loadSettings; optional so hand-built settings may omit it (5000 labels). */
  readonly metrics?: { readonly maxAppLabels: number };
  readonly discoveryAdapter: (typeof DISCOVERY_ADAPTERS)[number];
  readonly processAdapter: (typeof PROCESS_ADAPTERS)[number];
  /** Milliseconds between a removal and the scheduled drop (deletionPolicy: drop). */
  readonly deletionGraceMs: number;
  /**
   * Milliseconds without a request after which an app is stopped (0: never). Always set by
   * loadSettings; optional so hand-built settings may omit it (off).
   */
  readonly idleStopMs?: number;
  /** Milliseconds a replica drains (readyz 503, still serving) before it stops on SIGTERM; 0 or absent: none. */
  readonly shutdownDrainMs?: number;
  /** Absolute path of the appvisor.yaml that was read, if any. */
  readonly configFile: string | undefined;
}
