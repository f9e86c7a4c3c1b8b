// /v1/books over REST: the books use cases (src/books/books.ts) behind schemas, statuses and headers. Every
// decision is the core's; this file only maps its outcomes to HTTP.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { etagOf, matches, parsePrecondition } from '../../http/toolkit/conditional.ts'
import { type PageTargets, paginationLinks } from '../../http/toolkit/pagination.ts'
import { HttpError } from '../../http/toolkit/problem.ts'
import { emptyResponse, jsonResponse } from '../../http/toolkit/responses.ts'
import {
  type Books,
  type Forbidden,
  type Invalid,
  type ListPage,
  type NotFound,
  type StoredBook,
  trimInput,
  type VersionMismatch,
} from '../books.ts'
import { encodeCursor } from '../cursor.ts'
import { BOOK_OPERATIONS as OPERATIONS } from '../operations.ts'
import { Book, BookInput, BookParams, BookPatch, BookReplacement, ListQuery } from '../schemas.ts'
import {
  ETAG,
  IdempotencyKeyHeader,
  IfMatch,
  IfNoneMatch,
  ListHeaders,
  LOCATION,
  PAGE_HEADERS,
  REPLAYED,
} from './headers.ts'
import { countPreference } from './prefer.ts'
import {
  bookNotFound,
  ifMatchRequired,
  invalidFields,
  keyInFlight,
  preconditionFailed,
  problemResponses,
  writeForbidden,
} from './problems.ts'

export const PREFIX = '/v1/books'

// The parameters the list declares, and so the only ones its links carry; the page ones each link sets itself.
const LIST_PARAMETERS = Object.keys(ListQuery.properties)
const PAGE_PARAMETERS = ['page', 'cursor']

/** A body-less POST or PUT has no JSON media type either: 415, like any other non-JSON body. */
async function requireJsonBody(request: FastifyRequest) {
  if (request.body === undefined) throw new HttpError(415, 'Content-Type must be application/json')
}

const MERGE_PATCH = 'application/merge-patch+json'

/** A PATCH is a JSON Merge Patch, in its own media type: a plain JSON body would read as a replacement. */
async function requireMergePatch(request: FastifyRequest) {
  const type = request.headers['content-type']?.split(';')[0]?.trim().toLowerCase()
  if (type !== MERGE_PATCH || request.body === undefined) {
    throw new HttpError(415, `Content-Type must be ${MERGE_PATCH}`)
  }
}

/** The versions an If-Match names; `*` only needs the book to exist, which the write checks anyway. */
function expectedVersions(request: FastifyRequest, requireIfMatch: boolean): number[] | undefined {
  const header = request.headers['if-match']
  if (header === undefined && requireIfMatch) throw ifMatchRequired()
  const precondition = parsePrecondition(header, { weak: false })
  return precondition?.kind === 'versions' ? precondition.versions : undefined
}

// Keys belong to the token's subject; without authentication, to the client address.
const callerOf = (request: FastifyRequest) =>
  request.principal === undefined ? `ip:${request.ip}` : `sub:${request.principal.subject}`

/**
 * Where the links of a list page lead: cursors, also from a page named by number, so that following a link costs
 * one page however far into the list it is. `last` needs the exact count (it is the end of the index, read
 * backwards); without one a client cannot know that the list has an end worth jumping to.
 */
function pageTargets(query: ListQuery, { next, prev, total }: ListPage): PageTargets {
  const targets: PageTargets = { first: {} }
  if (prev !== undefined) targets.prev = { cursor: encodeCursor(prev) }
  if (next !== undefined) targets.next = { cursor: encodeCursor(next) }
  if (total?.exact) {
    targets.last = { cursor: encodeCursor({ sort: query.sort, direction: 'before', key: null, id: null }) }
  }
  return targets
}

const created = (reply: FastifyReply, { book, version }: StoredBook, replayed: boolean) => {
  reply.code(201).header('location', `${PREFIX}/${book.id}`).header('etag', etagOf(version))
  if (replayed) reply.header('idempotent-replayed', 'true')
  return reply.send(book)
}

/** What a replace or a patch may answer besides the book. */
const CHANGE_PROBLEMS = problemResponses(
  400,
  401,
  403,
  bookNotFound,
  408,
  preconditionFailed,
  413,
  415,
  422,
  ifMatchRequired,
  429,
  500,
  503,
)

/** The answer to a replace or a patch: the book with its new ETag, or the problem its outcome names. */
function changed(
  reply: FastifyReply,
  result: { outcome: 'changed'; book: StoredBook } | NotFound | VersionMismatch | Invalid | Forbidden,
) {
  switch (result.outcome) {
    case 'forbidden':
      throw writeForbidden(result)
    case 'not_found':
      throw bookNotFound()
    case 'version_mismatch':
      throw preconditionFailed()
    case 'invalid':
      throw invalidFields(result.errors)
    case 'changed':
      return reply.header('etag', etagOf(result.book.version)).send(result.book.book)
  }
}

