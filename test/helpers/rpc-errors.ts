// The REST ⇄ RPC error table and the checks of an answer against its rows: shared by the rows provoked on a
// service alone (test/api/rpc) and those that need a database that can be stopped (test/system/rpc).
import assert from 'node:assert/strict'
import { Code, type ConnectError } from '@connectrpc/connect'
import { type BookClient, bearer, bookClient, fieldViolations, type RpcService } from './rpc-clients.ts'
import { bodyOf, type Json, jsonRequest } from './service.ts'

export interface ErrorCase {
  case: string
  /** The REST answer: status, problem detail, and the `errors` map when there is one; undefined: no REST form. */
  rest: { status: number; detail: string; errors?: Record<string, string> } | undefined
  /** The RPC answer: code, message, and the BadRequest field violations when there are any. */
  rpc: { code: Code; message: string; violations?: Record<string, string> }
}

const BOOK_ERRORS = {
  title: 'Must not be empty',
  author: 'Must contain only letters, spaces, dots, apostrophes and hyphens',
  published_date: 'Must be a valid date',
}

/** REST status ⇄ RPC code, case by case; the README's table is this one. */
export const ERROR_TABLE: ErrorCase[] = [
  {
    case: 'invalid book input',
    rest: { status: 422, detail: 'request validation failed', errors: BOOK_ERRORS },
    rpc: {
      code: Code.InvalidArgument,
      message: 'request validation failed',
      violations: Object.fromEntries(Object.entries(BOOK_ERRORS).map(([field, text]) => [`book.${field}`, text])),
    },
  },
  {
    case: 'invalid page size',
    rest: {
      status: 422,
      detail: 'request validation failed',
      errors: { pageSize: 'Must be an integer between 1 and 100' },
    },
    rpc: {
      code: Code.InvalidArgument,
      message: 'request validation failed',
      violations: { page_size: 'Must be an integer between 1 and 100' },
    },
  },
  {
    case: 'page token not from this list',
    rest: {
      status: 422,
      detail: 'request validation failed',
      errors: { cursor: 'Must be a cursor from a Link of this list' },
    },
    rpc: {
      code: Code.InvalidArgument,
      message: 'request validation failed',
      violations: { page_token: 'Must be a cursor from a Link of this list' },
    },
  },
  {
    case: 'malformed idempotency key',
    rest: {
      status: 422,
      detail: 'request validation failed',
      errors: { 'idempotency-key': 'Must be 1 to 255 visible ASCII characters' },
    },
    rpc: {
      code: Code.InvalidArgument,
      message: 'request validation failed',
      violations: { idempotency_key: 'Must be 1 to 255 visible ASCII characters' },
    },
  },
  {
    case: 'id not a UUID',
    rest: { status: 400, detail: 'invalid path parameter', errors: { id: 'Must be a UUID' } },
    rpc: { code: Code.InvalidArgument, message: 'request validation failed', violations: { id: 'Must be a UUID' } },
  },
  {
    case: 'no such book',
    rest: { status: 404, detail: 'book not found' },
    rpc: { code: Code.NotFound, message: 'book not found' },
  },
  {
    case: 'stale version',
    rest: { status: 412, detail: 'the book has changed since the ETag in If-Match; read it again' },
    rpc: { code: Code.FailedPrecondition, message: 'the book has changed since expected_version; read it again' },
  },
  {
    case: 'version required (REQUIRE_IF_MATCH=true), none sent',
    rest: { status: 428, detail: 'this request needs an If-Match header with the ETag of the book' },
    rpc: { code: Code.FailedPrecondition, message: 'this request needs expected_version, the version of the book' },
  },
  {
    case: 'idempotency key reused with other input',
    rest: {
      status: 422,
      detail: 'request validation failed',
      errors: { 'idempotency-key': 'Was already used with a different request body' },
    },
    rpc: { code: Code.AlreadyExists, message: 'the idempotency_key was already used with a different request' },
  },
  {
    case: 'idempotency key in flight',
    rest: { status: 409, detail: 'a request with this Idempotency-Key is still being processed; retry shortly' },
    rpc: { code: Code.Aborted, message: 'a request with this idempotency_key is still being processed; retry shortly' },
  },
  {
    case: 'no token',
    rest: { status: 401, detail: 'a bearer token is required' },
    rpc: { code: Code.Unauthenticated, message: 'a bearer token is required' },
  },
  {
    case: 'not a bearer token',
    rest: { status: 401, detail: 'the Authorization header must be "Bearer <JWT>"' },
    rpc: { code: Code.Unauthenticated, message: 'the authorization metadata must be "Bearer <JWT>"' },
  },
  {
    case: 'bad token',
    rest: { status: 401, detail: 'the bearer token is invalid or expired' },
    rpc: { code: Code.Unauthenticated, message: 'the bearer token is invalid or expired' },
  },
  {
    case: 'token without the scope',
    rest: { status: 403, detail: 'the token lacks the books:write or books:admin scope' },
    rpc: { code: Code.PermissionDenied, message: 'the token lacks the books:write or books:admin scope' },
  },
  {
    case: 'another caller’s book (not its creator, no books:admin)',
    rest: { status: 403, detail: 'only the book’s creator, or a caller with books:admin, may change or delete it' },
    rpc: {
      code: Code.PermissionDenied,
      message: 'only the book’s creator, or a caller with books:admin, may change or delete it',
    },
  },
  {
    case: 'setting verified without books:verify',
    rest: {
      status: 403,
      detail: 'only a caller with books:verify or books:admin may set a book verified',
      errors: { status: 'Only a caller with books:verify or books:admin may set it to verified' },
    },
    rpc: {
      code: Code.PermissionDenied,
      message: 'only a caller with books:verify or books:admin may set a book verified',
      violations: { 'book.status': 'Only a caller with books:verify or books:admin may set it to verified' },
    },
  },
  {
    case: 'rate limit (RATE_LIMIT_MAX=3, REST and RPC in one budget)',
    rest: { status: 429, detail: 'rate limit of 3 requests per 1 minute exceeded' },
    rpc: { code: Code.ResourceExhausted, message: 'rate limit of 3 requests per 1 minute exceeded' },
  },
  {
    case: 'database unavailable',
    rest: { status: 503, detail: 'the database is unavailable; try again later' },
    rpc: { code: Code.Unavailable, message: 'the database is unavailable; try again later' },
  },
  {
    case: 'deadline passed',
    rest: undefined,
    rpc: { code: Code.DeadlineExceeded, message: 'the operation timed out' },
  },
]

