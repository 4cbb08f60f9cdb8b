// Hot queries compiled once per dialect and run with fresh parameters. Kysely builds an immutable
// query tree and compiles it to SQL on every call: a few microseconds a statement, a seventh of a
// refresh_token grant. The query is still written with Kysely's builder (typed, dialect-neutral);
// only the building and compiling are done once.
import { type Compilable, type CompiledQuery, type Kysely, type QueryResult, createQueryId } from 'kysely';
import { type Dialect, dialectOf } from './database.js';
import type { Database } from './schema.js';

const PLACEHOLDER = Symbol('placeholder');

interface Placeholder {
  readonly [PLACEHOLDER]: string;
}

export type PreparedQuery<Args, Row> = (db: Kysely<Database>, args: Args) => Promise<QueryResult<Row>>;

/**
 * `build` runs once per dialect with placeholders in place of the arguments; every call then runs
 * the compiled SQL with the arguments put where their placeholders were. Every parameter of the
 * compiled query must be a placeholder (no literal values) and every placeholder must be used,
 * both checked when the query is first compiled.
 */
export function prepared<Args extends Record<string, unknown>, Row>(
  names: readonly (keyof Args & string)[],
  // p: stand-ins for the arguments while the query is built
  build: (db: Kysely<Database>, p: Readonly<Args>) => Compilable<Row>,
): PreparedQuery<Args, Row> {
  const compiled = new Map<Dialect, { query: CompiledQuery<Row>; order: (keyof Args & string)[] }>();
  const compile = (db: Kysely<Database>, dialect: Dialect) => {
    const placeholders = Object.fromEntries(names.map((n) => [n, { [PLACEHOLDER]: n } satisfies Placeholder])) as unknown as Readonly<Args>;
    const query = build(db, placeholders).compile();
    const order = query.parameters.map((value) => {
      const name = typeof value === 'object' && value !== null && PLACEHOLDER in value ? (value as Placeholder)[PLACEHOLDER] : undefined;
      if (name === undefined) throw new Error(`prepared query: a parameter is not a placeholder (${query.sql})`);
      return name as keyof Args & string;
    });
    const missing = names.filter((n) => !order.includes(n));
    if (missing.length > 0) throw new Error(`prepared query: ${missing.join(', ')} unused (${query.sql})`);
    const entry = { query, order };
    compiled.set(dialect, entry);
    return entry;
  };
  return (db, args) => {
    const dialect = dialectOf(db);
    const { query, order } = compiled.get(dialect) ?? compile(db, dialect);
    return db.executeQuery<Row>({ query: query.query, sql: query.sql, queryId: createQueryId(), parameters: order.map((n) => args[n]) });
  };
}
