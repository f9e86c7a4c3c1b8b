// The books use cases: list, get, create (once per idempotency key), replace and delete (at an expected version).
// No transport here: outcomes are values, and versions are numbers. The REST adapter (src/books/http/) maps them
// to statuses, ETags and problem answers; another transport maps them its own way.
import { createHash } from 'node:crypto'
import { isDeepStrictEqual } from 'node:util'
import mergePatch from 'json-merge-patch'
import type { Database, Queryable } from '../db/database.ts'
import { compileValidator, fieldErrors } from '../schema/validation.ts'
import { type Cursor, decodeCursor } from './cursor.ts'
import { changeRefusal, createRefusal, type Forbidden, type Writer } from './policy.ts'
import { type CountMethod, createBooksRepository, type ListPage, type StoredBook } from './repository.ts'
import { type Book, BookInput, type BookPatch, type BookReplacement, type ListQuery } from './schemas.ts'

export { ESTIMATED_COUNT_THRESHOLD } from './repository.ts'
export type { CountMethod, Forbidden, ListPage, StoredBook, Writer }

/** Input that the schema let through but the use case refuses, with a message per field. */
export interface Invalid {
  outcome: 'invalid'
  errors: Record<string, string>
}
export type NotFound = { outcome: 'not_found' }
export type VersionMismatch = { outcome: 'version_mismatch' }

export type ListOutcome = { outcome: 'listed'; page: ListPage } | Invalid
export type GetOutcome = { outcome: 'found'; book: StoredBook } | NotFound
export type CreateOutcome =
  | { outcome: 'created'; book: StoredBook }
  | Forbidden
  /** The first answer to an earlier request with the same key and the same input. */
  | { outcome: 'replayed'; book: StoredBook }
  /** A request with this key is still being processed. */
  | { outcome: 'in_flight' }
  /** The key was used before, with other input. */
  | { outcome: 'key_reused' }
export type ReplaceOutcome =
  | { outcome: 'replaced'; book: StoredBook }
  | NotFound
  | VersionMismatch
  | Invalid
  | Forbidden
export type DeleteOutcome = { outcome: 'deleted' } | NotFound | VersionMismatch | Forbidden
/** `changed` is false when the patch left the book as it was: nothing was written. */
export type PatchOutcome =
  | { outcome: 'patched'; book: StoredBook; changed: boolean }
  | NotFound
  | VersionMismatch
  | Invalid
  | Forbidden

/** Who sent an idempotency key, and the key: keys of different callers never meet. */
export interface IdempotencyKey {
  caller: string
  key: string
}

/** A list request: the filters, sort and page, where to start (a cursor from an earlier page), and how to count. */
export interface ListRequest extends ListQuery {
  count?: CountMethod | undefined
}

const TRIMMED_FIELDS = ['title', 'author', 'image_url', 'description'] as const

/**
 * Surrounding white space is not content: "  Dune " is stored, and length-checked, as "Dune". Applied to the raw
 * input before it is validated, so every transport calls it first.
 */
export function trimInput(input: unknown): void {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return
  const fields = input as Record<string, unknown>
  for (const field of TRIMMED_FIELDS) {
    const value = fields[field]
    if (typeof value === 'string') fields[field] = value.trim()
  }
}

/** The members of a book that no write sets. */
const READ_ONLY = ['id', 'created_by', 'created_at', 'updated_at'] as const
const INPUT_MEMBERS = Object.keys(BookInput.properties) as (keyof BookInput)[]
const validInput = compileValidator({ schema: BookInput, httpPart: 'body' })
/** The optional members without a default: a patch's null removes them, and they read as null. */
const CLEARABLE = INPUT_MEMBERS.filter(
  (member) =>
    !(BookInput.required as string[] | undefined)?.includes(member) && !('default' in BookInput.properties[member]),
)

/** Input with every member, as a write stores it: a member left out reads as its default, or null. */
function completeInput(input: Readonly<Record<string, unknown>>): Record<keyof BookInput, unknown> {
  return Object.fromEntries(
    INPUT_MEMBERS.map((member) => {
      const schema = BookInput.properties[member] as { default?: unknown }
      return [member, input[member] ?? schema.default ?? null]
    }),
  ) as Record<keyof BookInput, unknown>
}

/** The input that would write the book as it is. */
function inputOf(book: Book): BookInput {
  return Object.fromEntries(INPUT_MEMBERS.map((member) => [member, book[member]])) as BookInput
}

/** A digest of the create input as validated (trimmed, defaults filled), independent of member order. */
function inputHash(input: BookInput): string {
  const canonical = JSON.stringify(Object.fromEntries(Object.entries(input).sort(([a], [b]) => a.localeCompare(b))))
  return createHash('sha256').update(canonical).digest('hex')
}

/** The cursor a list request names, checked against the rest of the request. */
function cursorOf(request: ListRequest): Cursor | Invalid | undefined {
  if (request.cursor === undefined) return undefined
  const invalid = (message: string): Invalid => ({ outcome: 'invalid', errors: { cursor: message } })
  if (request.page > 1) return invalid('Must not be sent with a page other than 1')
  const cursor = decodeCursor(request.cursor)
  if (cursor === undefined) return invalid('Must be a cursor from a Link of this list')
  if (cursor.sort !== request.sort) return invalid('Must come from a list of the same sort')
  return cursor
}

