// books.v1.BookService: the books use cases (src/books/books.ts) over Connect, gRPC-Web and gRPC. Like the REST
// adapter, it only maps: messages to the core's input, the core's outcomes to messages and status codes.
import { create } from '@bufbuild/protobuf'
import { type Timestamp, TimestampSchema } from '@bufbuild/protobuf/wkt'
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from '@connectrpc/connect'
import type { Operation } from '../../admission/operation.ts'
import {
  type BookInput as BookInputMessage,
  BookInputSchema,
  type Book as BookMessage,
  BookSchema,
  BookService,
  BookStatus,
  CreateBookResponseSchema,
  DeleteBookResponseSchema,
  GetBookResponseSchema,
  ListBooksResponseSchema,
  UpdateBookResponseSchema,
} from '../../gen/books/v1/books_pb.js'
import { callerOf, invalidArgument, PRINCIPAL, permissionDenied } from '../../rpc/toolkit/calls.ts'
import type { RpcResource } from '../../rpc/toolkit/resource.ts'
import { validator } from '../../rpc/toolkit/validation.ts'
import { type Books, type Forbidden, type StoredBook, trimInput } from '../books.ts'
import { encodeCursor } from '../cursor.ts'
import { BOOK_OPERATIONS } from '../operations.ts'
import { BookInput, BookParams, IdempotencyKey, ListQuery } from '../schemas.ts'

/** The operation each method serves: the same declarations as the REST routes'. */
const OPERATIONS: Record<keyof ServiceImpl<typeof BookService>, Operation> = {
  listBooks: BOOK_OPERATIONS.listBooks,
  getBook: BOOK_OPERATIONS.getBook,
  createBook: BOOK_OPERATIONS.createBook,
  updateBook: BOOK_OPERATIONS.replaceBook,
  deleteBook: BOOK_OPERATIONS.deleteBook,
}

const STATUS_NAMES = { [BookStatus.PENDING]: 'pending', [BookStatus.VERIFIED]: 'verified' } as const
const STATUS_VALUES = { pending: BookStatus.PENDING, verified: BookStatus.VERIFIED } as const

const statusName = (status: BookStatus) =>
  status === BookStatus.UNSPECIFIED ? undefined : (STATUS_NAMES[status as keyof typeof STATUS_NAMES] ?? 'unknown')

/** An RFC 3339 UTC timestamp as REST shows it, to the microsecond, which a Date would drop. */
function timestampOf(text: string): Timestamp {
  const [whole = text, fraction = ''] = text.replace(/Z$/, '').split('.')
  return create(TimestampSchema, {
    seconds: BigInt(Date.parse(`${whole}Z`) / 1000),
    nanos: Number(fraction.padEnd(9, '0').slice(0, 9)),
  })
}

function toMessage({ book, version }: StoredBook): BookMessage {
  return create(BookSchema, {
    id: book.id,
    title: book.title,
    author: book.author ?? '',
    publishedDate: book.published_date,
    status: STATUS_VALUES[book.status],
    ...(book.image_url === null ? {} : { imageUrl: book.image_url }),
    ...(book.description === null ? {} : { description: book.description }),
    ...(book.created_by === null ? {} : { createdBy: book.created_by }),
    createdAt: timestampOf(book.created_at),
    updatedAt: timestampOf(book.updated_at),
    version,
  })
}

/** The input as REST takes it, so that the same schema, with the same messages, judges it. */
function inputOf(message: BookInputMessage | undefined): Record<string, unknown> {
  const input: Record<string, unknown> = {
    title: message?.title ?? '',
    // A proto3 string has no null: empty is none.
    author: message?.author || null,
    published_date: message?.publishedDate ?? '',
  }
  const status = statusName(message?.status ?? BookStatus.UNSPECIFIED)
  if (status !== undefined) input.status = status
  if (message?.imageUrl !== undefined) input.image_url = message.imageUrl
  if (message?.description !== undefined) input.description = message.description
  trimInput(input)
  return input
}

/** The fields an update_mask may name: BookInput's, by their proto names (REST's member names). */
const MASKABLE = new Set(BookInputSchema.fields.map((field) => field.name))

/**
 * The merge patch an update_mask makes of the request's book: each named field with its value, a field named but
 * unset in the message as null (cleared, or refused when the book needs it).
 */
function patchOf(message: BookInputMessage | undefined, paths: readonly string[]): Record<string, unknown> {
  const unknown = paths.filter((path) => !MASKABLE.has(path))
  if (unknown.length > 0) {
    throw invalidArgument({ update_mask: `Names no field of BookInput: ${unknown.join(', ')}` })
  }
  const input = inputOf(message)
  return Object.fromEntries(paths.map((path) => [path, input[path] === '' ? null : (input[path] ?? null)]))
}

