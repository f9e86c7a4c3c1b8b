// The books SQL. Every statement is written out here; `undefined` means "no such book". Each write also records its
// event in the outbox (book_events) in the same statement, so a change and its event commit or roll back together.
import { v7 as uuidv7 } from 'uuid'
import type { Database, Queryable } from '../db/database.ts'
import { BOOK_EVENT_TYPES } from '../events/cloudevents.ts'
import { activeTraceparent } from '../events/trace-context.ts'
import type { Cursor } from './cursor.ts'
import { type Book, type BookInput, DEFAULT_STATUS, type ListQuery } from './schemas.ts'

/** A row of the books table as the drivers return it. */
interface BookRow {
  id: string
  version: number
  created_at: Date
  updated_at: Date
  published_date: string
  status: Book['status']
  title: string
  author: string
  image_url: string | null
  description: string | null
}

const COLUMNS = 'id, version, created_at, updated_at, published_date, status, title, author, image_url, description'

/** A book and its version, which every write moves on by one. */
export interface StoredBook {
  book: Book
  version: number
}

/** What a conditional write found: done, no such book, or a book at another version than expected. */
export type WriteOutcome<T> = { outcome: 'done'; value: T } | { outcome: 'not_found' } | { outcome: 'version_mismatch' }

type Sort = ListQuery['sort']

/** Per sort: the indexed column, its type, and its value as a cursor key (exact, in any session's settings). */
const SORT_KEYS: Record<'created_at' | 'published_date' | 'title', { column: string; type: string; key: string }> = {
  // Microseconds, which a JavaScript Date would drop.
  created_at: {
    column: 'created_at',
    type: 'timestamptz',
    // The colons are quoted text of the format: a bare ":MI" would read as a variable to pgbench, which runs this
    // statement in the benchmark (bench/pgbench.ts).
    key: `to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24":"MI":"SS.US"Z"')`,
  },
  published_date: { column: 'published_date', type: 'date', key: `to_char(published_date, 'YYYY-MM-DD')` },
  title: { column: 'title', type: 'text', key: 'title' },
}

function sortKeyOf(sort: Sort) {
  return SORT_KEYS[sort.replace('-', '') as keyof typeof SORT_KEYS]
}

/** The ORDER BY of a sort, read forwards or (for a `before` cursor) backwards; `prefix` qualifies the columns. */
function orderBy(sort: Sort, backwards: boolean, prefix = ''): string {
  const descending = sort.startsWith('-') !== backwards
  const direction = descending ? 'DESC' : 'ASC'
  return `${prefix}${sortKeyOf(sort).column} ${direction}, ${prefix}id ${direction}`
}

function toStoredBook(row: BookRow): StoredBook {
  return { book: toBook(row), version: row.version }
}

function toBook(row: BookRow): Book {
  return {
    id: row.id,
    title: row.title,
    author: row.author,
    published_date: row.published_date,
    status: row.status,
    image_url: row.image_url,
    description: row.description,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  }
}

/** The statement parameters for a book's input fields, in the order the statements below use them. */
export function inputValues(input: BookInput): unknown[] {
  return [
    input.title,
    input.author,
    input.published_date,
    input.status ?? DEFAULT_STATUS,
    input.image_url ?? null,
    input.description ?? null,
  ]
}

/** The key under which an Idempotency-Key is stored: who sent it, the key, and a digest of the request. */
export interface IdempotencyClaim {
  caller: string
  key: string
  requestHash: string
}

export type CreateOnceOutcome =
  | { outcome: 'created'; book: StoredBook }
  | { outcome: 'replayed'; book: StoredBook }
  | { outcome: 'in_flight' }
  | { outcome: 'key_reused' }

/** The parameters that every write appends for its event: the event's id, and the trace it belongs to. */
function eventValues(): [string, string | null] {
  return [uuidv7(), activeTraceparent()]
}

