// The books SQL. Every statement is written out here; `undefined` means "no such book". Each write also records its
// event in the outbox in the same statement, so a change and its event commit or roll back together. The book's
// shape is written once, in FIELDS: the statements' column lists, the row's mapping to the API's Book, the input's
// parameters and an event's data all follow from it.
import { v7 as uuidv7 } from 'uuid'
import type { Database, Queryable } from '../db/database.ts'
import { rfc3339Utc } from '../db/sql.ts'
import { eventParameters, withEvent } from '../events/outbox.ts'
import type { Cursor } from './cursor.ts'
import { BOOK_EVENTS } from './events.ts'
import { type Book, type BookInput, DEFAULT_STATUS, type ListQuery } from './schemas.ts'

/**
 * How a column reads as the API shows it, when not as stored: SQL over the column, in the select list of every
 * statement that returns a book, so that an answer and an event's data (built from a write's returned row) agree.
 * As stored, the drivers return the rest as the API shows them: a uuid, text, an enum's label, a date (as text).
 */
type Reading = (column: string) => string

/** An instant: RFC 3339 in UTC, to the microsecond. */
const TIMESTAMP: Reading = rfc3339Utc

/** Input the schema requires. */
const REQUIRED = { required: true } as const
/** An optional text field: null when the input leaves it out. */
const OPTIONAL = { default: null } as const

/** A write's parameter named as the column, which the write's caller gives (a create's id). */
const PARAMETER = Symbol('parameter')

/** One column of books. */
interface Field {
  column: string
  /** Its member in the API's Book when named otherwise; null when the Book has none. */
  member?: string | null
  /** Set by a create and a replace from the input, to `default` when the input leaves it out and may. */
  input?: typeof REQUIRED | { default: unknown }
  /** What a create writes, unless from the input: SQL, or the write's PARAMETER. Left out: the column's default. */
  insert?: string | typeof PARAMETER
  /** What a replace writes, unless from the input: SQL over the row before the replace. Left out: unchanged. */
  update?: string
  /** How it reads, when not as stored. */
  reading?: Reading
}

/**
 * The book's shape: every column of books, in the order of the Book's members (its JSON's order). The column list,
 * the insert's columns and values, the update's SET list, the row's mapping to the Book, the input's parameters and
 * an event's data follow from it. A new optional text field is one more `{ column: '…', input: OPTIONAL }`.
 */
const FIELDS = [
  // A UUID v7 the service makes; never changed.
  { column: 'id', insert: PARAMETER },
  { column: 'title', input: REQUIRED },
  { column: 'author', input: OPTIONAL },
  { column: 'published_date', input: REQUIRED },
  { column: 'status', input: { default: DEFAULT_STATUS } },
  { column: 'image_url', input: OPTIONAL },
  { column: 'description', input: OPTIONAL },
  // The token's subject, which the create's caller gives (null without authentication); never changed.
  { column: 'created_by', insert: PARAMETER },
  { column: 'created_at', insert: 'now()', reading: TIMESTAMP },
  // greatest(): updated_at moves forward on every update, even within one clock tick.
  {
    column: 'updated_at',
    insert: 'now()',
    update: "greatest(now(), updated_at + interval '1 microsecond')",
    reading: TIMESTAMP,
  },
  // Moved on by every write (the ETag), beside the Book rather than in it (StoredBook). A create leaves it at 1.
  { column: 'version', member: null, update: 'version + 1' },
] as const satisfies readonly Field[]

type ShapeField = (typeof FIELDS)[number]
type MemberOf<F> = F extends { member: null }
  ? never
  : F extends { member: infer M }
    ? M
    : F extends { column: infer C }
      ? C
      : never
type SameKeys<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false
/** No constraint when FIELDS name the Book's members and the input's, no more and no fewer; else a type error. */
type MatchingSchemas = [
  SameKeys<MemberOf<ShapeField>, keyof Book>,
  SameKeys<MemberOf<Extract<ShapeField, { input: object }>>, keyof BookInput>,
] extends [true, true]
  ? unknown
  : { 'FIELDS must name every member of Book and of BookInput, and no other': never }

/** A row of the books table as the drivers return it. */
type BookRow = Record<ShapeField['column'], unknown> & { id: string; version: number }

