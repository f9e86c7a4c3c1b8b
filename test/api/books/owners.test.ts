// Who may change which book (AUTH_MODE=jwt): the creator, books:admin, books:verify for the status only, and
// nobody else; every write (replace, patch, delete) over REST and over gRPC, on each backend. Also who may set a
// book verified, and the creator as REST, RPC and the events show it.
import assert from 'node:assert/strict'
import { after, before, it } from 'node:test'
import { create } from '@bufbuild/protobuf'
import { FieldMaskSchema } from '@bufbuild/protobuf/wkt'
import { Code } from '@connectrpc/connect'
import { BookInputSchema, BookStatus } from '../../../src/gen/books/v1/books_pb.js'
import { describe } from '../../helpers/describe.ts'
import {
  bearer,
  bookClient,
  fieldViolations,
  JWT_ENV,
  type RpcService,
  rpcFailure,
  signedToken,
  startRpcService,
} from '../../helpers/rpc-clients.ts'
import { BACKENDS, bodyOf, jsonRequest, skipReason } from '../../helpers/service.ts'

const book = { title: 'Kindred', author: 'Octavia E. Butler', published_date: '1979-06-01' }

/** Who calls: a subject and its scopes. alice creates the books of the matrix. */
const CALLERS = {
  owner: { subject: 'alice', scope: 'books:read books:write' },
  other: { subject: 'bob', scope: 'books:read books:write' },
  admin: { subject: 'carol', scope: 'books:read books:admin' },
  reader: { subject: 'dave', scope: 'books:read' },
  verifier: { subject: 'verifier-service', scope: 'books:read books:verify' },
} as const
type Caller = keyof typeof CALLERS

type Write = 'replace' | 'patch' | 'delete'
/** What each caller gets for each write of alice's pending book: allowed, or refused (403 / PERMISSION_DENIED). */
const MATRIX: Record<Caller, Record<Write, 'allowed' | 'refused'>> = {
  owner: { replace: 'allowed', patch: 'allowed', delete: 'allowed' },
  other: { replace: 'refused', patch: 'refused', delete: 'refused' },
  admin: { replace: 'allowed', patch: 'allowed', delete: 'allowed' },
  reader: { replace: 'refused', patch: 'refused', delete: 'refused' },
  // A change of the status only: allowed to a verifier. Anything more, or a delete, is not.
  verifier: { replace: 'refused', patch: 'allowed', delete: 'refused' },
}

const mask = (...paths: string[]) => create(FieldMaskSchema, { paths })

