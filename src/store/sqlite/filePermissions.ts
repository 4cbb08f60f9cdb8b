// The SQLite store holds password hashes, refresh-token hashes, encrypted signing keys and the
// audit trail: only the user Tollgate runs as may read it. Its folder is created 0700 and its
// files (.db, -wal, -shm) 0600, whatever the umask; an existing store that others can read is
// tightened (the files) or reported (the folder), in one warning at start.
import fs from 'node:fs';
import path from 'node:path';

export const STORE_DIR_MODE = 0o700;
export const STORE_FILE_MODE = 0o600;

/** A path of the store that was open to group or others, as it was found. */
export interface LoosePath {
  path: string;
  /** e.g. "0644" */
  mode: string;
  /** 'tightened' to 0600 (a file); 'left' as it is (the folder, or a file we may not chmod). */
  action: 'tightened' | 'left';
}

const octal = (mode: number) => `0${(mode & 0o777).toString(8)}`;

/**
 * Makes the store's folder and files private before SQLite opens them; returns what was found open.
 *
 * - A folder we create (with any missing parents) is 0700. An existing folder is the operator's
 *   choice (it may be shared on purpose, e.g. /var/lib): it is left alone and reported.
 * - The database file is created here, empty and 0600, so SQLite never creates it with its own
 *   default (0644 less the umask). SQLite gives -wal, -shm and -journal the permissions of the
 *   database file when it creates them (and fchmods them to match, umask or not), so they follow.
 * - Existing files open to group or others are tightened to 0600 and reported: they are ours, and
 *   nothing of Tollgate's needs them readable by anyone else.
 */
export function secureStoreFiles(file: string): LoosePath[] {
  const loose: LoosePath[] = [];
  const dir = path.resolve(path.dirname(file));
  const made = fs.mkdirSync(dir, { recursive: true, mode: STORE_DIR_MODE });
  if (made !== undefined) {
    // the umask may have taken bits away from `mode`: set it exactly on every folder made here
    // (`made` is the first of them, `dir` the last), and on no folder that was there before
    const first = path.resolve(made);
    for (let d = dir; d.startsWith(first); d = path.dirname(d)) {
      fs.chmodSync(d, STORE_DIR_MODE);
      if (d === first) break;
    }
  } else {
    const mode = fs.statSync(dir).mode;
    if ((mode & 0o077) !== 0) loose.push({ path: dir, mode: octal(mode), action: 'left' });
  }

  try {
    const fd = fs.openSync(file, 'wx', STORE_FILE_MODE);
    try {
      fs.fchmodSync(fd, STORE_FILE_MODE);
    } finally {
      fs.closeSync(fd);
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }

  for (const f of [file, `${file}-wal`, `${file}-shm`, `${file}-journal`]) {
    let mode: number;
    try {
      mode = fs.statSync(f).mode;
    } catch {
      continue; // not there (yet): SQLite creates it with the database file's mode
    }
    if ((mode & 0o077) === 0) continue;
    try {
      fs.chmodSync(f, STORE_FILE_MODE);
      loose.push({ path: f, mode: octal(mode), action: 'tightened' });
    } catch {
      // another user's file: say so rather than fail the start
      loose.push({ path: f, mode: octal(mode), action: 'left' });
    }
  }
  return loose;
}
