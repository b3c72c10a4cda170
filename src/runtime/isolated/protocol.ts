/**
 * The messages between an isolated app's runner (in the supervisor) and its host (in the app's
 * worker thread or child process). Plain JSON, so the same messages cross a MessagePort and a
 * child process's IPC channel. Secrets travel only here, never in argv or the environment.
 */
import type { ConnectionSettings } from '../../providers/provider.js';
import type { SecretSet } from '../../state/types.js';
import type { InstanceSpec } from '../adapter.js';
import type { InstanceSecrets } from '../instance.js';

/** Where the host opens the app's database: the parent resolved it (and reserved its connections). */
export interface HostDatabase {
  readonly connection: ConnectionSettings;
  readonly maxConnections: number;
}

/** Parent → host. */
export type ToHost =
  | {
      readonly t: 'start';
      readonly spec: InstanceSpec;
      readonly database: HostDatabase;
      readonly secrets: InstanceSecrets;
      /** The Unix socket the host serves the app's requests on. */
      readonly socketPath: string;
      readonly heartbeatMs: number;
      /** The supervisor's log level: lines below it are not even sent. */
      readonly logLevel: string;
    }
  | { readonly t: 'secrets'; readonly own: SecretSet | undefined; readonly main: SecretSet }
  | { readonly t: 'stop' };

/** Memory the host reports with each heartbeat, in bytes. */
export interface HostMemory {
  readonly rss: number;
  /** V8 heap used plus external and array buffers: what a worker's own limits bound. */
  readonly heap: number;
}

/** Host → parent. */
export type FromHost =
  | { readonly t: 'ready' }
  | { readonly t: 'failed'; readonly code: string; readonly message: string; readonly params: object }
  | { readonly t: 'heartbeat'; readonly memory: HostMemory }
  | { readonly t: 'log'; readonly line: string }
  | { readonly t: 'fatal'; readonly message: string }
  | { readonly t: 'stopped' };
