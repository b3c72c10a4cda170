import type { Readable } from 'node:stream';

/** A line of a child's JSON log (pino); a line that is not JSON is kept as its `msg`. */
export type LogLine = Record<string, unknown> & { msg?: string };

/**
 * Reads `stream` (a child's stdout) as JSON log lines, calling `onLine` for each whole line;
 * blank lines are skipped, a partial line waits for the rest.
 */
export function onLogLines(stream: Readable, onLine: (line: LogLine) => void): void {
  let buffer = '';
  stream.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    const parts = buffer.split('\n');
    buffer = parts.pop() ?? '';
    for (const part of parts) {
      if (part.trim() === '') continue;
      let line: LogLine;
      try {
        line = JSON.parse(part) as LogLine;
      } catch {
        line = { msg: part };
      }
      onLine(line);
    }
  });
}