// Field names in violations are the request message's: REST's names where they are the same, the paths otherwise.
const validBookInput = validator(BookInput, (field) => `book.${field}`)
const validId = validator(BookParams)
const validKey = validator(IdempotencyKey, () => 'idempotency_key')
const LIST_FIELDS: Record<string, string> = { pageSize: 'page_size', cursor: 'page_token' }
const validListQuery = validator(ListQuery, (field) => LIST_FIELDS[field] ?? field)

function expectedVersions(expected: number | undefined, required: boolean): number[] | undefined {
  if (expected === undefined && required) {
    throw new ConnectError('this request needs expected_version, the version of the book', Code.FailedPrecondition)
  }
  return expected === undefined ? undefined : [expected]
}

const notFound = () => new ConnectError('book not found', Code.NotFound)
const forbidden = ({ reason, errors }: Forbidden) =>
  permissionDenied(
    reason,
    errors && Object.fromEntries(Object.entries(errors).map(([field, message]) => [`book.${field}`, message])),
  )
const versionMismatch = () =>
  new ConnectError('the book has changed since expected_version; read it again', Code.FailedPrecondition)

export function bookService(books: Books, { requireIfMatch }: { requireIfMatch: boolean }): RpcResource {
  const impl: ServiceImpl<typeof BookService> = {
    async listBooks(request) {
      const query = validListQuery({
        page: 1,
        pageSize: request.pageSize === 0 ? 10 : request.pageSize,
        sort: request.sort === '' ? '-created_at' : request.sort,
        ...(request.pageToken === '' ? {} : { cursor: request.pageToken }),
        ...(request.author === '' ? {} : { author: request.author }),
        ...(request.status === BookStatus.UNSPECIFIED ? {} : { status: statusName(request.status) }),
        ...(request.q === '' ? {} : { q: request.q }),
      })
      const result = await books.list(query)
      if (result.outcome === 'invalid') throw invalidArgument(result.errors, LIST_FIELDS)
      const { page } = result
      return create(ListBooksResponseSchema, {
        books: page.books.map(toMessage),
        nextPageToken: page.next === undefined ? '' : encodeCursor(page.next),
      })
    },

    async getBook(request) {
      const { id } = validId({ id: request.id })
      const result = await books.get(id)
      if (result.outcome === 'not_found') throw notFound()
      return create(GetBookResponseSchema, { book: toMessage(result.book) })
    },

    async createBook(request, context: HandlerContext) {
      const input = validBookInput(inputOf(request.book))
      const key = request.idempotencyKey === '' ? undefined : validKey(request.idempotencyKey)
      const result = await books.create(
        input,
        key === undefined ? undefined : { caller: callerOf(context), key },
        context.values.get(PRINCIPAL),
      )
      switch (result.outcome) {
        case 'forbidden':
          throw forbidden(result)
        case 'in_flight':
          throw new ConnectError(
            'a request with this idempotency_key is still being processed; retry shortly',
            Code.Aborted,
          )
        case 'key_reused':
          throw new ConnectError('the idempotency_key was already used with a different request', Code.AlreadyExists)
        case 'created':
        case 'replayed':
          return create(CreateBookResponseSchema, {
            book: toMessage(result.book),
            replayed: result.outcome === 'replayed',
          })
      }
    },

    async updateBook(request, context: HandlerContext) {
      const { id } = validId({ id: request.id })
      const expected = expectedVersions(request.expectedVersion, requireIfMatch)
      const writer = context.values.get(PRINCIPAL)
      const paths = request.updateMask?.paths ?? []
      // AIP-134: no mask, or "*", replaces the whole book; a mask writes the fields it names, as a PATCH does.
      const result =
        paths.length === 0 || (paths.length === 1 && paths[0] === '*')
          ? await books.replace(id, validBookInput(inputOf(request.book)), expected, writer)
          : await books.patch(id, patchOf(request.book, paths), expected, writer)
      switch (result.outcome) {
        case 'forbidden':
          throw forbidden(result)
        case 'not_found':
          throw notFound()
        case 'version_mismatch':
          throw versionMismatch()
        case 'invalid':
          throw invalidArgument(result.errors)
        case 'replaced':
        case 'patched':
          return create(UpdateBookResponseSchema, { book: toMessage(result.book) })
      }
    },

    async deleteBook(request, context: HandlerContext) {
      const { id } = validId({ id: request.id })
      const expected = expectedVersions(request.expectedVersion, requireIfMatch)
      const result = await books.delete(id, expected, context.values.get(PRINCIPAL))
      if (result.outcome === 'forbidden') throw forbidden(result)
      if (result.outcome === 'not_found') throw notFound()
      if (result.outcome === 'version_mismatch') throw versionMismatch()
      return create(DeleteBookResponseSchema, {})
    },
  }
  return { service: BookService, impl, operations: OPERATIONS }
}
