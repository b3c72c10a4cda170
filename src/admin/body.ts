/**
 * Reading a small JSON request body for the admin API (a rotation's grace, a clone's name, a
 * token's name and scope), bounded, and the request errors they answer: 400, never a 500.
 */
import type { IncomingMessage } from 'node:http';
import { AppvisorError } from '../errors.js';

/** The largest JSON body the admin API reads. */
export const JSON_BODY_LIMIT = 4096;

/** The error for a body that is not what a route takes; `REQUEST_INVALID` (400) unless given. */
export type BodyInvalid = (detail: string) => AppvisorError;

const requestInvalid: BodyInvalid = (detail) => new AppvisorError('REQUEST_INVALID', { detail });

/** The request's JSON body, or undefined when it has none. */
export async function readJsonBody(
  req: IncomingMessage,
  invalid: BodyInvalid = requestInvalid,
  limit = JSON_BODY_LIMIT,
): Promise<unknown> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw invalid(`the request body is over ${limit} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw invalid('the request body is not JSON');
  }
}

/**
 * A settings-style refusal of what the request asked (a bad duration, a taken app name) as the
 * request error it is over HTTP: 400 with the same message.
 */
export function asRequestError(err: unknown): unknown {
  return err instanceof AppvisorError && err.code === 'CONFIG_INVALID'
    ? new AppvisorError('REQUEST_INVALID', { detail: err.message }, { cause: err })
    : err;
}
