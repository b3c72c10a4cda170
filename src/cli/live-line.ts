/**
 * One line redrawn in place on a terminal (`\r`, erase, text), for progress while a command
 * works; nothing at all elsewhere, so a CI log holds only the command's final lines.
 */
import type { CliOutput } from './common.js';

/** Whether `out` is a terminal that can redraw a line (not `TERM=dumb`). */
export function canRedraw(out: CliOutput, env: NodeJS.ProcessEnv): boolean {
  return out.isTTY === true && env.TERM !== 'dumb';
}

/** Redraws at most this often: a fast transfer reports many chunks a millisecond. */
const FRAME_MS = 100;

export interface LiveLine {
  /** Shows `text` (at once the first time, then at most every 100 ms; the latest text wins). */
  update(text: string): void;
  /** Erases the line, leaving the cursor at its start for the final output. */
  clear(): void;
}

/** A live line on `out`, or one that prints nothing when `out` cannot redraw. */
export function liveLine(out: CliOutput, env: NodeJS.ProcessEnv): LiveLine {
  if (!canRedraw(out, env)) return { update: () => undefined, clear: () => undefined };
  // A terminal that reports no width (0: some pseudo-terminals) is taken as 80 columns wide.
  const columns = (out as { columns?: number }).columns || 80;
  let last = Number.NEGATIVE_INFINITY;
  let shown = false;
  let pending: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  const draw = (text: string): void => {
    // Cut to the width: a wrapped line could not be redrawn in place.
    out.write(`\r\u001b[2K${text.slice(0, Math.max(0, columns - 1))}`);
    shown = true;
    last = performance.now();
    pending = undefined;
  };
  return {
    update(text) {
      const wait = last + FRAME_MS - performance.now();
      if (wait <= 0) {
        draw(text);
        return;
      }
      pending = text;
      timer ??= setTimeout(() => {
        timer = undefined;
        if (pending !== undefined) draw(pending);
      }, wait);
      timer.unref();
    },
    clear() {
      if (timer) clearTimeout(timer);
      timer = undefined;
      pending = undefined;
      if (shown) out.write('\r\u001b[2K');
      shown = false;
    },
  };
}
