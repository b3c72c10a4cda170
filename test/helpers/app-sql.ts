/**
 * SQL run straight on an app's database (new-database mode) on the main server of `mainUrl`, as
 * a user would by hand (e.g. to empty an app's data): a SQLite file under the data dir's `apps/`,
 * or the PostgreSQL database named after the app.
 */
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';

/** Runs `sql` (statements separated by `;`) in app database `name`; returns the first statement's rows. */
export async function onAppDatabase(
  dialect: string,
  mainUrl: string,
  name: string,
  sql: string,
): Promise<Record<string, unknown>[]> {
  const statements = sql.split(';').filter((s) => s.trim() !== '');
  if (dialect === 'sqlite') {
    const file = path.join(path.dirname(mainUrl.slice('sqlite:'.length)), 'apps', `${name}.sqlite`);
    const db = new Database(file);
    try {
      const [first, ...rest] = statements.map((s) => db.prepare(s));
      let rows: Record<string, unknown>[] = [];
      if (first!.reader) rows = first!.all() as Record<string, unknown>[];
      else first!.run();
      for (const s of rest) s.run();
      return rows;
    } finally {
      db.close();
    }
  }
  const u = new URL(mainUrl);
  u.pathname = `/${name}`;
  const c = new pg.Client({ connectionString: u.toString() });
  await c.connect();
  try {
    const [first, ...rest] = statements;
    const { rows } = await c.query(first!);
    for (const s of rest) await c.query(s);
    return rows;
  } finally {
    await c.end();
  }
}