for (const backend of BACKENDS) {
  describe(`owners and verified books (${backend})`, { skip: await skipReason(backend) }, () => {
    let service: RpcService
    const tokens = {} as Record<Caller, string>
    before(async () => {
      service = await startRpcService(backend, JWT_ENV)
      for (const [caller, { subject, scope }] of Object.entries(CALLERS)) {
        tokens[caller as Caller] = await signedToken(scope, { subject })
      }
    })
    after(() => service?.close())

    const rest = (caller: Caller, method: string, path: string, body?: unknown, type = 'application/json') =>
      service.fetch(path, {
        method,
        headers: { ...bearer(tokens[caller]), ...(body === undefined ? {} : { 'content-type': type }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      })
    const rpc = (caller: Caller) => ({ client: bookClient(service, 'grpc'), headers: bearer(tokens[caller]) })
    const createAs = async (caller: Caller, input: Record<string, unknown> = book) => {
      const response = await rest(caller, 'POST', '/v1/books', input)
      assert.equal(response.status, 201)
      return bodyOf(response)
    }
    const stored = async (id: string) => bodyOf(await rest('admin', 'GET', `/v1/books/${id}`))

    // REST: each write as the caller would send it; a verifier's patch changes only the status.
    const restWrite = (caller: Caller, write: Write, id: string) => {
      switch (write) {
        case 'replace':
          return rest(caller, 'PUT', `/v1/books/${id}`, { ...book, title: 'Kindred (2nd ed.)' })
        case 'patch':
          return rest(
            caller,
            'PATCH',
            `/v1/books/${id}`,
            caller === 'verifier' ? { status: 'verified' } : { title: 'Kindred (2nd ed.)' },
            'application/merge-patch+json',
          )
        case 'delete':
          return rest(caller, 'DELETE', `/v1/books/${id}`)
      }
    }
    const rpcWrite = (caller: Caller, write: Write, id: string) => {
      const { client, headers } = rpc(caller)
      const input = { title: 'Kindred (2nd ed.)', author: book.author, publishedDate: book.published_date }
      switch (write) {
        case 'replace':
          return client.updateBook({ id, book: create(BookInputSchema, input) }, { headers })
        case 'patch':
          return caller === 'verifier'
            ? client.updateBook(
                { id, book: create(BookInputSchema, { status: BookStatus.VERIFIED }), updateMask: mask('status') },
                { headers },
              )
            : client.updateBook({ id, book: create(BookInputSchema, input), updateMask: mask('title') }, { headers })
        case 'delete':
          return client.deleteBook({ id }, { headers })
      }
    }

    for (const [caller, writes] of Object.entries(MATRIX) as [Caller, Record<Write, string>][]) {
      for (const [write, expected] of Object.entries(writes) as [Write, string][]) {
        it(`when the ${caller} sends a ${write} of alice's book over REST, then it is ${expected}`, async () => {
          const { id } = await createAs('owner')
          const response = await restWrite(caller, write, id)
          if (expected === 'allowed') {
            assert.equal(response.status, write === 'delete' ? 204 : 200)
            const after = await rest('admin', 'GET', `/v1/books/${id}`)
            if (write === 'delete') assert.equal(after.status, 404)
            else assert.equal((await bodyOf(after)).created_by, 'alice', 'the creator stays')
          } else {
            assert.equal(response.status, 403)
            const problem = await bodyOf(response)
            assert.equal(problem.status, 403)
            const unchanged = await stored(id)
            assert.equal(unchanged.title, book.title, 'nothing was written')
            assert.equal(unchanged.status, 'pending')
          }
        })

        it(`when the ${caller} sends a ${write} of alice's book over gRPC, then it is ${expected}`, async () => {
          const { id } = await createAs('owner')
          if (expected === 'allowed') {
            await rpcWrite(caller, write, id)
            const after = await rest('admin', 'GET', `/v1/books/${id}`)
            assert.equal(after.status, write === 'delete' ? 404 : 200)
          } else {
            const error = await rpcFailure(rpcWrite(caller, write, id))
            assert.equal(error.code, Code.PermissionDenied, error.message)
            const unchanged = await stored(id)
            assert.equal(unchanged.title, book.title, 'nothing was written')
            assert.equal(unchanged.status, 'pending')
          }
        })
      }
    }

    it('when alice creates a book, then REST, gRPC and its event name her as its creator', async () => {
      const created = await createAs('owner')
      assert.equal(created.created_by, 'alice')
      const { client, headers } = rpc('reader')
      const { book: message } = await client.getBook({ id: created.id }, { headers })
      assert.equal(message?.createdBy, 'alice')
      const [event] = await service.database.query<{ data: { created_by: string } }>(
        "SELECT data FROM outbox WHERE aggregate_id = $1 AND type LIKE '%created%'",
        [created.id],
      )
      assert.equal(event?.data.created_by, 'alice')
    })

    it('when a book has no creator, then only an admin changes it, and a verifier its status', async () => {
      const { id } = await createAs('owner')
      await service.database.query('UPDATE books SET created_by = NULL WHERE id = $1', [id])
      const byOwner = await restWrite('owner', 'replace', id)
      assert.equal(byOwner.status, 403)
      assert.match((await bodyOf(byOwner)).detail, /no recorded creator/)
      assert.equal((await restWrite('verifier', 'patch', id)).status, 200)
      assert.equal((await restWrite('admin', 'replace', id)).status, 200)
      assert.equal((await stored(id)).created_by, null, 'a write does not make the writer its creator')
    })

    it('when a writer creates a book verified, then 403 names status; with books:verify it is created', async () => {
      const refused = await rest('owner', 'POST', '/v1/books', { ...book, status: 'verified' })
      assert.equal(refused.status, 403)
      assert.match((await bodyOf(refused)).errors.status, /books:verify or books:admin/)
      const { client, headers } = rpc('owner')
      const error = await rpcFailure(
        client.createBook(
          { book: create(BookInputSchema, { ...rpcInput(), status: BookStatus.VERIFIED }) },
          { headers },
        ),
      )
      assert.equal(error.code, Code.PermissionDenied)
      assert.match(fieldViolations(error)?.['book.status'] ?? '', /books:verify or books:admin/)
      const verifying = await signedToken('books:write books:verify', { subject: 'alice' })
      const allowed = await service.fetch(
        '/v1/books',
        jsonRequest('POST', { ...book, status: 'verified' }, bearer(verifying)),
      )
      assert.equal(allowed.status, 201)
      assert.equal((await bodyOf(allowed)).status, 'verified')
    })

    it('when the owner sets their book verified, then 403; once a verifier has, the owner may set it back to pending', async () => {
      const { id } = await createAs('owner')
      const patch = (caller: Caller, change: object) =>
        rest(caller, 'PATCH', `/v1/books/${id}`, change, 'application/merge-patch+json')
      const refused = await patch('owner', { status: 'verified' })
      assert.equal(refused.status, 403)
      assert.deepEqual(Object.keys((await bodyOf(refused)).errors), ['status'])
      const refusedPut = await rest('owner', 'PUT', `/v1/books/${id}`, { ...book, status: 'verified' })
      assert.equal(refusedPut.status, 403)
      assert.equal((await patch('verifier', { status: 'verified' })).status, 200)
      const kept = await patch('owner', { title: 'Kindred (2nd ed.)', status: 'verified' })
      assert.equal(kept.status, 200, 'a verified book stays verified through its owner’s change')
      assert.equal((await patch('owner', { status: 'pending' })).status, 200)
      assert.equal((await stored(id)).status, 'pending')
    })

    it('when a verifier changes more than the status, then 403 and nothing is written', async () => {
      const { id } = await createAs('owner')
      const response = await rest(
        'verifier',
        'PATCH',
        `/v1/books/${id}`,
        { status: 'verified', title: 'Retitled' },
        'application/merge-patch+json',
      )
      assert.equal(response.status, 403)
      assert.deepEqual(await stored(id).then(({ title, status }) => ({ title, status })), {
        title: book.title,
        status: 'pending',
      })
    })

    it('when a create with an Idempotency-Key is replayed by a token without books:verify, then 403, not the answer', async () => {
      const key = `verified-${backend}`
      const input = { ...book, status: 'verified' }
      const verifying = await signedToken('books:write books:verify', { subject: 'alice' })
      const first = await service.fetch(
        '/v1/books',
        jsonRequest('POST', input, { ...bearer(verifying), 'idempotency-key': key }),
      )
      assert.equal(first.status, 201)
      const replay = await service.fetch(
        '/v1/books',
        jsonRequest('POST', input, { ...bearer(tokens.owner), 'idempotency-key': key }),
      )
      assert.equal(replay.status, 403)
      assert.equal(replay.headers.get('idempotent-replayed'), null)
    })
  })
}

function rpcInput() {
  return { title: book.title, author: book.author, publishedDate: book.published_date }
}

describe('without authentication', () => {
  let service: RpcService
  before(async () => {
    service = await startRpcService('embedded')
  })
  after(() => service?.close())

  it('when a book is created, then it has no creator and anyone changes it', async () => {
    const created = await service.fetch('/v1/books', jsonRequest('POST', { ...book, status: 'verified' }))
    assert.equal(created.status, 201)
    const body = await bodyOf(created)
    assert.equal(body.created_by, null)
    const { book: message } = await bookClient(service, 'grpc').getBook({ id: body.id })
    assert.equal(message?.createdBy, undefined)
    const deleted = await service.fetch(`/v1/books/${body.id}`, { method: 'DELETE' })
    assert.equal(deleted.status, 204)
  })
})