const fields: readonly Field[] & MatchingSchemas = FIELDS
const memberOf = (field: Field) => field.member ?? field.column
/** The Book's members, each with its column. */
const BOOK_MEMBERS = fields.flatMap((field) =>
  field.member === null ? [] : [{ column: field.column, member: memberOf(field) }],
)
const INPUT_FIELDS = fields.filter((field) => field.input !== undefined)
/** The columns a create writes: those the input sets, and those with an `insert`. */
const INSERTED = fields.filter((field) => field.input !== undefined || field.insert !== undefined)

const COLUMN_NAMES = fields.map((field) => field.column).join(', ')
/** The select list of a book's row: each column as it reads, under its own name. */
const COLUMNS = fields
  .map((field) => (field.reading === undefined ? field.column : `${field.reading(field.column)} AS ${field.column}`))
  .join(', ')

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
  created_at: { column: 'created_at', type: 'timestamptz', key: rfc3339Utc('created_at') },
  published_date: { column: 'published_date', type: 'date', key: `to_char(published_date, 'YYYY-MM-DD')` },
  title: { column: 'title', type: 'text', key: 'title' },
}

function sortKeyOf(sort: Sort) {
  return SORT_KEYS[sort.replace('-', '') as keyof typeof SORT_KEYS]
}

/**
 * The ORDER BY of a sort, read forwards or (for a `before` cursor) backwards; `prefix` qualifies the columns. A
 * bare name would sort by the select list's column of that name, which for a timestamp is its text and no index.
 */
function orderBy(sort: Sort, backwards: boolean, prefix = 'books.'): string {
  const descending = sort.startsWith('-') !== backwards
  const direction = descending ? 'DESC' : 'ASC'
  return `${prefix}${sortKeyOf(sort).column} ${direction}, ${prefix}id ${direction}`
}

function toStoredBook(row: BookRow): StoredBook {
  return { book: toBook(row), version: row.version }
}

function toBook(row: BookRow): Book {
  const book: Record<string, unknown> = {}
  for (const { column, member } of BOOK_MEMBERS) book[member] = row[column as ShapeField['column']]
  return book as Book
}

/**
 * A create's answer as stored for its idempotency key, as a Book: a member the answer lacks, one added since it was
 * stored, reads as its input's default or null (as the column does for the books written before it).
 */
function storedAnswer(body: string): Book {
  const stored = JSON.parse(body) as Record<string, unknown>
  const book: Record<string, unknown> = {}
  for (const field of fields) {
    if (field.member === null) continue
    const member = memberOf(field)
    if (member in stored) {
      const value = stored[member]
      // Stored while the API showed milliseconds: the same instant, as it is shown now.
      book[member] =
        field.reading === TIMESTAMP && typeof value === 'string' ? value.replace(/(\.\d{3})Z$/, '$1000Z') : value
    } else book[member] = field.input !== undefined && 'default' in field.input ? field.input.default : null
  }
  return book as Book
}

