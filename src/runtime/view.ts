import type { ErrorSummary } from '../errors.js';
import type { Dialect } from '../providers/provider.js';
import type { AppStatus } from '../state/types.js';

/** One app as the admin API shows it (SPEC §6 `GET /_supervisor/api/apps`). */
export interface AppView {
  readonly name: string;
  readonly displayName: string;
  readonly status: AppStatus;
  /** Why the app is `stopped` when appvisor stopped it by itself: `idle` (SPEC §8.2); else null. */
  readonly statusReason?: 'idle' | null;
  readonly enabled: boolean;
  readonly startMode: 'on-first-visit' | 'with-main';
  readonly database: {
    readonly mode: 'new-database' | 'new-connection' | 'new-schema';
    readonly dialect: Dialect | null;
    readonly name: string;
    readonly schema: string | null;
  };
  readonly domains: readonly string[];
  readonly jwt: { readonly secret: 'own' | 'shared' };
  readonly error: ErrorSummary | null;
  readonly startedAt: string | null;
  readonly lastReconciledAt: string | null;
  /** Extra fields for the UI (not in the SPEC shape, additive). */
  readonly file?: string | null;
  /** While orphaned with deletionPolicy: drop: when the scheduled drop is due (ISO time). */
  readonly dropAt?: string | null;
  /** The operator's last start/stop (a stop holds until a start). */
  readonly intent?: { readonly action: 'start' | 'stop'; readonly by: string; readonly at: string } | null;
}

/** A status change, as fed to SSE, metrics and the log from one place. */
export interface StatusEvent {
  readonly app: string;
  readonly status: AppStatus;
  readonly previous: AppStatus | null;
  readonly error: ErrorSummary | null;
  readonly at: string;
}
