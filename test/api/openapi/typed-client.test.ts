// A client nobody wrote by hand: types generated from openapi.yaml, calls made by openapi-fetch.
import assert from 'node:assert/strict'
import { after, before, it } from 'node:test'
import createClient from 'openapi-fetch'
import type { paths } from '../../generated/openapi.ts'
import { describe } from '../../helpers/describe.ts'
import { startService, type TestService } from '../../helpers/service.ts'

describe('a generated TypeScript client', () => {
  let service: TestService
  before(async () => {
    service = await startService('embedded')
  })
  after(() => service?.close())

  it('when it creates, reads, updates, lists and deletes a book, then every call succeeds as typed', async () => {
    const client = createClient<paths>({ baseUrl: service.baseUrl })

    const created = await client.POST('/v1/books', {
      body: { title: 'Solaris', author: 'Stanisław Lem', published_date: '1961-06-01' },
    })
    assert.equal(created.response.status, 201)
    assert.ok(created.data)
    const id = created.data.id
    assert.equal(created.response.headers.get('location'), `/v1/books/${id}`)

    const read = await client.GET('/v1/books/{id}', { params: { path: { id } } })
    assert.deepEqual(read.data, created.data)

    const updated = await client.PUT('/v1/books/{id}', {
      params: { path: { id } },
      body: { title: 'Solaris', author: 'Stanisław Lem', published_date: '1961-06-01', status: 'verified' },
    })
    assert.equal(updated.data?.status, 'verified')

    const listed = await client.GET('/v1/books', {
      params: { query: { author: 'stanisław lem', pageSize: 5 }, header: { prefer: 'count=exact' } },
    })
    assert.deepEqual(
      listed.data?.map((book) => book.id),
      [id],
    )
    assert.equal(listed.response.headers.get('x-total-count'), '1')
    const forged = await client.GET('/v1/books', { params: { query: { cursor: 'bm90IGEgY3Vyc29y' } } })
    assert.equal(forged.response.status, 422)
    assert.deepEqual(forged.error?.errors, { cursor: 'Must be a cursor from a Link of this list' })

    const invalid = await client.POST('/v1/books', {
      body: { title: 'Solaris', author: 'Stanisław Lem', published_date: '1961-02-30' },
    })
    assert.equal(invalid.response.status, 422)
    assert.deepEqual(invalid.error?.errors, { published_date: 'Must be a valid date' })

    const deleted = await client.DELETE('/v1/books/{id}', { params: { path: { id } } })
    assert.equal(deleted.response.status, 204)
    const gone = await client.GET('/v1/books/{id}', { params: { path: { id } } })
    assert.equal(gone.error?.detail, 'book not found')
  })
})