async function insertBook(db: Queryable, input: BookInput): Promise<StoredBook> {
  const [row] = await db.query<BookRow>(BOOK_SQL.insert, [uuidv7(), ...inputValues(input), ...eventValues()])
  return toStoredBook(row as BookRow)
}

// Milliseconds, the precision of the API's timestamps. The colons are quoted for pgbench (see SORT_KEYS).
const ISO_MILLISECONDS = `'YYYY-MM-DD"T"HH24":"MI":"SS.MS"Z"'`

/** The book as the API shows it (toBook), built in SQL from the written row: an event's data. */
const BOOK_JSON = `jsonb_build_object(
       'id', id, 'title', title, 'author', author, 'published_date', published_date, 'status', status,
       'image_url', image_url, 'description', description,
       'created_at', to_char(created_at AT TIME ZONE 'UTC', ${ISO_MILLISECONDS}),
       'updated_at', to_char(updated_at AT TIME ZONE 'UTC', ${ISO_MILLISECONDS}))`

/**
 * A write and its event as one statement: `change` returns the written row, the event is inserted from it (so a
 * write that matched no row records none), and the statement answers with the row. The event's id and traceparent
 * are the two parameters after the write's own.
 */
function withEvent(change: string, type: string, data: string, version: string, next: number): string {
  return `WITH changed AS (
       ${change}
     ), event AS (
       INSERT INTO book_events (id, type, book_id, book_version, traceparent, data)
       SELECT $${next}::uuid, '${type}', id, ${version}, $${next + 1}::text, ${data} FROM changed
     )
     SELECT ${COLUMNS} FROM changed`
}

/**
 * The fixed statements; exported so that the benchmark (bench/) runs exactly these. insert takes the book's id and
 * input, then the event's id and traceparent ($8, $9); update the id, input and expected versions, then the
 * event's ($9, $10); delete the id and expected versions, then the event's ($3, $4).
 */
export const BOOK_SQL = {
  findById: `SELECT ${COLUMNS} FROM books WHERE id = $1`,
  insert: withEvent(
    `INSERT INTO books (id, created_at, updated_at, title, author, published_date, status, image_url, description)
       VALUES ($1, now(), now(), $2, $3, $4, $5, $6, $7)
       RETURNING ${COLUMNS}`,
    BOOK_EVENT_TYPES.created,
    BOOK_JSON,
    'version',
    8,
  ),
  // greatest(): updated_at moves forward on every update, even within one clock tick.
  update: withEvent(
    `UPDATE books
       SET title = $2, author = $3, published_date = $4, status = $5, image_url = $6, description = $7,
           version = version + 1, updated_at = greatest(now(), updated_at + interval '1 millisecond')
       WHERE id = $1 AND ($8::int[] IS NULL OR version = ANY($8::int[]))
       RETURNING ${COLUMNS}`,
    BOOK_EVENT_TYPES.updated,
    BOOK_JSON,
    'version',
    9,
  ),
  // A delete's event sorts after the book's last change: its bookversion is one past the last version, which
  // its data names.
  delete: withEvent(
    `DELETE FROM books WHERE id = $1 AND ($2::int[] IS NULL OR version = ANY($2::int[]))
       RETURNING ${COLUMNS}`,
    BOOK_EVENT_TYPES.deleted,
    `jsonb_build_object('id', id, 'version', version)`,
    'version + 1',
    3,
  ),
} as const

/** Expired keys deleted per statement, so that one sweep never holds many row locks at once. */
const SWEEP_BATCH = 5000

