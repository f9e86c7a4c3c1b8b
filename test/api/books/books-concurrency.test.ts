// Optimistic concurrency: ETag, If-None-Match → 304, If-Match → 412, REQUIRE_IF_MATCH → 428, and the
// lost-update race, on both backends.
import assert from 'node:assert/strict'
import { after, before, it } from 'node:test'
import { describe } from '../../helpers/describe.ts'
import { BACKENDS, bodyOf, jsonRequest, skipReason, startService, type TestService } from '../../helpers/service.ts'

const dune = { title: 'Dune', author: 'Frank Herbert', published_date: '1965-08-01' }

for (const backend of BACKENDS) {
  describe(`conditional requests on ${backend}`, { skip: await skipReason(backend) }, () => {
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

    const create = async (on = service) => {
      const response = await on.fetch('/v1/books', jsonRequest('POST', dune))
      assert.equal(response.status, 201)
      return { id: (await bodyOf(response)).id as string, etag: response.headers.get('etag') as string }
    }
    const put = (id: string, headers: Record<string, string>, title = 'Dune Messiah', on = service) =>
      on.fetch(`/v1/books/${id}`, jsonRequest('PUT', { ...dune, title }, headers))

    it('when a book is created, read and updated, then each answer carries a strong ETag that changes with it', async () => {
      const { id, etag } = await create()
      assert.match(etag, /^"\d+"$/)
      assert.equal((await service.fetch(`/v1/books/${id}`)).headers.get('etag'), etag)
      const updated = await put(id, {})
      assert.notEqual(updated.headers.get('etag'), etag)
      assert.equal((await service.fetch(`/v1/books/${id}`)).headers.get('etag'), updated.headers.get('etag'))
    })

    it('when If-None-Match holds the current ETag (strong, weak or *), then 304 with no body', async () => {
      const { id, etag } = await create()
      for (const header of [etag, `W/${etag}`, `"999", ${etag}`, '*']) {
        const response = await service.fetch(`/v1/books/${id}`, { headers: { 'if-none-match': header } })
        assert.equal(response.status, 304, header)
        assert.equal(response.headers.get('etag'), etag)
        assert.equal(await response.text(), '')
      }
      const stale = await service.fetch(`/v1/books/${id}`, { headers: { 'if-none-match': '"999"' } })
      assert.equal(stale.status, 200)
    })

    it('when If-Match is stale or weak, then 412 and nothing changes', async () => {
      const { id, etag } = await create()
      for (const header of ['"999"', `W/${etag}`, 'garbage']) {
        const response = await put(id, { 'if-match': header })
        assert.equal(response.status, 412, header)
        assert.equal((await bodyOf(response)).detail, 'the book has changed since the ETag in If-Match; read it again')
      }
      const deleted = await service.fetch(`/v1/books/${id}`, { method: 'DELETE', headers: { 'if-match': '"999"' } })
      assert.equal(deleted.status, 412)
      const current = await service.fetch(`/v1/books/${id}`)
      assert.equal((await bodyOf(current)).title, 'Dune')
      assert.equal(current.headers.get('etag'), etag)
    })

    it('when If-Match is current or *, then the write happens', async () => {
      const { id, etag } = await create()
      const first = await put(id, { 'if-match': `"999", ${etag}` })
      assert.equal(first.status, 200)
      const second = await put(id, { 'if-match': '*' }, 'Children of Dune')
      assert.equal(second.status, 200)
      const removed = await service.fetch(`/v1/books/${id}`, {
        method: 'DELETE',
        headers: { 'if-match': second.headers.get('etag') as string },
      })
      assert.equal(removed.status, 204)
    })

    it('when If-Match names a book that does not exist, then 404', async () => {
      const response = await put('01900000-0000-7000-8000-000000000000', { 'if-match': '"1"' })
      assert.equal(response.status, 404)
    })

    it('when REQUIRE_IF_MATCH is on, then PUT and DELETE without If-Match answer 428, with it they work', async () => {
      const { id, etag } = await create(strict)
      const missing = await put(id, {}, 'Dune Messiah', strict)
      assert.equal(missing.status, 428)
      assert.equal((await bodyOf(missing)).detail, 'this request needs an If-Match header with the ETag of the book')
      assert.equal((await strict.fetch(`/v1/books/${id}`, { method: 'DELETE' })).status, 428)
      const done = await put(id, { 'if-match': etag }, 'Dune Messiah', strict)
      assert.equal(done.status, 200)
    })

    it('when 20 clients update with the same If-Match at once, then exactly one wins and 19 get 412', async () => {
      const { id, etag } = await create()
      const responses = await Promise.all(
        Array.from({ length: 20 }, (_, i) => put(id, { 'if-match': etag }, `Writer ${i}`)),
      )
      const statuses = responses.map((response) => response.status)
      assert.equal(statuses.filter((status) => status === 200).length, 1, String(statuses))
      assert.equal(statuses.filter((status) => status === 412).length, 19)
      const winner = responses[statuses.indexOf(200)] as Response
      const stored = await service.fetch(`/v1/books/${id}`)
      assert.equal((await bodyOf(stored)).title, (await bodyOf(winner)).title)
      assert.equal(stored.headers.get('etag'), winner.headers.get('etag'))
    })
  })
}
