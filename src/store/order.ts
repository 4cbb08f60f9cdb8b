// PostgreSQL's ORDER BY follows the database's collation, SQLite's the bytes: lists the CLI prints
// are sorted here instead, in code-unit order, so both dialects list them alike.
export function inCodeUnitOrder<K extends string, T extends Record<K, string>>(rows: T[], key: K): T[] {
  return rows.sort((a, b) => (a[key] < b[key] ? -1 : a[key] > b[key] ? 1 : 0));
}
