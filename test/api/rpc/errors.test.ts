// Every error case of the books API through both doors: each row of ERROR_TABLE is provoked over REST and over
// RPC (Connect binary on the HTTP port and native gRPC on GRPC_PORT), and both answers are checked against the
// row: the REST status and problem, the RPC code, message and details. The rows that need the PostgreSQL server (a
// key in flight, a database that stops) are provoked in test/system/rpc.
import assert from 'node:assert/strict'
import { after, before, it } from 'node:test'
import { BookStatus } from '../../../src/gen/books/v1/books_pb.js'
import { describe } from '../../helpers/describe.ts'
import {
  type BookClient,
  bearer,
  JWT_ENV,
  quickBackend,
  rpcFailure,
  signedToken,
  startRpcService,
} from '../../helpers/rpc-clients.ts'
import {
  assertRestAnswer,
  assertRpcAnswer,
  book,
  bookMessage,
  CODE_NAMES,
  type Door,
  ERROR_TABLE,
  openDoor,
  rowOf,
} from '../../helpers/rpc-errors.ts'
import { jsonRequest } from '../../helpers/service.ts'

const MISSING_ID = '01900000-0000-7000-8000-000000000000'

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
  // The door's book is the admin subject's; another writer may not touch it.
  'another caller’s book (not its creator, no books:admin)': {
    rest: async (door) =>
      door.service.fetch(`/v1/books/${door.bookId}`, {
        method: 'DELETE',
        headers: bearer(await signedToken('books:write', { subject: 'someone-else' })),
      }),
    rpc: async (client, door) =>
      client.deleteBook(
        { id: door.bookId },
        { headers: bearer(await signedToken('books:write', { subject: 'someone-else' })) },
      ),
  },
  'setting verified without books:verify': {
    rest: (door) =>
      door.service.fetch('/v1/books', jsonRequest('POST', { ...book, status: 'verified' }, door.auth.headers)),
    rpc: (client, door) => client.createBook({ book: { ...bookMessage, status: BookStatus.VERIFIED } }, door.auth),
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
})
