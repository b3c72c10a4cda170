/**
 * The admin API's per-app operations (SPEC §8.4): `POST /apps/<name>/backup` answers the archive
 * (a download), `POST /apps/<name>/restore` takes one as its body, `POST /apps/<name>/clone`
 * makes a new app. Archives go through a temporary file on the server, streamed both ways: a
 * database is never held in memory, and the file is removed once the answer is sent.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { AppvisorError } from '../errors.js';
import { sendError } from '../http/errors.js';
import { withWorkDir } from '../ops/work-dir.js';
import { asRequestError, readJsonBody } from './body.js';
import { sendJson } from './respond.js';
import type { AdminOperations } from './types.js';

/** The download's file name: `<name>-<UTC yyyymmddThhmmssZ>.tar.gz`, as the CLI names it. */
function downloadName(file: string): string {
  return path.basename(file).replace(/[^A-Za-z0-9._-]/g, '_');
}

/** Streams a backup of `name` as the answer (200, application/gzip, an attachment). */
export async function answerBackup(
  ops: AdminOperations,
  name: string,
  by: string,
  res: ServerResponse,
): Promise<void> {
  await withWorkDir('api', async (dir) => {
    let result: Awaited<ReturnType<AdminOperations['backup']>>;
    try {
      result = await ops.backup(name, path.join(dir, 'backup.tar.gz'), by);
    } catch (err) {
      sendError(res, err);
      return;
    }
    res.writeHead(200, {
      'content-type': 'application/gzip',
      'content-length': result.bytes,
      'content-disposition': `attachment; filename="${downloadName(result.name)}"`,
      'cache-control': 'no-store',
    });
    // A client that goes away mid-download only ends this answer.
    await pipeline(createReadStream(result.file), res).catch(() => undefined);
  });
}

/**
 * Restores the archive in the request's body into app `name`: its own app, or a new app of that
 * name (a clone; `?keepSecret=1` keeps the archived secret).
 */
export async function answerRestore(
  ops: AdminOperations,
  name: string,
  by: string,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const query = new URL(req.url ?? '/', 'http://x').searchParams;
  const keepSecret = query.get('keepSecret') === '1' || query.get('keepSecret') === 'true';
  await withWorkDir('api', async (dir) => {
    const file = path.join(dir, 'upload.tar.gz');
    try {
      await pipeline(req, createWriteStream(file, { mode: 0o600 }));
      const { size } = await fs.stat(file);
      if (size === 0) {
        throw new AppvisorError('ARCHIVE_INVALID', {
          file: 'the request body',
          detail: 'it is empty; send the archive as the body (curl --data-binary @FILE)',
        });
      }
      sendJson(res, 200, await ops.restore(file, name, { keepSecret }, by));
    } catch (err) {
      // The server's temporary copy means nothing to the client: it sent an upload.
      sendError(res, asRequestError(err instanceof AppvisorError ? renamed(err, file, '(uploaded)') : err));
    }
  });
}

/** `{"as": "<dest>"}`: a new app with a copy of `name`'s data and a new secret (`"keepSecret": true`: the same). */
export async function answerClone(
  ops: AdminOperations,
  name: string,
  by: string,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  try {
    const body = await readJsonBody(req);
    const { as: dest, keepSecret } = (body ?? {}) as { as?: unknown; keepSecret?: unknown };
    if (typeof dest !== 'string' || dest === '') {
      throw new AppvisorError('REQUEST_INVALID', { detail: 'send {"as": "<new app name>"}' });
    }
    sendJson(res, 201, await ops.clone(name, dest, { keepSecret: keepSecret === true }, by));
  } catch (err) {
    sendError(res, asRequestError(err));
  }
}

/** `err` with every mention of `from` in its message replaced by `to`. */
function renamed(err: AppvisorError, from: string, to: string): AppvisorError {
  if (!err.message.includes(from)) return err;
  return new AppvisorError(err.code, err.params, { message: err.message.replaceAll(from, to), cause: err });
}
