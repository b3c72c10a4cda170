import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { createBearerCheck } from '../../src/admin/auth.js';

const TOKEN = 'correct-horse-battery-staple-0123';
const check = createBearerCheck(TOKEN);
const withHeader = (authorization?: string): IncomingMessage =>
  ({ headers: authorization === undefined ? {} : { authorization } }) as IncomingMessage;

describe('createBearerCheck', () => {
  it.each([
    ['the token', `Bearer ${TOKEN}`, true],
    ['a lower-case scheme', `bearer ${TOKEN}`, true],
    ['extra blanks around the token', `Bearer   ${TOKEN} `, true],
    ['no header', undefined, false],
    ['an empty header', '', false],
    ['the token without a scheme', TOKEN, false],
    ['the Basic scheme', `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}`, false],
    ['Basic with the raw token', `Basic ${TOKEN}`, false],
    ['Bearer alone', 'Bearer', false],
    ['Bearer and a blank', 'Bearer ', false],
    ['a wrong token', 'Bearer wrong-token-wrong-token-00', false],
    ['a prefix of the token', `Bearer ${TOKEN.slice(0, -1)}`, false],
    ['the token plus a character', `Bearer ${TOKEN}x`, false],
    ['two tokens', `Bearer ${TOKEN} ${TOKEN}`, false],
  ])('%s -> %s', (_name, header, expected) => {
    expect(check(withHeader(header))).toBe(expected);
  });
});
