/**
 * Splits a Server-Sent Events stream, as appvisor's own streams write it (LF line ends,
 * `event:`/`data:` fields, `:` comments, a blank line after each message), into messages. The
 * CLI's `logs -f` and a replica following another's logs read them so. (The admin UI parses any
 * server's events with the standard's full rules: src/admin/ui/sse.js.)
 */

/** One message: its `event:` type ('' when none), its `data:` lines joined, its comments. */
export interface SseMessage {
  readonly type: string;
  readonly data: string;
  /** The text of each `:` comment line (`: following` → `following`). */
  readonly comments: readonly string[];
}

export class SseMessages {
  #pending = '';

  /** Takes the next chunk of the stream; returns the messages it completes. */
  push(chunk: string): SseMessage[] {
    this.#pending += chunk;
    const messages: SseMessage[] = [];
    for (let cut = this.#pending.indexOf('\n\n'); cut !== -1; cut = this.#pending.indexOf('\n\n')) {
      const block = this.#pending.slice(0, cut);
      this.#pending = this.#pending.slice(cut + 2);
      let type = '';
      const data: string[] = [];
      const comments: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) comments.push(line.slice(1).trim());
        else if (line.startsWith('event: ')) type = line.slice(7);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
      }
      messages.push({ type, data: data.join('\n'), comments });
    }
    return messages;
  }
}
