// /v1/books: list, create, read, update, delete.

import { createHash } from 'node:crypto'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import type { Database } from '../db/database.ts'
import { etagOf, matches, parsePrecondition } from '../http/conditional.ts'
import { bearer } from '../http/openapi.ts'
import { type PageTargets, paginationLinks } from '../http/pagination.ts'
import { HttpError } from '../http/problem.ts'
import { emptyResponse, jsonResponse, problemResponses } from '../http/responses.ts'
import { ERROR_MESSAGE } from '../http/validation.ts'
import { type Cursor, decodeCursor, encodeCursor } from './cursor.ts'
import { type CountMethod, createBooksRepository, ESTIMATED_COUNT_THRESHOLD, type ListPage } from './repository.ts'
import { Book, BookInput, BookParams, BookReplacement, ListQuery } from './schemas.ts'

const bookNotFound = () => new HttpError(404, 'book not found')

const TRIMMED_FIELDS = ['title', 'author', 'image_url', 'description'] as const

/** Surrounding white space is not content: "  Dune " is stored, and length-checked, as "Dune". */
async function trimBody(request: FastifyRequest) {
  const body = request.body
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return
  const fields = body as Record<string, unknown>
  for (const field of TRIMMED_FIELDS) {
    const value = fields[field]
    if (typeof value === 'string') fields[field] = value.trim()
  }
}

/** A body-less POST or PUT has no JSON media type either: 415, like any other non-JSON body. */
async function requireJsonBody(request: FastifyRequest) {
  if (request.body === undefined) throw new HttpError(415, 'Content-Type must be application/json')
}

const ETAG = {
  etag: { type: 'string', required: true, description: 'Strong entity tag of this version of the book' },
} as const
const LOCATION = {
  location: { type: 'string', required: true, description: 'Path of the created book' },
  ...ETAG,
} as const
const IfNoneMatch = Type.Object({
  'if-none-match': Type.Optional(Type.String({ description: 'ETags the client has; 304 when one is current' })),
})
const IfMatch = Type.Object({
  'if-match': Type.Optional(
    Type.String({ description: 'Change only if the book is at one of these ETags (* for any); else 412' }),
  ),
})

function expectedVersions(request: FastifyRequest, requireIfMatch: boolean): number[] | undefined {
  const header = request.headers['if-match']
  if (header === undefined && requireIfMatch) {
    throw new HttpError(428, 'this request needs an If-Match header with the ETag of the book')
  }
  const precondition = parsePrecondition(header, { weak: false })
  // `*` only needs the book to exist, which the write checks anyway.
  return precondition?.kind === 'versions' ? precondition.versions : undefined
}

const IdempotencyKey = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 255,
      pattern: '^[\\x21-\\x7e]+$',
      description: 'Makes a retried create safe: the same key and body replay the first answer for 24 hours',
      [ERROR_MESSAGE]: 'Must be 1 to 255 visible ASCII characters',
    }),
  ),
})
const REPLAYED = {
  'idempotent-replayed': { type: 'string', description: '"true" when this is the stored answer to an earlier request' },
} as const

/** A digest of the create request as validated (trimmed, defaults filled), independent of member order. */
function requestHash(body: BookInput): string {
  const canonical = JSON.stringify(Object.fromEntries(Object.entries(body).sort(([a], [b]) => a.localeCompare(b))))
  return createHash('sha256').update(canonical).digest('hex')
}

// Keys belong to the token's subject; without authentication, to the client address.
const callerOf = (request: FastifyRequest) =>
  request.principal === undefined ? `ip:${request.ip}` : `sub:${request.principal.subject}`

const IDEMPOTENCY_SWEEP_MS = 10 * 60_000

/**
 * The fields a PUT stores. Of the read-only members, `id` must name the book in the path (UUIDs compare without
 * regard to case); the timestamps are dropped, since the server sets them.
 */
function replacementInput(replacement: BookReplacement, pathId: string): BookInput {
  const { id, created_at: _createdAt, updated_at: _updatedAt, ...input } = replacement
  if (id !== undefined && id.toLowerCase() !== pathId.toLowerCase()) {
    throw new HttpError(422, 'request validation failed', { errors: { id: 'Must match the id in the path' } })
  }
  return input
}

const preconditionFailed = () => new HttpError(412, 'the book has changed since the ETag in If-Match; read it again')
// The parameters the list declares, and so the only ones its links carry; the page ones each link sets itself.
const LIST_PARAMETERS = Object.keys(ListQuery.properties)
const PAGE_PARAMETERS = ['page', 'cursor']
const PAGE_HEADERS = {
  link: {
    type: 'string',
    required: true,
    description:
      'RFC 8288 links: first, and prev and next (by cursor) where there are rows there; last only with an exact count',
  },
  'x-total-count': {
    type: 'integer',
    description: `Books matching the filters, on all pages: only when counted exactly (Prefer: count=exact, or count=estimated up to ${ESTIMATED_COUNT_THRESHOLD})`,
  },
  'x-total-count-estimate': {
    type: 'integer',
    description: `The planner's estimate of the books matching the filters (Prefer: count=planned, or count=estimated above ${ESTIMATED_COUNT_THRESHOLD})`,
  },
  'preference-applied': { type: 'string', description: 'The count preference honoured (RFC 7240), e.g. count=exact' },
  vary: { type: 'string', description: 'Prefer: the count depends on it' },
} as const

