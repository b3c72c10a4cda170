/** The sample app's routes (SPEC §7), relative to the app's base path. */
import type { IncomingMessage } from 'node:http';
import type { AppContext } from '../runtime/contract.js';
import { sendAdminPage } from './admin-page.js';
import { HttpError, readJson, sendJson, sendNoContent } from './http.js';
import { dummyHash, hashPassword, verifyPassword } from './passwords.js';
import { Router } from './router.js';
import { DuplicateUserError, type Store, type User } from './store.js';

const USERNAME = /^[a-zA-Z0-9_.-]{1,64}$/;
const PASSWORD_MIN = 8;
const PASSWORD_MAX = 256;
const NOTE_MAX = 10_000;
const NOTE_ID = /^[1-9][0-9]{0,14}$/;

export interface RouteDeps {
  readonly ctx: AppContext;
  readonly version: number;
  readonly store: Store;
}

export function createRouter({ ctx, version, store }: RouteDeps): Router {
  const authenticate = async (req: IncomingMessage): Promise<User> => {
    const match = /^Bearer +(\S+)$/i.exec(req.headers.authorization ?? '');
    if (!match) throw unauthorized();
    let username: string;
    try {
      username = ctx.jwt.verify(match[1]!).sub;
    } catch (err) {
      ctx.log.debug({ reason: (err as Error).message }, 'bearer token refused');
      throw unauthorized();
    }
    // The token may be the main app's (shared secret mode): it names a user, who must exist here.
    const user = await store.findUser(username);
    if (!user) throw unauthorized();
    return user;
  };

  return new Router()
    .on('GET', '/', (_req, res) => {
      res.writeHead(302, { Location: 'admin/' }).end();
    })
    .on('GET', '/admin', (_req, res) => {
      res.writeHead(308, { Location: 'admin/' }).end();
    })
    .on('GET', '/admin/', (req, res) => {
      sendAdminPage(req, res, {
        name: ctx.name,
        ...(ctx.displayName === undefined ? {} : { displayName: ctx.displayName }),
        version,
      });
    })
    .on('GET', '/api/info', (_req, res) => {
      sendJson(res, 200, { name: ctx.name, version: String(version) });
    })
    .on('POST', '/api/users', async (req, res) => {
      const { username, password } = credentials(await readJson(req));
      if (!USERNAME.test(username)) {
        throw invalid('username must be 1 to 64 letters, digits, "_", "." or "-"');
      }
      if (password.length < PASSWORD_MIN || password.length > PASSWORD_MAX) {
        throw invalid(`password must be ${PASSWORD_MIN} to ${PASSWORD_MAX} characters`);
      }
      if (await store.findUser(username)) throw taken(username);
      try {
        await store.createUser(username, await hashPassword(password));
      } catch (err) {
        if (err instanceof DuplicateUserError) throw taken(username);
        throw err;
      }
      ctx.log.info({ username }, 'user created');
      sendJson(res, 201, { username });
    })
    .on('POST', '/api/auth/signin', async (req, res) => {
      const { username, password } = credentials(await readJson(req));
      const user = USERNAME.test(username) ? await store.findUser(username) : undefined;
      // Verify against a dummy hash for an unknown user: both failures cost the same and read the same.
      const ok = await verifyPassword(user?.passwordHash ?? (await dummyHash()), password);
      if (!user || !ok) {
        throw new HttpError(401, 'INVALID_CREDENTIALS', 'unknown username or wrong password');
      }
      sendJson(res, 200, { token: ctx.jwt.sign({ sub: user.username }) });
    })
    .on('GET', '/api/me', async (req, res) => {
      const user = await authenticate(req);
      sendJson(res, 200, { username: user.username });
    })
    .on('GET', '/api/notes', async (req, res) => {
      const user = await authenticate(req);
      sendJson(res, 200, { notes: await store.listNotes(user.id) });
    })
    .on('POST', '/api/notes', async (req, res) => {
      const user = await authenticate(req);
      const body = await readJson(req);
      const text = isObject(body) ? body.text : undefined;
      if (typeof text !== 'string' || text.length < 1 || text.length > NOTE_MAX) {
        throw invalid(`text must be a string of 1 to ${NOTE_MAX} characters`);
      }
      sendJson(res, 201, await store.addNote(user.id, text));
    })
    .on('DELETE', '/api/notes/:id', async (req, res, params) => {
      const user = await authenticate(req);
      const id = params.id!;
      if (!NOTE_ID.test(id) || !(await store.deleteNote(user.id, Number(id)))) {
        throw new HttpError(404, 'NOTE_NOT_FOUND', 'no such note');
      }
      sendNoContent(res);
    });
}

function credentials(body: unknown): { username: string; password: string } {
  if (!isObject(body)) throw invalid('the body must be a JSON object {"username","password"}');
  const { username, password } = body;
  if (typeof username !== 'string') throw invalid('username must be a string');
  if (typeof password !== 'string') throw invalid('password must be a string');
  return { username, password };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalid(message: string): HttpError {
  return new HttpError(400, 'VALIDATION_FAILED', message);
}

function taken(username: string): HttpError {
  return new HttpError(409, 'USERNAME_TAKEN', `username ${username} is taken`);
}

function unauthorized(): HttpError {
  return new HttpError(401, 'UNAUTHORIZED', 'missing or invalid bearer token', {
    'WWW-Authenticate': 'Bearer',
  });
}
