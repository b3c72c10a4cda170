/**
 * How `apply` shows its progress while it works: on a terminal a bar under the step lines (steps
 * done of those planned, the app being worked on, elapsed time and ETA; cli-progress), elsewhere
 * (a CI log) a plain line as each app begins, with no `\r` and no escape codes but the colours
 * the caller's styles allow. Only for a plan of many steps: a short one is over before a bar
 * would say anything.
 *
 * The reconcile code knows nothing of this: `applyPlan` calls back with the plan, each app it
 * begins and each step's outcome, and this renders them.
 */
import cliProgress from 'cli-progress';
import type { CliIO, Styles } from './common.js';
import { canRedraw } from './live-line.js';

/** From this many planned steps on, `apply` shows its progress. */
export const PROGRESS_MIN_STEPS = 20;

export interface ApplyProgress {
  /** The plan's step count, known before the first app begins. */
  planned(total: number): void;
  /** An app begins (apps run side by side up to `reconcile.concurrency`: the latest is shown). */
  app(name: string): void;
  /** A step finished; `line` is its printed line (above the bar on a terminal). */
  step(line: string): void;
  /** Removes the bar (the summary line follows). */
  finish(): void;
}

export function applyProgress(io: CliIO, s: Styles): ApplyProgress {
  const live = canRedraw(io.stdout, io.env);
  const t0 = performance.now();
  let total = 0;
  let done = 0;
  let current = '';
  let bar: { multi: cliProgress.MultiBar; bar: cliProgress.SingleBar } | undefined;
  const shown = (): boolean => total >= PROGRESS_MIN_STEPS;

  const startBar = (): void => {
    const multi = new cliProgress.MultiBar(
      {
        // The bar writes where the step lines go: they are printed above it, in order.
        stream: io.stdout as unknown as NodeJS.WritableStream,
        format: `{bar} {value}/{total} steps | {app} | {duration_formatted} elapsed, ETA {eta_formatted}`,
        barsize: 24,
        // No terminal mode is changed (cursor hidden, line wrapping off): a Ctrl-C would leave it
        // changed, unless a SIGINT handler put it back, and that handler would keep Ctrl-C from
        // ending apply. The bar is cut to the terminal's width instead.
        hideCursor: false,
        linewrap: true,
        clearOnComplete: true,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    );
    bar = { multi, bar: multi.create(total, 0, { app: '' }) };
  };

  return {
    planned(n) {
      total = n;
      if (live && shown()) startBar();
    },
    app(name) {
      current = name;
      if (bar) {
        bar.bar.update(done, { app: name });
        return;
      }
      if (!shown()) return;
      const seconds = Math.round((performance.now() - t0) / 1000);
      io.stdout.write(`${s.dim(`[${done}/${total} steps done, ${seconds} s] ${name}`)}\n`);
    },
    step(line) {
      done++;
      if (!bar) {
        io.stdout.write(`${line}\n`);
        return;
      }
      // A plan re-read per app can hold a step more than the first one counted.
      if (done > total) {
        total = done;
        bar.bar.setTotal(total);
      }
      bar.multi.log(`${line}\n`);
      bar.bar.update(done, { app: current });
    },
    finish() {
      if (!bar) return;
      // The lines logged since the last frame are flushed by one more frame, then the bar goes.
      bar.multi.update();
      bar.multi.stop();
      bar = undefined;
    },
  };
}