/** The idempotency records: written in the book's transaction, read by a retry, swept after 24 hours. */
export const IDEMPOTENCY_SQL = {
  find: `SELECT request_hash, response_body,
            coalesce(response_version, trim(BOTH '"' FROM response_etag)::int) AS response_version
     FROM idempotency_keys
     WHERE caller = $1 AND key = $2 AND created_at > now() - interval '24 hours'`,
  // response_etag is still written for replicas of the release before 00004, during a rolling update.
  remember: `INSERT INTO idempotency_keys
       (status_code, caller, key, request_hash, response_body, response_version, response_etag)
     VALUES (201, $1, $2, $3, $4, $5::int, '"' || $5::int || '"')
     ON CONFLICT (caller, key) DO UPDATE
     SET created_at = now(), status_code = 201, request_hash = $3, response_body = $4,
         response_version = $5::int, response_etag = '"' || $5::int || '"'`,
  // One replica at a time: the lock is the transaction's, so it goes with a crash or a pooler's reassignment.
  lockSweep: "SELECT pg_try_advisory_xact_lock(hashtextextended('myapp:idempotency-sweep', 0)) AS locked",
  deleteExpired: `DELETE FROM idempotency_keys
     WHERE (caller, key) IN (
       SELECT caller, key FROM idempotency_keys
       WHERE created_at <= now() - interval '24 hours'
       ORDER BY created_at
       LIMIT $1)
     RETURNING key`,
} as const

export interface Statement {
  text: string
  values: unknown[]
}

/**
 * How a list counts its matches, when asked to (PostgREST's `Prefer: count=…`): every row; the planner's estimate;
 * or every row up to ESTIMATED_COUNT_THRESHOLD and the estimate above it. Without it nothing is counted, so that a
 * page costs what its rows cost.
 */
export type CountMethod = 'exact' | 'planned' | 'estimated'

/** Up to this many matches, `estimated` is exact; the count stops one row later, so it never costs more. */
export const ESTIMATED_COUNT_THRESHOLD = 1000

/**
 * The statements behind a list: one page of matching books (one row more, to tell whether a next page exists), how
 * many match in all, how many up to one past ESTIMATED_COUNT_THRESHOLD, and the planner's estimate.
 */
