/**
 * A fleet of apps for the admin UI at scale (test/admin/ui-list.test.ts, bench/ui-list.ts): `size`
 * plain apps, each field alike, and a few apps that are the only one with some value, so that a
 * search or a filter has exactly one right answer.
 */
import type { AppView } from '../../src/runtime/view.js';
import { appView } from './ui-harness.js';

/** The apps that are alone in something, by what they are alone in. */
export const UNIQUE = {
  /** Its name is the only one with "needle". */
  name: 'needle',
  /** Its display name is the only "Quarterly Ledger". */
  displayName: 'books',
  /** The only domain under unique.example. */
  domain: 'storefront',
  /** The only `upgrading` app. */
  status: 'migrator',
  /** The only `with-main` app. */
  startMode: 'always-on',
  /** The only one on MariaDB. */
  dialect: 'maria',
  /** The only one running the application `crm-suite`. */
  application: 'sales',
  /** The only one with an error (APP_CRASHED), in `error`. */
  error: 'broken',
  /** The only `needs-upgrade` app. */
  needsUpgrade: 'old-schema',
  /** The only one with a scheduled drop. */
  drop: 'leaving',
  /** The only one the replica's drift names. */
  drift: 'drifted',
} as const;

/** The plain apps' names: `app-00000` … */
export function plainName(i: number): string {
  return `app-${String(i).padStart(5, '0')}`;
}

/** `size` apps in all: the unique ones above, then plain ones (running, on SQLite, no error). */
export function fleet(size: number): AppView[] {
  const plain = (name: string, patch: Partial<AppView> = {}) =>
    appView(name, {
      status: 'running',
      application: { key: null, name: 'sample', version: 1 },
      startedAt: '2024-05-01T10:00:01.000Z',
      ...patch,
    });
  const unique: AppView[] = [
    plain(UNIQUE.name),
    plain(UNIQUE.displayName, { displayName: 'Quarterly Ledger' }),
    plain(UNIQUE.domain, { domains: ['shop.unique.example'] }),
    plain(UNIQUE.status, { status: 'upgrading' }),
    plain(UNIQUE.startMode, { startMode: 'with-main' }),
    plain(UNIQUE.dialect, {
      database: { mode: 'new-connection', dialect: 'mysql', name: 'maria', schema: null },
    }),
    plain(UNIQUE.application, { application: { key: 'crm', name: 'crm-suite', version: 4 } }),
    plain(UNIQUE.error, {
      status: 'error',
      error: { code: 'APP_CRASHED', message: 'the app crashed 3 times in a row' },
    }),
    plain(UNIQUE.needsUpgrade, { status: 'needs-upgrade' }),
    plain(UNIQUE.drop, { status: 'orphaned', dropAt: '2026-12-24T08:00:00.000Z' }),
    plain(UNIQUE.drift),
  ];
  const apps = [...unique];
  for (let i = 0; apps.length < size; i++) apps.push(plain(plainName(i)));
  return apps;
}