export const CODE_NAMES: Partial<Record<Code, string>> = {
  [Code.InvalidArgument]: 'INVALID_ARGUMENT',
  [Code.NotFound]: 'NOT_FOUND',
  [Code.FailedPrecondition]: 'FAILED_PRECONDITION',
  [Code.AlreadyExists]: 'ALREADY_EXISTS',
  [Code.Aborted]: 'ABORTED',
  [Code.Unauthenticated]: 'UNAUTHENTICATED',
  [Code.PermissionDenied]: 'PERMISSION_DENIED',
  [Code.ResourceExhausted]: 'RESOURCE_EXHAUSTED',
  [Code.Unavailable]: 'UNAVAILABLE',
  [Code.DeadlineExceeded]: 'DEADLINE_EXCEEDED',
}

export const rowOf = (name: string): ErrorCase => {
  const row = ERROR_TABLE.find((candidate) => candidate.case === name)
  assert.ok(row, `a row for ${name}`)
  return row
}

export async function assertRestAnswer(row: ErrorCase, response: Response): Promise<Json> {
  assert.ok(row.rest, `${row.case} has a REST form`)
  assert.equal(response.status, row.rest.status, row.case)
  assert.match(response.headers.get('content-type') ?? '', /^application\/problem\+json/)
  const problem = await bodyOf(response)
  assert.equal(problem.detail, row.rest.detail, row.case)
  assert.deepEqual(problem.errors, row.rest.errors, `${row.case}: the errors map`)
  return problem
}

export function assertRpcAnswer(row: ErrorCase, error: ConnectError, door: string): void {
  assert.equal(Code[error.code], Code[row.rpc.code], `${row.case} over ${door}`)
  assert.equal(error.rawMessage, row.rpc.message, `${row.case} over ${door}`)
  assert.deepEqual(fieldViolations(error), row.rpc.violations, `${row.case} over ${door}: the field violations`)
}

export const book = { title: 'Kindred', author: 'Octavia E. Butler', published_date: '1979-06-01' }
export const bookMessage = { title: book.title, author: book.author, publishedDate: book.published_date }

/** One service and what the rows need of it: a client per RPC door, a full token, a book at version 2. */
export interface Door {
  service: RpcService
  clients: { connect: BookClient; grpc: BookClient }
  /** Call options with a token of both scopes (empty without AUTH_MODE=jwt). */
  auth: { headers: Record<string, string> }
  bookId: string
}

export async function openDoor(service: RpcService, token: string | undefined): Promise<Door> {
  const headers = token === undefined ? {} : bearer(token)
  const posted = await service.fetch('/v1/books', jsonRequest('POST', book, headers))
  assert.equal(posted.status, 201)
  const { id } = await bodyOf(posted)
  const put = await service.fetch(`/v1/books/${id}`, jsonRequest('PUT', book, { ...headers, 'if-match': '"1"' }))
  assert.equal(put.status, 200)
  return {
    service,
    clients: { connect: bookClient(service, 'connect-binary'), grpc: bookClient(service, 'grpc') },
    auth: { headers },
    bookId: id,
  }
}
