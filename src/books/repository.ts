// The books SQL. Every statement is written out here; `undefined` means "no such book".
import { v7 as uuidv7 } from 'uuid'
import type { Database, Queryable } from '../db/database.ts'
import { etagOf } from '../http/conditional.ts'
import type { Book, BookInput, ListQuery } from './schemas.ts'

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

/** A book and the version its ETag is made from. */
export interface StoredBook {
  book: Book
  version: number
}

/** What a conditional write found: done, no such book, or a book at another version than expected. */
export type WriteOutcome<T> = { outcome: 'done'; value: T } | { outcome: 'not_found' } | { outcome: 'version_mismatch' }

const ORDER_BY: Record<ListQuery['sort'], string> = {
  created_at: 'created_at ASC, id ASC',
  '-created_at': 'created_at DESC, id DESC',
  published_date: 'published_date ASC, id ASC',
  '-published_date': 'published_date DESC, id DESC',
  title: 'title ASC, id ASC',
  '-title': 'title DESC, id DESC',
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
    input.status ?? 'pending',
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
  | { outcome: 'created'; stored: StoredBook }
  | { outcome: 'replay'; book: Book; etag: string }
  | { outcome: 'in_flight' }
  | { outcome: 'key_reused' }

async function insertBook(db: Queryable, input: BookInput): Promise<StoredBook> {
  const [row] = await db.query<BookRow>(BOOK_SQL.insert, [uuidv7(), ...inputValues(input)])
  return toStoredBook(row as BookRow)
}

/** The fixed statements; exported so that the benchmark (bench/) runs exactly these. */
export const BOOK_SQL = {
  findById: `SELECT ${COLUMNS} FROM books WHERE id = $1`,
  insert: `INSERT INTO books (id, created_at, updated_at, title, author, published_date, status, image_url, description)
     VALUES ($1, now(), now(), $2, $3, $4, $5, $6, $7)
     RETURNING ${COLUMNS}`,
  // greatest(): updated_at moves forward on every update, even within one clock tick.
  update: `UPDATE books
     SET title = $2, author = $3, published_date = $4, status = $5, image_url = $6, description = $7,
         version = version + 1, updated_at = greatest(now(), updated_at + interval '1 millisecond')
     WHERE id = $1 AND ($8::int[] IS NULL OR version = ANY($8::int[]))
     RETURNING ${COLUMNS}`,
} as const

export interface Statement {
  text: string
  values: unknown[]
}

/** The two statements behind a list: one page of matching books, and how many match in all. */
export function listStatements(query: ListQuery): { page: Statement; count: Statement } {
  const conditions: string[] = []
  const params: unknown[] = []
  const where = (condition: (placeholder: string) => string, value: unknown) => {
    params.push(value)
    conditions.push(condition(`$${params.length}`))
  }
  if (query.author !== undefined) where((p) => `lower(author) = lower(${p})`, query.author)
  if (query.status !== undefined) where((p) => `status = ${p}`, query.status)
  if (query.q !== undefined) where((p) => `title ILIKE '%' || ${p} || '%'`, escapeLike(query.q))
  const whereClause = conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`
  return {
    page: {
      text: `SELECT ${COLUMNS} FROM books ${whereClause}
           ORDER BY ${ORDER_BY[query.sort]}
           LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
      values: [...params, query.pageSize, (query.page - 1) * query.pageSize],
    },
    count: { text: `SELECT count(*)::int AS total FROM books ${whereClause}`, values: params },
  }
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
          response_etag: string
        }>(
          `SELECT request_hash, response_body, response_etag FROM idempotency_keys
           WHERE caller = $1 AND key = $2 AND created_at > now() - interval '24 hours'`,
          [claim.caller, claim.key],
        )
        if (previous !== undefined) {
          if (previous.request_hash !== claim.requestHash) return { outcome: 'key_reused' }
          // Only a 201 is ever stored: failures roll the transaction back and leave the key free.
          return { outcome: 'replay', book: JSON.parse(previous.response_body) as Book, etag: previous.response_etag }
        }
        const stored = await insertBook(tx, input)
        await tx.query(
          `INSERT INTO idempotency_keys (status_code, caller, key, request_hash, response_body, response_etag)
           VALUES (201, $1, $2, $3, $4, $5)
           ON CONFLICT (caller, key) DO UPDATE
           SET created_at = now(), status_code = 201, request_hash = $3, response_body = $4, response_etag = $5`,
          [claim.caller, claim.key, claim.requestHash, JSON.stringify(stored.book), etagOf(stored.version)],
        )
        return { outcome: 'created', stored }
      })
    },

    /** Forgets Idempotency-Keys older than 24 hours; returns how many. */
    async deleteExpiredIdempotencyKeys(): Promise<number> {
      const rows = await db.query(
        "DELETE FROM idempotency_keys WHERE created_at <= now() - interval '24 hours' RETURNING key",
      )
      return rows.length
    },

    /**
     * Replaces a book's fields. With `expectedVersions` (from If-Match) the write happens only while the book is
     * at one of them, checked in the same statement, so of two racing writers exactly one wins.
     */
    async update(id: string, input: BookInput, expectedVersions?: number[]): Promise<WriteOutcome<StoredBook>> {
      const [row] = await db.query<BookRow>(BOOK_SQL.update, [id, ...inputValues(input), expectedVersions ?? null])
      return row ? { outcome: 'done', value: toStoredBook(row) } : this.missOutcome(id)
    },

    async delete(id: string, expectedVersions?: number[]): Promise<WriteOutcome<undefined>> {
      const rows = await db.query(
        'DELETE FROM books WHERE id = $1 AND ($2::int[] IS NULL OR version = ANY($2::int[])) RETURNING id',
        [id, expectedVersions ?? null],
      )
      return rows.length > 0 ? { outcome: 'done', value: undefined } : this.missOutcome(id)
    },

    /** Why a conditional write touched nothing: the book is gone, or it is at another version. */
    async missOutcome(id: string): Promise<{ outcome: 'not_found' } | { outcome: 'version_mismatch' }> {
      const [row] = await db.query('SELECT 1 FROM books WHERE id = $1', [id])
      return row === undefined ? { outcome: 'not_found' } : { outcome: 'version_mismatch' }
    },

    /** One page of books matching the filters, and how many match in all. */
    async list(query: ListQuery): Promise<{ books: Book[]; total: number }> {
      const { page, count: total } = listStatements(query)
      const [rows, [count]] = await Promise.all([
        db.query<BookRow>(page.text, page.values),
        db.query<{ total: number }>(total.text, total.values),
      ])
      return { books: rows.map(toBook), total: count?.total ?? 0 }
    },
  }
}
export type BooksRepository = ReturnType<typeof createBooksRepository>
