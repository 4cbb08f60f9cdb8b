// The to-do API's own store: one SQLite table, nothing shared with Tollgate. A to-do belongs to the
// `sub` of the token that created it, and every query is scoped to that user.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';

export interface Todo {
  id: string;
  text: string;
  status: 'open' | 'done';
}

export class TodoStore {
  private readonly db: Database.Database;

  constructor(file: string) {
    if (file !== ':memory:') fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    this.db = new Database(file);
    if (file !== ':memory:') this.db.pragma('journal_mode = WAL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS todos (
        id TEXT PRIMARY KEY,
        text TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'done')),
        user_id TEXT NOT NULL
      );
      CREATE INDEX IF NOT EXISTS todos_user_id ON todos (user_id);
    `);
  }

  forUser(userId: string): Todo[] {
    return this.db.prepare<[string], Todo>('SELECT id, text, status FROM todos WHERE user_id = ? ORDER BY rowid').all(userId);
  }

  add(userId: string, text: string): Todo {
    const todo: Todo = { id: crypto.randomUUID(), text, status: 'open' };
    this.db.prepare('INSERT INTO todos (id, text, status, user_id) VALUES (?, ?, ?, ?)').run(todo.id, todo.text, todo.status, userId);
    return todo;
  }

  close(): void {
    this.db.close();
  }
}