const ListHeaders = Type.Object({
  prefer: Type.Optional(
    Type.String({
      description:
        'RFC 7240 preferences; the list honours count=exact (counts every match, in the snapshot of the page: ' +
        'costs in proportion to the matches), count=planned (the planner estimate, constant cost) and ' +
        `count=estimated (exact up to ${ESTIMATED_COUNT_THRESHOLD} matches, planned above). Without it nothing is counted.`,
      examples: ['count=exact'],
    }),
  ),
})

const COUNT_METHODS: readonly CountMethod[] = ['exact', 'planned', 'estimated']

/** The count=… preference of a Prefer header (RFC 7240: preferences are comma-separated, unknown ones ignored). */
export function countPreference(prefer: string | undefined): CountMethod | undefined {
  for (const preference of (prefer ?? '').split(',')) {
    const [name, value] =
      preference
        .split(';')[0]
        ?.split('=')
        .map((part) => part.trim().toLowerCase()) ?? []
    if (name === 'count' && COUNT_METHODS.includes(value as CountMethod)) return value as CountMethod
  }
  return undefined
}

const invalidCursor = (message: string) =>
  new HttpError(422, 'request validation failed', { errors: { cursor: message } })

/** The cursor a list request names, checked against the rest of its query. */
function cursorOf(query: ListQuery): Cursor | undefined {
  if (query.cursor === undefined) return undefined
  if (query.page > 1) throw invalidCursor('Must not be sent with a page other than 1')
  const cursor = decodeCursor(query.cursor)
  if (cursor === undefined) throw invalidCursor('Must be a cursor from a Link of this list')
  if (cursor.sort !== query.sort) throw invalidCursor('Must come from a list of the same sort')
  return cursor
}

/**
 * Where the links of a list page lead: cursors, also from a page named by number, so that following a link costs
 * one page however far into the list it is. `last` needs the exact count (it is the end of the index, read
 * backwards); without one a client cannot know that the list has an end worth jumping to.
 */
function pageTargets(query: ListQuery, next: Cursor | undefined, prev: Cursor | undefined, total: ListPage['total']) {
  const targets: PageTargets = { first: {} }
  if (prev !== undefined) targets.prev = { cursor: encodeCursor(prev) }
  if (next !== undefined) targets.next = { cursor: encodeCursor(next) }
  if (total?.exact) {
    targets.last = { cursor: encodeCursor({ sort: query.sort, direction: 'before', key: null, id: null }) }
  }
  return targets
}