export const booksRoutes: FastifyPluginAsyncTypebox<{ books: Books; requireIfMatch: boolean }> = async (
  app,
  { books, requireIfMatch },
) => {
  app.get(
    '/',
    {
      config: { operation: OPERATIONS.listBooks },
      schema: {
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
      const result = await books.list({ ...query, count })
      if (result.outcome === 'invalid') throw invalidFields(result.errors)
      const { page } = result
      // Appended: CORS may have set Vary: Origin already.
      const vary = reply.getHeader('vary')
      reply.header('vary', vary === undefined ? 'Prefer' : `${vary}, Prefer`)
      if (count !== undefined) reply.header('preference-applied', `count=${count}`)
      if (page.total !== undefined) {
        reply.header(page.total.exact ? 'x-total-count' : 'x-total-count-estimate', String(page.total.value))
      }
      reply.header('link', paginationLinks(PREFIX, query, pageTargets(query, page), LIST_PARAMETERS, PAGE_PARAMETERS))
      return page.books.map(({ book }) => book)
    },
  )

  app.post(
    '/',
    {
      config: { operation: OPERATIONS.createBook },
      preValidation: [requireJsonBody, async (request) => trimInput(request.body)],
      schema: {
        tags: ['books'],
        headers: IdempotencyKeyHeader,
        body: BookInput,
        response: {
          201: jsonResponse(Book, 'The created book (or, with a reused Idempotency-Key, the first answer)', {
            ...LOCATION,
            ...REPLAYED,
          }),
          ...problemResponses(400, 401, 403, 408, keyInFlight, 413, 415, 422, 429, 500, 503),
        },
      },
    },
    async (request, reply) => {
      const key = request.headers['idempotency-key']
      const result = await books.create(
        request.body,
        key === undefined ? undefined : { caller: callerOf(request), key },
        request.principal,
      )
      switch (result.outcome) {
        case 'forbidden':
          throw writeForbidden(result)
        case 'in_flight':
          throw keyInFlight()
        case 'key_reused':
          throw invalidFields({ 'idempotency-key': 'Was already used with a different request body' })
        case 'created':
        case 'replayed':
          return created(reply, result.book, result.outcome === 'replayed')
      }
    },
  )

  app.get(
    '/:id',
    {
      config: { operation: OPERATIONS.getBook },
      schema: {
        tags: ['books'],
        params: BookParams,
        headers: IfNoneMatch,
        response: {
          200: jsonResponse(Book, 'The book', ETAG),
          304: emptyResponse('The ETag in If-None-Match is current', ETAG),
          ...problemResponses(400, 401, 403, bookNotFound, 429, 500, 503),
        },
      },
    },
    async (request, reply) => {
      const result = await books.get(request.params.id)
      if (result.outcome === 'not_found') throw bookNotFound()
      const { book, version } = result.book
      reply.header('etag', etagOf(version))
      const cached = parsePrecondition(request.headers['if-none-match'], { weak: true })
      if (cached !== undefined && matches(cached, version)) return reply.code(304).send(null)
      return book
    },
  )

  app.put(
    '/:id',
    {
      config: { operation: OPERATIONS.replaceBook },
      preValidation: [requireJsonBody, async (request) => trimInput(request.body)],
      schema: {
        tags: ['books'],
        params: BookParams,
        headers: IfMatch,
        body: BookReplacement,
        response: {
          200: jsonResponse(Book, 'The book as stored', ETAG),
          ...CHANGE_PROBLEMS,
        },
      },
    },
    async (request, reply) => {
      const expected = expectedVersions(request, requireIfMatch)
      const result = await books.replace(request.params.id, request.body, expected, request.principal)
      return changed(reply, result.outcome === 'replaced' ? { outcome: 'changed', book: result.book } : result)
    },
  )

  // JSON, under the media type of RFC 7396; parsed as every JSON body is (prototype poisoning refused).
  app.addContentTypeParser(MERGE_PATCH, { parseAs: 'string' }, app.getDefaultJsonParser('error', 'error'))
  app.patch(
    '/:id',
    {
      config: { operation: OPERATIONS.patchBook },
      preValidation: [requireMergePatch, async (request) => trimInput(request.body)],
      schema: {
        tags: ['books'],
        params: BookParams,
        headers: IfMatch,
        body: BookPatch,
        response: {
          200: jsonResponse(
            Book,
            'The book as stored (unchanged, with its ETag, when the patch changed nothing)',
            ETAG,
          ),
          ...CHANGE_PROBLEMS,
        },
      },
    },
    async (request, reply) => {
      const expected = expectedVersions(request, requireIfMatch)
      const result = await books.patch(request.params.id, request.body, expected, request.principal)
      return changed(reply, result.outcome === 'patched' ? { outcome: 'changed', book: result.book } : result)
    },
  )

  app.delete(
    '/:id',
    {
      config: { operation: OPERATIONS.deleteBook },
      schema: {
        tags: ['books'],
        params: BookParams,
        headers: IfMatch,
        response: {
          204: emptyResponse('The book was deleted'),
          ...problemResponses(400, 401, 403, bookNotFound, preconditionFailed, ifMatchRequired, 429, 500, 503),
        },
      },
    },
    async (request, reply) => {
      const expected = expectedVersions(request, requireIfMatch)
      const result = await books.delete(request.params.id, expected, request.principal)
      if (result.outcome === 'forbidden') throw writeForbidden(result)
      if (result.outcome === 'not_found') throw bookNotFound()
      if (result.outcome === 'version_mismatch') throw preconditionFailed()
      return reply.code(204).send(null)
    },
  )
}
