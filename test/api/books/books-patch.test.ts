// PATCH /v1/books/{id}: a JSON Merge Patch (RFC 7396) that changes the members it names, clears optional ones with
// null, is validated as a whole, refuses read-only members, writes nothing when it changes nothing, and follows the
// same If-Match rules as PUT; on both backends.
import assert from 'node:assert/strict'
import { after, before, it } from 'node:test'
import { describe } from '../../helpers/describe.ts'
import { BACKENDS, bodyOf, type Json, skipReason, startService, type TestService } from '../../helpers/service.ts'

const dune = {
  title: 'Dune',
  author: 'Frank Herbert',
  published_date: '1965-08-01',
  description: 'Spice and sand',
  image_url: 'https://covers.example.org/dune.jpg',
}
const MERGE_PATCH = 'application/merge-patch+json'

for (const backend of BACKENDS) {
  describe(`PATCH a book on ${backend}`, { skip: await skipReason(backend) }, () => {
    let service: TestService
    let strict: TestService
    before(async () => {
      service = await startService(backend)
      strict = await startService(backend, { REQUIRE_IF_MATCH: 'true' })
    })
    after(async () => {
      await service?.close()
      await strict?.close()
    })

    const create = async (on = service): Promise<Json> => {
      const response = await on.fetch('/v1/books', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(dune),
      })
      assert.equal(response.status, 201)
      return bodyOf(response)
    }
    const patch = (id: string, body: unknown, headers: Record<string, string> = {}, on = service) =>
      on.fetch(`/v1/books/${id}`, {
        method: 'PATCH',
        headers: { 'content-type': MERGE_PATCH, ...headers },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      })
    const eventsOf = async (id: string) =>
      service.database.query<{ type: string }>('SELECT type FROM outbox WHERE aggregate_id = $1 ORDER BY position', [
        id,
      ])

    it('when a patch names one member, then only it changes, the ETag moves on and an updated event is recorded', async () => {
      const book = await create()
      const response = await patch(book.id, { title: 'Dune Messiah' })
      assert.equal(response.status, 200)
      assert.equal(response.headers.get('etag'), '"2"')
      const patched = await bodyOf(response)
      assert.deepEqual(
        { ...patched, updated_at: undefined },
        { ...book, title: 'Dune Messiah', updated_at: undefined },
        'every other member as it was',
      )
      assert.ok(patched.updated_at > book.updated_at)
      assert.deepEqual(await bodyOf(await service.fetch(`/v1/books/${book.id}`)), patched, 'as stored')
      assert.deepEqual(
        (await eventsOf(book.id)).map(({ type }) => type),
        ['dev.myapp.book.created.v1', 'dev.myapp.book.updated.v1'],
      )
    })

    it('when a patch sets an optional member to null, then it is cleared; members are trimmed as on create', async () => {
      const book = await create()
      const patched = await bodyOf(await patch(book.id, { description: null, author: '  F. Herbert ' }))
      assert.equal(patched.description, null)
      assert.equal(patched.author, 'F. Herbert')
      assert.equal(patched.image_url, dune.image_url)
    })

    it('when a patch is empty, or sets what is already there, then nothing is written and the book comes back', async () => {
      const book = await create()
      for (const body of [{}, { title: 'Dune', status: 'pending' }]) {
        const response = await patch(book.id, body)
        assert.equal(response.status, 200, JSON.stringify(body))
        assert.equal(response.headers.get('etag'), '"1"', 'the version did not move')
        assert.deepEqual(await bodyOf(response), book)
      }
      assert.deepEqual(
        (await eventsOf(book.id)).map(({ type }) => type),
        ['dev.myapp.book.created.v1'],
        'no event for a patch that changed nothing',
      )
    })

    it('when a patch names a read-only member, an unknown one, or leaves the book invalid, then 422 per field', async () => {
      const book = await create()
      const cases: [unknown, Record<string, string>][] = [
        [{ id: book.id, title: 'Other' }, { id: 'Is read-only: a patch cannot change it' }],
        [{ created_at: book.created_at }, { created_at: 'Is read-only: a patch cannot change it' }],
        [{ isbn: '978-0' }, { isbn: 'Unknown field' }],
        [{ title: null }, { title: 'Must be a string' }],
        [{ title: '' }, { title: 'Must not be empty' }],
        [{ published_date: '1965-02-30' }, { published_date: 'Must be a valid date' }],
        [{ status: 'lost' }, { status: 'Must be one of pending, verified' }],
      ]
      for (const [body, errors] of cases) {
        const response = await patch(book.id, body)
        assert.equal(response.status, 422, JSON.stringify(body))
        assert.deepEqual((await bodyOf(response)).errors, errors, JSON.stringify(body))
      }
      assert.deepEqual(await bodyOf(await service.fetch(`/v1/books/${book.id}`)), book, 'nothing changed')
    })

    it('when the body is not a merge patch, then 415; an array or text, then 422 or 400; a missing book, then 404', async () => {
      const book = await create()
      const asJson = await service.fetch(`/v1/books/${book.id}`, {
        method: 'PATCH',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ title: 'Other' }),
      })
      assert.equal(asJson.status, 415)
      assert.match((await bodyOf(asJson)).detail, /application\/merge-patch\+json/)
      assert.equal((await service.fetch(`/v1/books/${book.id}`, { method: 'PATCH' })).status, 415)
      assert.equal((await patch(book.id, '[1]')).status, 422)
      assert.equal((await patch(book.id, '{"title":')).status, 400)
      assert.equal((await patch('01900000-0000-7000-8000-000000000000', { title: 'x' })).status, 404)
    })

    it('when If-Match is stale, then 412; with REQUIRE_IF_MATCH and none, then 428; with the current one, then 200', async () => {
      const book = await create()
      assert.equal((await patch(book.id, { title: 'A' }, { 'if-match': '"1"' })).status, 200)
      assert.equal((await patch(book.id, { title: 'B' }, { 'if-match': '"1"' })).status, 412)
      const guarded = await create(strict)
      assert.equal((await patch(guarded.id, { title: 'C' }, {}, strict)).status, 428)
      assert.equal((await patch(guarded.id, { title: 'C' }, { 'if-match': '"1"' }, strict)).status, 200)
    })

    it('when patches of different members race, then each is applied: no update is lost', async () => {
      const book = await create()
      const patches = Array.from({ length: 10 }, (_, n) =>
        patch(book.id, n % 2 === 0 ? { title: `Title ${n}` } : { description: `Description ${n}` }),
      )
      const statuses = await Promise.all(patches.map(async (response) => (await response).status))
      assert.deepEqual(statuses, Array(10).fill(200))
      const stored = await bodyOf(await service.fetch(`/v1/books/${book.id}`))
      const response = await service.fetch(`/v1/books/${book.id}`)
      assert.equal(response.headers.get('etag'), '"11"', 'ten writes, one after another')
      assert.match(stored.title, /^Title \d$/)
      assert.match(stored.description, /^Description \d$/)
    })
  })
}