export const booksRoutes: FastifyPluginAsyncTypebox<{ database: Database; requireIfMatch: boolean }> = async (
  app,
  { database, requireIfMatch },
) => {
  const books = createBooksRepository(database)

  // Every replica sweeps; the DELETE is idempotent, and lookups ignore expired keys anyway.
  let sweep: NodeJS.Timeout | undefined
  app.addHook('onReady', async () => {
    sweep = setInterval(() => {
      books.deleteExpiredIdempotencyKeys().catch((error: unknown) => {
        app.log.warn({ err: error }, 'could not delete expired idempotency keys')
      })
    }, IDEMPOTENCY_SWEEP_MS).unref()
  })
  app.addHook('onClose', async () => clearInterval(sweep))

  app.get(
    '/',
    {
      schema: {
        operationId: 'listBooks',
        security: bearer('books:read'),
        summary: 'List books',
        description:
          'One page of books, filtered and sorted; ties are broken by id so pages never overlap. The `next` and ' +
          '`prev` links carry a cursor, a position in the sort index: every page costs what the first one does, ' +
          'and a walk by cursor skips and repeats no book while others are written (books written during the walk ' +
          'may or may not appear). Nothing is counted unless `Prefer: count=…` asks for it.',
        tags: ['books'],
        querystring: ListQuery,
        headers: ListHeaders,
        response: {
          200: jsonResponse(Type.Array(Book), 'One page of books', PAGE_HEADERS),
          ...problemResponses(401, 403, 422, 429, 500, 503),
        },
      },
    },
    async (request, reply) => {
      const query = request.query
      const count = countPreference(request.headers.prefer)
      const { books: page, next, prev, total } = await books.list(query, cursorOf(query), count)
      const targets = pageTargets(query, next, prev, total)
      // Appended: CORS may have set Vary: Origin already.
      const vary = reply.getHeader('vary')
      reply.header('vary', vary === undefined ? 'Prefer' : `${vary}, Prefer`)
      if (count !== undefined) reply.header('preference-applied', `count=${count}`)
      if (total !== undefined) {
        reply.header(total.exact ? 'x-total-count' : 'x-total-count-estimate', String(total.value))
      }
      reply.header('link', paginationLinks('/v1/books', query, targets, LIST_PARAMETERS, PAGE_PARAMETERS))
      return page
    },
  )

  app.post(
    '/',
    {
      preValidation: [requireJsonBody, trimBody],
      schema: {
        operationId: 'createBook',
        security: bearer('books:write'),
        summary: 'Create a book',
        tags: ['books'],
        headers: IdempotencyKey,
        body: BookInput,
        response: {
          201: jsonResponse(Book, 'The created book (or, with a reused Idempotency-Key, the first answer)', {
            ...LOCATION,
            ...REPLAYED,
          }),
          ...problemResponses(400, 401, 403, 408, 409, 413, 415, 422, 429, 500, 503),
        },
      },
    },
    async (request, reply) => {
      const key = request.headers['idempotency-key']
      if (key === undefined) {
        const { book, version } = await books.create(request.body)
        return reply.code(201).header('location', `/v1/books/${book.id}`).header('etag', etagOf(version)).send(book)
      }
      const result = await books.createOnce(request.body, {
        caller: callerOf(request),
        key,
        requestHash: requestHash(request.body),
      })
      switch (result.outcome) {
        case 'in_flight':
          throw new HttpError(409, 'a request with this Idempotency-Key is still being processed; retry shortly', {
            headers: { 'retry-after': '1' },
          })
        case 'key_reused':
          throw new HttpError(422, 'request validation failed', {
            errors: { 'idempotency-key': 'Was already used with a different request body' },
          })
        case 'replay':
          return reply
            .code(201)
            .header('location', `/v1/books/${result.book.id}`)
            .header('etag', result.etag)
            .header('idempotent-replayed', 'true')
            .send(result.book)
        case 'created': {
          const { book, version } = result.stored
          return reply.code(201).header('location', `/v1/books/${book.id}`).header('etag', etagOf(version)).send(book)
        }
      }
    },
  )

  app.get(
    '/:id',
    {
      schema: {
        operationId: 'getBook',
        security: bearer('books:read'),
        summary: 'Read a book',
        tags: ['books'],
        params: BookParams,
        headers: IfNoneMatch,
        response: {
          200: jsonResponse(Book, 'The book', ETAG),
          304: emptyResponse('The ETag in If-None-Match is current', ETAG),
          ...problemResponses(400, 401, 403, 404, 429, 500, 503),
        },
      },
    },
    async (request, reply) => {
      const stored = await books.findById(request.params.id)
      if (stored === undefined) throw bookNotFound()
      reply.header('etag', etagOf(stored.version))
      const cached = parsePrecondition(request.headers['if-none-match'], { weak: true })
      if (cached !== undefined && matches(cached, stored.version)) return reply.code(304).send(null)
      return stored.book
    },
  )

  app.put(
    '/:id',
    {
      preValidation: [requireJsonBody, trimBody],
      schema: {
        operationId: 'replaceBook',
        security: bearer('books:write'),
        summary: 'Replace a book',
        description:
          'A full replace: optional fields left out return to their defaults. The read-only id, created_at and ' +
          'updated_at may be sent back as read: they are ignored, and an id other than the one in the path is a 422.',
        tags: ['books'],
        params: BookParams,
        headers: IfMatch,
        body: BookReplacement,
        response: {
          200: jsonResponse(Book, 'The book as stored', ETAG),
          ...problemResponses(400, 401, 403, 404, 408, 412, 413, 415, 422, 428, 429, 500, 503),
        },
      },
    },
    async (request, reply) => {
      const input = replacementInput(request.body, request.params.id)
      const result = await books.update(request.params.id, input, expectedVersions(request, requireIfMatch))
      if (result.outcome === 'not_found') throw bookNotFound()
      if (result.outcome === 'version_mismatch') throw preconditionFailed()
      return reply.header('etag', etagOf(result.value.version)).send(result.value.book)
    },
  )

  app.delete(
    '/:id',
    {
      schema: {
        operationId: 'deleteBook',
        security: bearer('books:write'),
        summary: 'Delete a book',
        tags: ['books'],
        params: BookParams,
        headers: IfMatch,
        response: {
          204: emptyResponse('The book was deleted'),
          ...problemResponses(400, 401, 403, 404, 412, 428, 429, 500, 503),
        },
      },
    },
    async (request, reply) => {
      const result = await books.delete(request.params.id, expectedVersions(request, requireIfMatch))
      if (result.outcome === 'not_found') throw bookNotFound()
      if (result.outcome === 'version_mismatch') throw preconditionFailed()
      return reply.code(204).send(null)
    },
  )
}