export function listStatements(
  query: ListQuery,
  cursor?: Cursor,
): { page: Statement; count: Statement; boundedCount: Statement; estimate: Statement } {
  const conditions: string[] = []
  const params: unknown[] = []
  const where = (condition: (placeholder: string) => string, value: unknown) => {
    params.push(value)
    conditions.push(condition(`$${params.length}`))
  }
  if (query.author !== undefined) where((p) => `lower(author) = lower(${p})`, query.author)
  if (query.status !== undefined) where((p) => `status = ${p}`, query.status)
  if (query.q !== undefined) where((p) => `title ILIKE '%' || ${p} || '%'`, escapeLike(query.q))
  const filters = [...params]
  const filterClause = conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`
  const sortKey = sortKeyOf(query.sort)
  const backwards = cursor?.direction === 'before'
  if (cursor?.key != null) {
    // A row value compared in the index's order: the (sort key, id) index finds the position and reads on from it.
    const descending = query.sort.startsWith('-') !== backwards
    params.push(cursor.key, cursor.id)
    // Sent as text: a driver would turn a timestamptz parameter into a Date and lose the microseconds.
    const [key, id] = [`$${params.length - 1}::text::${sortKey.type}`, `$${params.length}::uuid`]
    conditions.push(`(${sortKey.column}, id) ${descending ? '<' : '>'} (${key}, ${id})`)
  }
  const whereClause = conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`
  const select = `SELECT ${COLUMNS}, ${sortKey.key} AS sort_key FROM books ${whereClause}
           ORDER BY ${orderBy(query.sort, backwards)}`
  const page: Statement =
    cursor === undefined
      ? {
          text: `${select}
           LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
          values: [...params, query.pageSize + 1, (query.page - 1) * query.pageSize],
        }
      : { text: `${select}\n           LIMIT $${params.length + 1}`, values: [...params, query.pageSize + 1] }
  return {
    page,
    count: { text: `SELECT count(*)::int AS total FROM books ${filterClause}`, values: filters },
    boundedCount: {
      text: `SELECT count(*)::int AS total
           FROM (SELECT 1 FROM books ${filterClause} LIMIT ${ESTIMATED_COUNT_THRESHOLD + 1}) matching`,
      values: filters,
    },
    estimate: { text: `EXPLAIN (FORMAT JSON) SELECT 1 FROM books ${filterClause}`, values: filters },
  }
}

/** One statement, so one snapshot: the page and the count of its matches (`count` selects `total`). */
function pageWithCount(page: Statement, count: Statement, sort: Sort, backwards: boolean): Statement {
  return {
    text: `SELECT counted.total, page.* FROM (${count.text}) counted
           LEFT JOIN LATERAL (${page.text}) page ON true
           ORDER BY ${orderBy(sort, backwards, 'page.')}`,
    values: page.values,
  }
}

/** A page of a list, the cursors next to it (when there are rows there), and the count if one was asked for. */
export interface ListPage {
  books: StoredBook[]
  next: Cursor | undefined
  prev: Cursor | undefined
  total: { value: number; exact: boolean } | undefined
}

interface ListedRow extends BookRow {
  sort_key: string
  total?: number
}

function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (character) => `\\${character}`)
}

export function createBooksRepository(db: Database) {
  return {
    async findById(id: string): Promise<StoredBook | undefined> {
      const [row] = await db.query<BookRow>(BOOK_SQL.findById, [id])
      return row && toStoredBook(row)
    },

    create: (input: BookInput): Promise<StoredBook> => insertBook(db, input),

    /**
     * Creates the book once per Idempotency-Key: the key's record is written in the book's transaction, and a
     * transaction-scoped advisory lock tells a retry that arrives while the first attempt runs.
     */
    createOnce(input: BookInput, claim: IdempotencyClaim): Promise<CreateOnceOutcome> {
      return db.transaction(async (tx) => {
        const [lock] = await tx.query<{ locked: boolean }>(
          'SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0)) AS locked',
          [`${claim.caller}\n${claim.key}`],
        )
        if (lock?.locked !== true) return { outcome: 'in_flight' }
        const [previous] = await tx.query<{
          request_hash: string
          response_body: string
          response_version: number
        }>(IDEMPOTENCY_SQL.find, [claim.caller, claim.key])
        if (previous !== undefined) {
          if (previous.request_hash !== claim.requestHash) return { outcome: 'key_reused' }
          // Only a creation is ever stored: failures roll the transaction back and leave the key free.
          const book = JSON.parse(previous.response_body) as Book
          return { outcome: 'replayed', book: { book, version: previous.response_version } }
        }
        const stored = await insertBook(tx, input)
        await tx.query(IDEMPOTENCY_SQL.remember, [
          claim.caller,
          claim.key,
          claim.requestHash,
          JSON.stringify(stored.book),
          stored.version,
        ])
        return { outcome: 'created', book: stored }
      })
    },

    /**
     * Forgets idempotency keys older than 24 hours, in batches; returns how many, or undefined when another
     * replica holds the sweep's lock and is sweeping now.
     */
    async deleteExpiredIdempotencyKeys(): Promise<number | undefined> {
      return db.transaction(async (tx) => {
        const [lock] = await tx.query<{ locked: boolean }>(IDEMPOTENCY_SQL.lockSweep)
        if (lock?.locked !== true) return undefined
        let deleted = 0
        for (;;) {
          const rows = await tx.query(IDEMPOTENCY_SQL.deleteExpired, [SWEEP_BATCH])
          deleted += rows.length
          if (rows.length < SWEEP_BATCH) return deleted
        }
      })
    },

    /**
     * Replaces a book's fields. With `expectedVersions` (from If-Match) the write happens only while the book is
     * at one of them, checked in the same statement, so of two racing writers exactly one wins.
     */
    async update(id: string, input: BookInput, expectedVersions?: number[]): Promise<WriteOutcome<StoredBook>> {
      const [row] = await db.query<BookRow>(BOOK_SQL.update, [
        id,
        ...inputValues(input),
        expectedVersions ?? null,
        ...eventValues(),
      ])
      return row ? { outcome: 'done', value: toStoredBook(row) } : this.missOutcome(id)
    },

    async delete(id: string, expectedVersions?: number[]): Promise<WriteOutcome<undefined>> {
      const rows = await db.query(BOOK_SQL.delete, [id, expectedVersions ?? null, ...eventValues()])
      return rows.length > 0 ? { outcome: 'done', value: undefined } : this.missOutcome(id)
    },

    /** Why a conditional write touched nothing: the book is gone, or it is at another version. */
    async missOutcome(id: string): Promise<{ outcome: 'not_found' } | { outcome: 'version_mismatch' }> {
      const [row] = await db.query('SELECT 1 FROM books WHERE id = $1', [id])
      return row === undefined ? { outcome: 'not_found' } : { outcome: 'version_mismatch' }
    },

    /**
     * One page of books matching the filters: the page after or before `cursor`, or else the page `page` names (by
     * offset). Either way the cursors next to it name the pages around it. Counted only when `count` says how.
     */
    async list(query: ListQuery, cursor?: Cursor, count?: CountMethod): Promise<ListPage> {
      const statements = listStatements(query, cursor)
      const backwards = cursor?.direction === 'before'
      const planned = async () => {
        const [row] = await db.query<{ 'QUERY PLAN': unknown }>(statements.estimate.text, statements.estimate.values)
        const plan = row?.['QUERY PLAN']
        const parsed = (typeof plan === 'string' ? JSON.parse(plan) : plan) as [{ Plan: { 'Plan Rows': number } }]
        return Math.round(parsed[0].Plan['Plan Rows'])
      }
      let rows: ListedRow[]
      let total: ListPage['total']
      if (count === undefined || count === 'planned') {
        const [pageRows, estimate] = await Promise.all([
          db.query<ListedRow>(statements.page.text, statements.page.values),
          count === 'planned' ? planned() : undefined,
        ])
        rows = pageRows
        total = estimate === undefined ? undefined : { value: estimate, exact: false }
      } else {
        const counting = count === 'exact' ? statements.count : statements.boundedCount
        const combined = pageWithCount(statements.page, counting, query.sort, backwards)
        const counted = await db.query<ListedRow>(combined.text, combined.values)
        const value = counted[0]?.total ?? 0
        rows = counted.filter((row) => row.id !== null)
        total =
          count === 'exact' || value <= ESTIMATED_COUNT_THRESHOLD
            ? { value, exact: true }
            : { value: Math.max(await planned(), value), exact: false }
      }

      const more = rows.length > query.pageSize
      const page = rows.slice(0, query.pageSize)
      if (backwards) page.reverse()
      const [first, last] = [page[0], page.at(-1)]
      const at = (direction: 'after' | 'before', row: ListedRow): Cursor => ({
        sort: query.sort,
        direction,
        key: row.sort_key,
        id: row.id,
      })
      let next: Cursor | undefined
      let prev: Cursor | undefined
      if (!backwards) {
        next = more && last !== undefined ? at('after', last) : undefined
        // A cursor names a row that was there when it was issued: there is something before it, or was.
        if (cursor !== undefined && cursor.key !== null) {
          prev = first !== undefined ? at('before', first) : { ...cursor, direction: 'before' }
        }
        // A page past the end of the offsets has the end of the list before it.
        if (cursor === undefined && query.page > 1) {
          prev =
            first !== undefined ? at('before', first) : { sort: query.sort, direction: 'before', key: null, id: null }
        }
      } else {
        prev = more && first !== undefined ? at('before', first) : undefined
        if (cursor !== undefined && cursor.key !== null) {
          next = last !== undefined ? at('after', last) : { ...cursor, direction: 'after' }
        }
      }
      return { books: page.map(toStoredBook), next, prev, total }
    },
  }
}
export type BooksRepository = ReturnType<typeof createBooksRepository>
