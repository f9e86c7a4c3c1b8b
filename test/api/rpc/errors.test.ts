// Every error case of the books API through both doors: each row of ERROR_TABLE is provoked over REST and over
// RPC (Connect binary on the HTTP port and native gRPC on GRPC_PORT), and both answers are checked against the
// row: the REST status and problem, the RPC code, message and details.
import assert from 'node:assert/strict'
import { after, before, it } from 'node:test'
import { Code, type ConnectError } from '@connectrpc/connect'
import { describe } from '../../helpers/describe.ts'
import { bodyOf, type Json, jsonRequest } from '../../helpers/service.ts'
import {
  startThrowawayPostgres,
  type ThrowawayPostgres,
  throwawayPostgresMissing,
} from '../../helpers/throwaway-postgres.ts'
import {
  type BookClient,
  bearer,
  bookClient,
  fieldViolations,
  JWT_ENV,
  quickBackend,
  type RpcService,
  retryDelayMs,
  rpcFailure,
  signedToken,
  startRpcService,
} from '../../helpers/rpc-clients.ts'

interface ErrorCase {
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
const ERROR_TABLE: ErrorCase[] = [
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
    rest: { status: 403, detail: 'the token lacks the books:write scope' },
    rpc: { code: Code.PermissionDenied, message: 'the token lacks the books:write scope' },
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

const CODE_NAMES: Partial<Record<Code, string>> = {
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

const rowOf = (name: string): ErrorCase => {
  const row = ERROR_TABLE.find((candidate) => candidate.case === name)
  assert.ok(row, `a row for ${name}`)
  return row
}

async function assertRestAnswer(row: ErrorCase, response: Response): Promise<Json> {
  assert.ok(row.rest, `${row.case} has a REST form`)
  assert.equal(response.status, row.rest.status, row.case)
  assert.match(response.headers.get('content-type') ?? '', /^application\/problem\+json/)
  const problem = await bodyOf(response)
  assert.equal(problem.detail, row.rest.detail, row.case)
  assert.deepEqual(problem.errors, row.rest.errors, `${row.case}: the errors map`)
  return problem
}

function assertRpcAnswer(row: ErrorCase, error: ConnectError, door: string): void {
  assert.equal(Code[error.code], Code[row.rpc.code], `${row.case} over ${door}`)
  assert.equal(error.rawMessage, row.rpc.message, `${row.case} over ${door}`)
  assert.deepEqual(fieldViolations(error), row.rpc.violations, `${row.case} over ${door}: the field violations`)
}

const book = { title: 'Kindred', author: 'Octavia E. Butler', published_date: '1979-06-01' }
const bookMessage = { title: book.title, author: book.author, publishedDate: book.published_date }
const MISSING_ID = '01900000-0000-7000-8000-000000000000'

/** One service and what the rows need of it: a client per RPC door, a full token, a book at version 2. */
interface Door {
  service: RpcService
  clients: { connect: BookClient; grpc: BookClient }
  /** Call options with a token of both scopes (empty without AUTH_MODE=jwt). */
  auth: { headers: Record<string, string> }
  bookId: string
}

async function openDoor(service: RpcService, token: string | undefined): Promise<Door> {
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

interface Provocation {
  rest(door: Door): Promise<Response>
  rpc(client: BookClient, door: Door): Promise<unknown>
}

// How each single-request row is provoked, by either door, on the service with JWT authentication.
const PROVOKE: Record<string, Provocation> = {
  'invalid book input': {
    rest: (door) =>
      door.service.fetch(
        '/v1/books',
        jsonRequest('POST', { title: '  ', author: '1984', published_date: '2023-02-30' }, door.auth.headers),
      ),
    rpc: (client, door) =>
      client.createBook({ book: { title: '  ', author: '1984', publishedDate: '2023-02-30' } }, door.auth),
  },
  'invalid page size': {
    rest: (door) => door.service.fetch('/v1/books?pageSize=500', door.auth),
    rpc: (client, door) => client.listBooks({ pageSize: 500 }, door.auth),
  },
  'page token not from this list': {
    rest: (door) => door.service.fetch('/v1/books?cursor=not-a-cursor', door.auth),
    rpc: (client, door) => client.listBooks({ pageToken: 'not-a-cursor' }, door.auth),
  },
  'malformed idempotency key': {
    rest: (door) =>
      door.service.fetch('/v1/books', jsonRequest('POST', book, { ...door.auth.headers, 'idempotency-key': 'a b' })),
    rpc: (client, door) => client.createBook({ book: bookMessage, idempotencyKey: 'a b' }, door.auth),
  },
  'id not a UUID': {
    rest: (door) => door.service.fetch('/v1/books/not-a-uuid', door.auth),
    rpc: (client, door) => client.getBook({ id: 'not-a-uuid' }, door.auth),
  },
  'no such book': {
    rest: (door) => door.service.fetch(`/v1/books/${MISSING_ID}`, door.auth),
    rpc: (client, door) => client.getBook({ id: MISSING_ID }, door.auth),
  },
  'stale version': {
    rest: (door) =>
      door.service.fetch(
        `/v1/books/${door.bookId}`,
        jsonRequest('PUT', book, { ...door.auth.headers, 'if-match': '"1"' }),
      ),
    rpc: (client, door) => client.updateBook({ id: door.bookId, book: bookMessage, expectedVersion: 1 }, door.auth),
  },
  'idempotency key reused with other input': {
    rest: async (door) => {
      const headers = { ...door.auth.headers, 'idempotency-key': 'reused-over-rest' }
      assert.equal((await door.service.fetch('/v1/books', jsonRequest('POST', book, headers))).status, 201)
      return door.service.fetch('/v1/books', jsonRequest('POST', { ...book, title: 'Wild Seed' }, headers))
    },
    rpc: async (client, door) => {
      // Each door its own key: a key is the caller's, and both doors see the same caller.
      const idempotencyKey = `reused-over-${client === door.clients.grpc ? 'grpc' : 'connect'}`
      await client.createBook({ book: bookMessage, idempotencyKey }, door.auth)
      return client.createBook({ book: { ...bookMessage, title: 'Wild Seed' }, idempotencyKey }, door.auth)
    },
  },
  'no token': {
    rest: (door) => door.service.fetch('/v1/books'),
    rpc: (client) => client.listBooks({}),
  },
  'not a bearer token': {
    rest: (door) => door.service.fetch('/v1/books', { headers: { authorization: 'Basic dGVzdGVyOnNlY3JldA==' } }),
    rpc: (client) => client.listBooks({}, { headers: { authorization: 'Basic dGVzdGVyOnNlY3JldA==' } }),
  },
  'bad token': {
    rest: async (door) =>
      door.service.fetch('/v1/books', { headers: bearer(await signedToken('books:read', { signer: 'stranger' })) }),
    rpc: async (client) =>
      client.listBooks({}, { headers: bearer(await signedToken('books:read', { signer: 'stranger' })) }),
  },
  'token without the scope': {
    rest: async (door) =>
      door.service.fetch('/v1/books', jsonRequest('POST', book, bearer(await signedToken('books:read')))),
    rpc: async (client) =>
      client.createBook({ book: bookMessage }, { headers: bearer(await signedToken('books:read')) }),
  },
}

describe('REST ⇄ RPC errors', () => {
  it('the table covers every row once (printed below)', (t) => {
    const lines = [
      '| case | REST | RPC |',
      '|---|---|---|',
      ...ERROR_TABLE.map(
        (row) =>
          `| ${row.case} | ${row.rest === undefined ? '—' : `${row.rest.status} ${row.rest.detail}`} | ${CODE_NAMES[row.rpc.code]} ${row.rpc.message} |`,
      ),
    ]
    for (const line of lines) t.diagnostic(line)
    assert.equal(new Set(ERROR_TABLE.map((row) => row.case)).size, ERROR_TABLE.length)
    for (const row of ERROR_TABLE) assert.ok(CODE_NAMES[row.rpc.code], `${row.case} names a code this test knows`)
  })

  describe('on a service with JWT authentication', async () => {
    let door: Door
    before(async () => {
      const service = await startRpcService(await quickBackend(), JWT_ENV)
      door = await openDoor(service, await signedToken('books:read books:write', { subject: 'admin' }))
    })
    after(() => door?.service.close())

    for (const [name, provoke] of Object.entries(PROVOKE)) {
      const row = rowOf(name)
      it(`when ${name}, then REST answers ${row.rest?.status} and RPC ${CODE_NAMES[row.rpc.code]} by both RPC doors`, async () => {
        await assertRestAnswer(row, await provoke.rest(door))
        for (const [label, client] of Object.entries(door.clients)) {
          assertRpcAnswer(row, await rpcFailure(provoke.rpc(client, door)), label)
        }
      })
    }

    it('when 20 creates with one key race, then one is created and the others replay it or are told it is in flight, by either door', async (t) => {
      const row = rowOf('idempotency key in flight')
      const conflicts = { rest: 0, rpc: 0 }
      // A race may be won before any rival arrives: each door gets a few keys to see one in flight.
      for (let attempt = 0; attempt < 5 && (conflicts.rest === 0 || conflicts.rpc === 0); attempt++) {
        const key = `race-${attempt}`
        const headers = { ...door.auth.headers, 'idempotency-key': `${key}-rest` }
        const responses = await Promise.all(
          Array.from({ length: 20 }, () => door.service.fetch('/v1/books', jsonRequest('POST', book, headers))),
        )
        const created = responses.filter((r) => r.status === 201 && r.headers.get('idempotent-replayed') === null)
        assert.equal(created.length, 1, responses.map((response) => response.status).join())
        for (const response of responses.filter((candidate) => candidate.status !== 201)) {
          await assertRestAnswer(row, response)
          assert.equal(response.headers.get('retry-after'), '1')
          conflicts.rest++
        }
        for (const response of responses) if (!response.bodyUsed) await response.arrayBuffer()

        const answers = await Promise.allSettled(
          Array.from({ length: 20 }, () =>
            door.clients.grpc.createBook({ book: bookMessage, idempotencyKey: `${key}-rpc` }, door.auth),
          ),
        )
        const fulfilled = answers.flatMap((answer) => (answer.status === 'fulfilled' ? [answer.value] : []))
        assert.equal(fulfilled.filter((answer) => !answer.replayed).length, 1, 'one created')
        assert.equal(new Set(fulfilled.map((answer) => answer.book?.id)).size, 1, 'every replay is that book')
        for (const answer of answers) {
          if (answer.status === 'rejected') {
            assertRpcAnswer(row, answer.reason, 'grpc')
            conflicts.rpc++
          }
        }
      }
      t.diagnostic(`in flight: ${conflicts.rest} REST answers 409, ${conflicts.rpc} RPC answers ABORTED`)
      assert.ok(conflicts.rest > 0, 'a REST create saw the key in flight')
      assert.ok(conflicts.rpc > 0, 'an RPC create saw the key in flight')
    })

    it('when a ListBooks call has a deadline of 1 ms, then both RPC doors answer DEADLINE_EXCEEDED', async () => {
      const row = rowOf('deadline passed')
      for (const [label, client] of Object.entries(door.clients)) {
        assertRpcAnswer(row, await rpcFailure(client.listBooks({}, { ...door.auth, timeoutMs: 1 })), label)
        // The same call without a deadline is served: the deadline is what failed it.
        assert.ok((await client.listBooks({}, door.auth)).books.length > 0)
      }
    })
  })

  describe('on a service with RATE_LIMIT_MAX=3', () => {
    let door: Door
    before(async () => {
      door = await openDoor(await startRpcService(await quickBackend(), { RATE_LIMIT_MAX: '3' }), undefined)
    })
    after(() => door?.service.close())

    it('when 2 REST requests and 1 RPC call have used the budget, then the next is refused by every door', async () => {
      const row = rowOf('rate limit (RATE_LIMIT_MAX=3, REST and RPC in one budget)')
      // Opening the door spent 2 REST requests (POST, PUT): this RPC call is the third and last of the budget.
      assert.ok((await door.clients.connect.getBook({ id: door.bookId })).book)
      const refused = await door.service.fetch('/v1/books')
      await assertRestAnswer(row, refused)
      assert.ok(Number(refused.headers.get('retry-after')) >= 1)
      for (const [label, client] of Object.entries(door.clients)) {
        const error = await rpcFailure(client.getBook({ id: door.bookId }))
        assertRpcAnswer(row, error, label)
        assert.equal(error.metadata.get('ratelimit-limit'), '3')
        assert.ok(Number(error.metadata.get('retry-after')) >= 1)
      }
    })
  })

  describe('on a database that can be stopped, with REQUIRE_IF_MATCH=true', {
    skip: throwawayPostgresMissing(),
  }, () => {
    let database: ThrowawayPostgres
    let door: Door
    before(async () => {
      database = await startThrowawayPostgres()
      const service = await startRpcService('postgres', {
        DATABASE_URL: database.url,
        DB_CONNECT_TIMEOUT: '1s',
        DB_QUERY_TIMEOUT: '2s',
        REQUIRE_IF_MATCH: 'true',
      })
      door = await openDoor(service, undefined)
    })
    after(async () => {
      await door?.service.close()
      await database?.destroy()
    })

    it('when a write sends no version, then REST answers 428 and RPC FAILED_PRECONDITION, for replace and delete', async () => {
      const row = rowOf('version required (REQUIRE_IF_MATCH=true), none sent')
      const path = `/v1/books/${door.bookId}`
      await assertRestAnswer(row, await door.service.fetch(path, jsonRequest('PUT', book)))
      await assertRestAnswer(row, await door.service.fetch(path, { method: 'DELETE' }))
      for (const [label, client] of Object.entries(door.clients)) {
        assertRpcAnswer(row, await rpcFailure(client.updateBook({ id: door.bookId, book: bookMessage })), label)
        assertRpcAnswer(row, await rpcFailure(client.deleteBook({ id: door.bookId })), label)
      }
      // With the version, the same write goes through: the missing version was what failed it.
      const { book: replaced } = await door.clients.grpc.updateBook({
        id: door.bookId,
        book: bookMessage,
        expectedVersion: 2,
      })
      assert.equal(replaced?.version, 3)
    })

    it('when the database is down, then REST answers 503 with Retry-After and RPC UNAVAILABLE with RetryInfo', async () => {
      const row = rowOf('database unavailable')
      await database.crash()
      const response = await door.service.fetch(`/v1/books/${door.bookId}`)
      await assertRestAnswer(row, response)
      assert.match(response.headers.get('retry-after') ?? '', /^[1-9]\d*$/)
      for (const [label, client] of Object.entries(door.clients)) {
        const error = await rpcFailure(client.getBook({ id: door.bookId }))
        assertRpcAnswer(row, error, label)
        const delay = retryDelayMs(error)
        assert.ok(delay !== undefined && delay > 0, `${label}: a google.rpc.RetryInfo with a delay`)
        assert.equal(error.metadata.get('retry-after'), String(delay / 1000), `${label}: the metadata says the same`)
      }
    })

    it('when the database is down, then RPC RetryInfo advises the same wait as REST Retry-After', {}, async () => {
      const response = await door.service.fetch(`/v1/books/${door.bookId}`)
      assert.equal(response.status, 503)
      await response.arrayBuffer()
      const error = await rpcFailure(door.clients.grpc.getBook({ id: door.bookId }))
      assert.equal(error.code, Code.Unavailable)
      assert.equal(retryDelayMs(error), Number(response.headers.get('retry-after')) * 1000)
    })
  })
})