/** The parameters that a book's input sets, by column: the input's value, or its field's default. */
function inputParameters(input: BookInput): Record<string, unknown> {
  const given = input as Record<string, unknown>
  const values: Record<string, unknown> = {}
  for (const field of INPUT_FIELDS) {
    const value = given[memberOf(field)]
    values[field.column] =
      field.input !== undefined && 'default' in field.input ? (value ?? field.input.default) : value
  }
  return values
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

/** Hands out a statement's placeholders: the placeholder of a named parameter. */
type Placeholder = (name: string) => string

/**
 * A statement whose placeholders are numbered as its text is written: `$(name)` gives $1 to the first parameter
 * named, $2 to the next, and the same placeholder again to a name used again. `parameters` lists named values in
 * the placeholders' order.
 */
function numbered(write: ($: Placeholder) => string) {
  const names: string[] = []
  const text = write((name) => {
    if (!names.includes(name)) names.push(name)
    return `$${names.indexOf(name) + 1}`
  })
  return {
    text,
    parameters(values: Readonly<Record<string, unknown>>): unknown[] {
      return names.map((name) => {
        if (!(name in values)) throw new Error(`no value for the parameter ${name} of ${text}`)
        return values[name]
      })
    },
  }
}

/** The values of a create's columns (INSERTED): the input's parameters, the write's own, or SQL. */
const insertValues = ($: Placeholder) =>
  INSERTED.map((field) => (typeof field.insert === 'string' ? field.insert : $(field.column))).join(', ')

/** A replace's SET list, one column a line: the input's parameters, and what the others' `update` writes. */
const assignments = ($: Placeholder) =>
  fields
    .flatMap((field) => {
      const value = field.input !== undefined ? $(field.column) : field.update
      return value === undefined ? [] : [`${field.column} = ${value}`]
    })
    .join(',\n           ')

/** Whether the row is at one of the expected versions; at any, when none are expected (null). */
const atExpectedVersions = ($: Placeholder) => {
  const versions = $('expectedVersions')
  return `(${versions}::int[] IS NULL OR version = ANY(${versions}::int[]))`
}

/** The book as the API shows it (toBook), built in SQL from a write's RETURNING row (COLUMNS): an event's data. */
const BOOK_JSON = `jsonb_build_object(${BOOK_MEMBERS.map(
  ({ column, member }) => `\n                '${member}', ${column}`,
).join(',')})`

/** The event a write of a book records: about the written row, at its version, the book as its data. */
const BOOK_EVENT = { aggregate: BOOK_EVENTS.aggregate, id: 'id', version: 'version', data: BOOK_JSON }

/** The answer of a write, and its event's id and traceparent, which eventParameters() fills in. */
const answerAndEvent = ($: Placeholder) => ({
  // The written row's columns already read as the API shows them (RETURNING COLUMNS).
  select: COLUMN_NAMES,
  eventId: $('eventId'),
  traceparent: $('traceparent'),
})

const insert = numbered(($) =>
  withEvent(
    `INSERT INTO books (${INSERTED.map(({ column }) => column).join(', ')})
       VALUES (${insertValues($)})
       RETURNING ${COLUMNS}`,
    { ...BOOK_EVENT, type: BOOK_EVENTS.changes.created.type },
    answerAndEvent($),
  ),
)

const update = numbered(($) =>
  withEvent(
    `UPDATE books
       SET ${assignments($)}
       WHERE id = ${$('id')} AND ${atExpectedVersions($)}
       RETURNING ${COLUMNS}`,
    { ...BOOK_EVENT, type: BOOK_EVENTS.changes.updated.type },
    answerAndEvent($),
  ),
)

const remove = numbered(($) =>
  withEvent(
    `DELETE FROM books WHERE id = ${$('id')} AND ${atExpectedVersions($)}
       RETURNING ${COLUMNS}`,
    // A delete's event sorts after the book's last change: its bookversion is one past the last version, which
    // its data names.
    {
      ...BOOK_EVENT,
      type: BOOK_EVENTS.changes.deleted.type,
      version: 'version + 1',
      data: `jsonb_build_object('id', id, 'version', version)`,
    },
    answerAndEvent($),
  ),
)

/**
 * The fixed statements; exported so that the benchmark (bench/) runs exactly these. findById takes the id; the
 * writes take what insertParameters, updateParameters and deleteParameters list.
 */
export const BOOK_SQL = {
  findById: `SELECT ${COLUMNS} FROM books WHERE id = $1`,
  // A read that a write in the same transaction follows: no other write of the book comes in between.
  findForUpdate: `SELECT ${COLUMNS} FROM books WHERE id = $1 FOR UPDATE`,
  insert: insert.text,
  update: update.text,
  delete: remove.text,
} as const

/** What a write's event takes: its id, and the trace it belongs to. */
export type EventParameters = ReturnType<typeof eventParameters>

/** Who creates a book: the token's subject, or null without authentication. */
export type Creator = string | null

/** BOOK_SQL.insert's parameters: the new book's id, input and creator, and its event's. */
export function insertParameters(
  id: string,
  input: BookInput,
  event: EventParameters = eventParameters(),
  createdBy: Creator = null,
) {
  return insert.parameters({ id, ...inputParameters(input), created_by: createdBy, ...event })
}

/** BOOK_SQL.update's parameters: the book's id, its new input, the versions it must be at (any: none), its event's. */
export function updateParameters(
  id: string,
  input: BookInput,
  expectedVersions: number[] | undefined,
  event: EventParameters = eventParameters(),
) {
  return update.parameters({ id, ...inputParameters(input), expectedVersions: expectedVersions ?? null, ...event })
}

/** BOOK_SQL.delete's parameters: the book's id, the versions it must be at (any: none), and its event's. */
export function deleteParameters(
  id: string,
  expectedVersions: number[] | undefined,
  event: EventParameters = eventParameters(),
) {
  return remove.parameters({ id, expectedVersions: expectedVersions ?? null, ...event })
}

async function insertBook(db: Queryable, input: BookInput, createdBy: Creator): Promise<StoredBook> {
  const [row] = await db.query<BookRow>(BOOK_SQL.insert, insertParameters(uuidv7(), input, undefined, createdBy))
  return toStoredBook(row as BookRow)
}

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

/** Deletes the expired idempotency keys in `tx`, in batches: how many. */
async function deleteExpiredKeys(tx: Queryable): Promise<number> {
  let deleted = 0
  for (;;) {
    const rows = await tx.query(IDEMPOTENCY_SQL.deleteExpired, [SWEEP_BATCH])
    deleted += rows.length
    if (rows.length < SWEEP_BATCH) return deleted
  }
}

export function createBooksRepository(db: Database) {
  return {
    async findById(id: string): Promise<StoredBook | undefined> {
      const [row] = await db.query<BookRow>(BOOK_SQL.findById, [id])
      return row && toStoredBook(row)
    },

    create: (input: BookInput, createdBy: Creator = null): Promise<StoredBook> => insertBook(db, input, createdBy),

    /**
     * Creates the book once per Idempotency-Key: the key's record is written in the book's transaction, and a
     * transaction-scoped advisory lock tells a retry that arrives while the first attempt runs.
     */
    createOnce(input: BookInput, claim: IdempotencyClaim, createdBy: Creator = null): Promise<CreateOnceOutcome> {
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
          const book = storedAnswer(previous.response_body)
          return { outcome: 'replayed', book: { book, version: previous.response_version } }
        }
        const stored = await insertBook(tx, input, createdBy)
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

    /** Forgets idempotency keys older than 24 hours, in batches, in `tx` (the sweep job's): how many. */
    deleteExpiredIdempotencyKeys: deleteExpiredKeys,

    /**
     * A read-modify-write (a patch, or a write that depends on the book as it is): reads the book locked for the
     * transaction and, while it is at one of `expectedVersions` when given, writes the input `next` makes of it,
     * deletes it, or stops with what `next` returns instead. No other write of the book can come between the read
     * and the write.
     */
    modify<Stop>(
      id: string,
      expectedVersions: number[] | undefined,
      next: (current: StoredBook) => { write: BookInput } | { remove: true } | { stop: Stop },
    ): Promise<
      | { outcome: 'not_found' }
      | { outcome: 'version_mismatch' }
      | { outcome: 'written'; book: StoredBook }
      | { outcome: 'removed' }
      | { outcome: 'stopped'; stop: Stop }
    > {
      return db.transaction(async (tx) => {
        const [row] = await tx.query<BookRow>(BOOK_SQL.findForUpdate, [id])
        if (row === undefined) return { outcome: 'not_found' }
        const current = toStoredBook(row)
        if (expectedVersions !== undefined && !expectedVersions.includes(current.version)) {
          return { outcome: 'version_mismatch' }
        }
        const decided = next(current)
        if ('stop' in decided) return { outcome: 'stopped', stop: decided.stop }
        if ('remove' in decided) {
          await tx.query(BOOK_SQL.delete, deleteParameters(id, [current.version]))
          return { outcome: 'removed' }
        }
        const [written] = await tx.query<BookRow>(
          BOOK_SQL.update,
          updateParameters(id, decided.write, [current.version]),
        )
        return { outcome: 'written', book: toStoredBook(written as BookRow) }
      })
    },

    /**
     * Replaces a book's fields. With `expectedVersions` (from If-Match) the write happens only while the book is
     * at one of them, checked in the same statement, so of two racing writers exactly one wins.
     */
    async update(id: string, input: BookInput, expectedVersions?: number[]): Promise<WriteOutcome<StoredBook>> {
      const [row] = await db.query<BookRow>(BOOK_SQL.update, updateParameters(id, input, expectedVersions))
      return row ? { outcome: 'done', value: toStoredBook(row) } : this.missOutcome(id)
    },

    async delete(id: string, expectedVersions?: number[]): Promise<WriteOutcome<undefined>> {
      const rows = await db.query(BOOK_SQL.delete, deleteParameters(id, expectedVersions))
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
