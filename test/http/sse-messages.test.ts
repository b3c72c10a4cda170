import { describe, expect, it } from 'vitest';
import { SseMessages } from '../../src/http/sse-messages.js';

describe('SseMessages', () => {
  it('splits messages however the chunks fall, with type, joined data and comments', () => {
    const stream =
      'event: line\ndata: {"a":1}\n\n: heartbeat\n\nevent: unreachable\ndata: one\ndata: two\n\n: following\n\n';
    const whole = new SseMessages().push(stream);
    expect(whole).toEqual([
      { type: 'line', data: '{"a":1}', comments: [] },
      { type: '', data: '', comments: ['heartbeat'] },
      { type: 'unreachable', data: 'one\ntwo', comments: [] },
      { type: '', data: '', comments: ['following'] },
    ]);
    // One character at a time: the same messages, each once its blank line came.
    const split = new SseMessages();
    const got = [...stream].flatMap((c) => split.push(c));
    expect(got).toEqual(whole);
  });

  it('keeps an unfinished message until its blank line comes', () => {
    const messages = new SseMessages();
    expect(messages.push('event: line\ndata: {"a"')).toEqual([]);
    expect(messages.push(':2}\n')).toEqual([]);
    expect(messages.push('\n')).toEqual([{ type: 'line', data: '{"a":2}', comments: [] }]);
  });
});
