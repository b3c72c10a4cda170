/** The sample app's data access: users and their notes, one SQL text for all three dialects. */
import type { SqlClient } from '../providers/provider.js';

export interface User {
  readonly id: number;
  readonly username: string;
  readonly passwordHash: string;
}

export interface Note {
  readonly id: number;
  readonly text: string;
  readonly createdAt: string;
}

interface NoteRow {
  id: unknown;
  text: string;
  created_at: unknown;
}

/** Thrown when a username is taken (also when two sign-ups race). */
export class DuplicateUserError extends Error {
  constructor(username: string) {
    super(`username ${username} is taken`);
    this.name = 'DuplicateUserError';
  }
}

export class Store {
  readonly #db: SqlClient;

  constructor(db: SqlClient) {
    this.#db = db;
  }

  async findUser(username: string): Promise<User | undefined> {
    const rows = await this.#db.query<{ id: unknown; username: string; password_hash: string }>(
      'SELECT id, username, password_hash FROM users WHERE username = ?',
      [username],
    );
    const row = rows[0];
    return row && { id: Number(row.id), username: row.username, passwordHash: row.password_hash };
  }

  /** Inserts a user; throws {@link DuplicateUserError} when the username is taken. */
  async createUser(username: string, passwordHash: string): Promise<void> {
    try {
      await this.#db.query('INSERT INTO users (username, password_hash, created_at) VALUES (?, ?, ?)', [
        username,
        passwordHash,
        Date.now(),
      ]);
    } catch (err) {
      if (isUniqueViolation(err)) throw new DuplicateUserError(username);
      throw err;
    }
  }

  async listNotes(userId: number): Promise<Note[]> {
    const rows = await this.#db.query<NoteRow>(
      'SELECT id, text, created_at FROM notes WHERE user_id = ? ORDER BY id',
      [userId],
    );
    return rows.map(toNote);
  }

  async addNote(userId: number, text: string): Promise<Note> {
    const createdAt = Date.now();
    const id = await this.#db.transaction(async (tx) => {
      if (tx.dialect === 'mysql') {
        // MySQL has no RETURNING; LAST_INSERT_ID() is per connection, and the transaction holds one.
        await tx.query('INSERT INTO notes (user_id, text, created_at) VALUES (?, ?, ?)', [
          userId,
          text,
          createdAt,
        ]);
        const rows = await tx.query<{ id: unknown }>('SELECT LAST_INSERT_ID() AS id');
        return Number(rows[0]?.id);
      }
      const rows = await tx.query<{ id: unknown }>(
        'INSERT INTO notes (user_id, text, created_at) VALUES (?, ?, ?) RETURNING id',
        [userId, text, createdAt],
      );
      return Number(rows[0]?.id);
    });
    return { id, text, createdAt: new Date(createdAt).toISOString() };
  }

  /** Deletes one of the user's notes; false when the user has no note with that id. */
  async deleteNote(userId: number, noteId: number): Promise<boolean> {
    return this.#db.transaction(async (tx) => {
      const rows = await tx.query('SELECT id FROM notes WHERE id = ? AND user_id = ?', [noteId, userId]);
      if (rows.length === 0) return false;
      await tx.query('DELETE FROM notes WHERE id = ? AND user_id = ?', [noteId, userId]);
      return true;
    });
  }
}

function toNote(row: NoteRow): Note {
  return { id: Number(row.id), text: row.text, createdAt: new Date(Number(row.created_at)).toISOString() };
}

/** SQLite, PostgreSQL and MySQL each report a unique-key violation their own way. */
function isUniqueViolation(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const code = (err as { code?: unknown }).code;
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === '23505' || code === 'ER_DUP_ENTRY';
}