export function createBooks(database: Database) {
  const repository = createBooksRepository(database)
  return {
    /** One page, by cursor or by page number; counted only when `count` says how. */
    async list(request: ListRequest): Promise<ListOutcome> {
      const cursor = cursorOf(request)
      if (cursor !== undefined && 'outcome' in cursor) return cursor
      return { outcome: 'listed', page: await repository.list(request, cursor, request.count) }
    },

    async get(id: string): Promise<GetOutcome> {
      const book = await repository.findById(id)
      return book === undefined ? { outcome: 'not_found' } : { outcome: 'found', book }
    },

    /**
     * Creates a book, recording `writer` as its creator; with a key, at most once per caller and key within 24
     * hours. The writer's right to the input is checked first, so a replay answers only who may send the request.
     */
    async create(input: BookInput, idempotency?: IdempotencyKey, writer?: Writer): Promise<CreateOutcome> {
      const refused = createRefusal(writer, input)
      if (refused !== undefined) return refused
      const createdBy = writer?.subject ?? null
      if (idempotency === undefined) return { outcome: 'created', book: await repository.create(input, createdBy) }
      return repository.createOnce(input, { ...idempotency, requestHash: inputHash(input) }, createdBy)
    },

    /**
     * Replaces the book's fields, only while it is at one of `expectedVersions` when given. Of the read-only
     * members a replacement may carry, `id` must name the book (UUIDs compare without regard to case); the
     * timestamps are the server's and are dropped.
     */
    async replace(
      id: string,
      replacement: BookReplacement,
      expectedVersions?: number[],
      writer?: Writer,
    ): Promise<ReplaceOutcome> {
      const { id: claimedId, created_by: _by, created_at: _at, updated_at: _updated, ...input } = replacement
      if (claimedId !== undefined && claimedId.toLowerCase() !== id.toLowerCase()) {
        return { outcome: 'invalid', errors: { id: 'Must match the id in the path' } }
      }
      if (writer === undefined) {
        // Nobody to check: one conditional statement.
        const written = await repository.update(id, input, expectedVersions)
        return written.outcome === 'done' ? { outcome: 'replaced', book: written.value } : written
      }
      const result = await repository.modify<ReplaceOutcome>(id, expectedVersions, (current) => {
        const refused = changeRefusal(writer, current.book, completeInput(input))
        return refused === undefined ? { write: input } : { stop: refused }
      })
      if (result.outcome === 'stopped') return result.stop
      if (result.outcome === 'not_found' || result.outcome === 'version_mismatch') return result
      if (result.outcome === 'removed') throw new Error('a replace removed a book')
      return { outcome: 'replaced', book: result.book }
    },

    /**
     * Changes some fields (JSON Merge Patch), only while the book is at one of `expectedVersions` when given. The
     * book as patched is judged whole, by the input's schema; the read and the write are one transaction, so no
     * other write comes between them. A patch that changes nothing writes nothing.
     */
    async patch(id: string, patch: BookPatch, expectedVersions?: number[], writer?: Writer): Promise<PatchOutcome> {
      const readOnly = READ_ONLY.filter((member) => member in patch)
      if (readOnly.length > 0) {
        const errors = Object.fromEntries(readOnly.map((member) => [member, 'Is read-only: a patch cannot change it']))
        return { outcome: 'invalid', errors }
      }
      const result = await repository.modify<PatchOutcome>(id, expectedVersions, (current) => {
        const before = inputOf(current.book)
        const after = mergePatch.apply(structuredClone(before), patch) as Record<string, unknown>
        for (const member of CLEARABLE) after[member] ??= null
        const refused = changeRefusal(writer, current.book, completeInput(after))
        if (refused !== undefined) return { stop: refused }
        if (!validInput(after)) {
          return { stop: { outcome: 'invalid', errors: fieldErrors(validInput.errors ?? [], 'body') } }
        }
        if (isDeepStrictEqual(after, before)) return { stop: { outcome: 'patched', book: current, changed: false } }
        return { write: after as BookInput }
      })
      if (result.outcome === 'not_found' || result.outcome === 'version_mismatch') return result
      if (result.outcome === 'removed') throw new Error('a patch removed a book')
      return result.outcome === 'written' ? { outcome: 'patched', book: result.book, changed: true } : result.stop
    },

    /** Deletes the book, only while it is at one of `expectedVersions` when given, and only if `writer` may. */
    async delete(id: string, expectedVersions?: number[], writer?: Writer): Promise<DeleteOutcome> {
      if (writer === undefined) {
        const written = await repository.delete(id, expectedVersions)
        return written.outcome === 'done' ? { outcome: 'deleted' } : written
      }
      const result = await repository.modify<DeleteOutcome>(id, expectedVersions, (current) => {
        const refused = changeRefusal(writer, current.book, undefined)
        return refused === undefined ? { remove: true } : { stop: refused }
      })
      if (result.outcome === 'written') throw new Error('a delete wrote a book')
      if (result.outcome === 'stopped') return result.stop
      return result.outcome === 'removed' ? { outcome: 'deleted' } : result
    },

    /**
     * Forgets idempotency keys past their 24 hours, in `tx` (the job's, which holds its lock): how many. Lookups
     * ignore expired keys anyway; the sweep only keeps the table small.
     */
    sweepExpiredIdempotencyKeys: (tx: Queryable): Promise<number> => repository.deleteExpiredIdempotencyKeys(tx),
  }
}
export type Books = ReturnType<typeof createBooks>
