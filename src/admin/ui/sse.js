/**
 * A Server-Sent Events parser for streams read with `fetch()` (EventSource cannot send the
 * `Authorization` header). Follows the HTML standard's rules: lines end in CRLF, LF or CR;
 * `field: value` with one optional space after the colon; `:` starts a comment; a blank line
 * dispatches the event, unless it has no data; `data` lines join with `\n`; `id` persists
 * across events; unknown fields (and `retry`) are ignored.
 */

/**
 * @typedef {{type: string, data: string, id: string}} SseEvent
 */

export class SseParser {
  #buffer = '';
  /** Where the search for the next line end resumes (the buffer before it has none). */
  #scanned = 0;
  #started = false;
  /** @type {string[]} */
  #data = [];
  #type = '';
  #lastId = '';

  /**
   * Feeds decoded text; returns the events it completes.
   *
   * @param {string} text
   * @returns {SseEvent[]}
   */
  push(text) {
    if (!this.#started && text.length > 0) {
      this.#started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    this.#buffer += text;
    /** @type {SseEvent[]} */
    const events = [];
    let start = 0;
    let i = this.#scanned;
    const buffer = this.#buffer;
    while (i < buffer.length) {
      const c = buffer.charCodeAt(i);
      if (c !== 10 && c !== 13) {
        i++;
        continue;
      }
      // A CR at the very end may be the first half of a CRLF split across chunks: wait.
      if (c === 13 && i === buffer.length - 1) break;
      const event = this.#line(buffer.slice(start, i));
      if (event !== undefined) events.push(event);
      i += c === 13 && buffer.charCodeAt(i + 1) === 10 ? 2 : 1;
      start = i;
    }
    this.#buffer = buffer.slice(start);
    this.#scanned = i - start;
    return events;
  }

  /**
   * @param {string} line
   * @returns {SseEvent | undefined}
   */
  #line(line) {
    if (line === '') return this.#dispatch();
    if (line.charCodeAt(0) === 58 /* : */) return undefined;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    if (field === 'event') this.#type = value;
    else if (field === 'data') this.#data.push(value);
    else if (field === 'id' && !value.includes('\0')) this.#lastId = value;
    return undefined;
  }

  /** @returns {SseEvent | undefined} */
  #dispatch() {
    const data = this.#data;
    const type = this.#type || 'message';
    this.#data = [];
    this.#type = '';
    if (data.length === 0) return undefined;
    return { type, data: data.join('\n'), id: this.#lastId };
  }
}
