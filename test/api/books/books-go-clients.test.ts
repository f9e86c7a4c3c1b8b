// Clients of the Go service send back the book they read: PUT takes the read-only members and ignores them.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { after, before, it } from 'node:test'
import createClient from 'openapi-fetch'
import { parse } from 'yaml'
import type { paths } from '../../generated/openapi.ts'
import { assertConformsToContract } from '../../helpers/contract.ts'
import { describe } from '../../helpers/describe.ts'
import {
  BACKENDS,
  bodyOf,
  type Json,
  jsonRequest,
  skipReason,
  startService,
  type TestService,
} from '../../helpers/service.ts'

const MISSING_ID = '01900000-0000-7000-8000-000000000000'
const ID_MISMATCH = { id: 'Must match the id in the path' }

const hobbit = {
  title: 'The Hobbit',
  author: 'J. R. R. Tolkien',
  published_date: '1937-09-21',
  status: 'verified',
  image_url: 'https://covers.example.org/hobbit.jpg',
  description: 'There and back again.',
}

const READ_ONLY = ['id', 'created_by', 'created_at', 'updated_at']

describe('the read-only members in openapi.yaml', () => {
  type Schema = { properties: Record<string, { readOnly?: boolean }>; required?: string[] }
  const document = parse(readFileSync(new URL('../../../openapi.yaml', import.meta.url), 'utf8'))
  const schemas: Record<string, Schema> = document.components.schemas
  const requestSchema = (path: string, method: string): Schema => {
    const { schema } = document.paths[path][method].requestBody.content['application/json']
    return schema.$ref === undefined ? schema : (schemas[schema.$ref.split('/').pop()] as Schema)
  }

  it('when a Book is described, then id, created_by, created_at and updated_at are readOnly and nothing else is', () => {
    const book = schemas.Book as Schema
    assert.deepEqual(
      Object.keys(book.properties).filter((name) => book.properties[name]?.readOnly === true),
      READ_ONLY,
    )
  })

  it('when the PUT body is described, then it carries them as optional and readOnly', () => {
    const body = requestSchema('/v1/books/{id}', 'put')
    for (const name of READ_ONLY) assert.equal(body.properties[name]?.readOnly, true, name)
    assert.deepEqual(body.required, ['title', 'published_date'])
  })

  it('when the POST body is described, then it does not carry them', () => {
    const body = requestSchema('/v1/books', 'post')
    for (const name of READ_ONLY) assert.equal(body.properties[name], undefined, name)
  })
})

for (const backend of BACKENDS) {
  describe(`books for Go clients on ${backend}`, { skip: await skipReason(backend) }, () => {
    let service: TestService
    before(async () => {
      service = await startService(backend)
    })
    after(() => service?.close())

    const create = async (book: Record<string, unknown> = hobbit): Promise<Json> => {
      const response = await service.fetch('/v1/books', jsonRequest('POST', book))
      assert.equal(response.status, 201, await response.clone().text())
      return bodyOf(response)
    }
    const read = async (id: string): Promise<{ book: Json; etag: string | null }> => {
      const response = await service.fetch(`/v1/books/${id}`)
      assert.equal(response.status, 200)
      return { book: await bodyOf(response), etag: response.headers.get('etag') }
    }
    const put = (path: string, body: unknown, headers: Record<string, string> = {}) =>
      service.fetch(`/v1/books/${path}`, jsonRequest('PUT', body, headers))
    const errorsOf = async (response: Response) => {
      assert.equal(response.status, 422)
      assert.match(response.headers.get('content-type') ?? '', /^application\/problem\+json/)
      return (await bodyOf(response)).errors as Record<string, string>
    }

    it('when the body a GET returned is put back with one field edited, then 200 applies the edit and only updated_at moves', async () => {
      const { id } = await create()
      const { book, etag } = await read(id)
      const response = await put(
        id,
        { ...book, title: 'The Hobbit, or There and Back Again' },
        { 'if-match': etag ?? '' },
      )
      assert.equal(response.status, 200, await response.clone().text())
      const updated = await bodyOf(response)
      assert.deepEqual(updated, {
        ...book,
        title: 'The Hobbit, or There and Back Again',
        updated_at: updated.updated_at,
      })
      assert.ok(Date.parse(updated.updated_at) > Date.parse(book.updated_at), `${updated.updated_at} moved`)
      assert.notEqual(response.headers.get('etag'), etag)
      assert.deepEqual((await read(id)).book, updated)
    })

    it('when the body a GET returned is put back unchanged, then 200 and every input field keeps its value', async () => {
      const { id } = await create()
      const { book } = await read(id)
      const response = await put(id, book)
      assert.equal(response.status, 200)
      const updated = await bodyOf(response)
      assert.deepEqual(updated, { ...book, updated_at: updated.updated_at })
      assert.ok(Date.parse(updated.updated_at) > Date.parse(book.updated_at))
    })

    it('when the body names another id than the path, then 422 names id and neither book changes', async () => {
      const target = await read((await create()).id)
      const other = await read((await create({ ...hobbit, title: 'Farmer Giles of Ham' })).id)
      for (const id of [other.book.id, MISSING_ID]) {
        const response = await put(target.book.id, { ...target.book, id, title: 'Overwritten' })
        assert.deepEqual(await errorsOf(response), ID_MISMATCH, id)
      }
      assert.deepEqual(await read(target.book.id), target)
      assert.deepEqual(await read(other.book.id), other)
    })

    it('when the book is missing and the body names another id, then the mismatch is reported before the 404', async () => {
      const response = await put(MISSING_ID, { ...hobbit, id: '01900000-0000-7000-8000-000000000001' })
      assert.deepEqual(await errorsOf(response), ID_MISMATCH)
      assert.equal((await put(MISSING_ID, { ...hobbit, id: MISSING_ID })).status, 404)
    })

    it('when the ids differ only in letter case, then they name the same book', async () => {
      const { id } = await create()
      const lower = await put(id.toUpperCase(), { ...hobbit, id, title: 'Upper path' })
      assert.equal(lower.status, 200, await lower.clone().text())
      const upper = await put(id, { ...hobbit, id: id.toUpperCase(), title: 'Upper body' })
      assert.equal(upper.status, 200, await upper.clone().text())
      assert.equal((await bodyOf(upper)).id, id)
    })

    it('when created_at and updated_at are forged, then they are ignored', async () => {
      const { book } = await read((await create()).id)
      const forged = { created_at: '2000-01-01T00:00:00.000Z', updated_at: '2999-12-31T23:59:59.999Z' }
      const response = await put(book.id, { ...book, ...forged, description: 'Edited' })
      assert.equal(response.status, 200)
      const updated = await bodyOf(response)
      assert.equal(updated.created_at, book.created_at)
      assert.ok(Date.parse(updated.updated_at) > Date.parse(book.updated_at))
      assert.ok(Date.parse(updated.updated_at) < Date.parse(forged.updated_at), updated.updated_at)
      assert.equal(updated.description, 'Edited')
      assert.deepEqual((await read(book.id)).book, updated)
    })

    it('when a read-only member is not of its type, then 422 names it and nothing changes', async () => {
      const stored = await read((await create()).id)
      const response = await put(stored.book.id, { ...stored.book, id: 'nope', created_at: 'yesterday', updated_at: 7 })
      assert.deepEqual(await errorsOf(response), {
        id: 'Must be a UUID',
        created_at: 'Must be a valid date-time',
        updated_at: 'Must be a string',
      })
      assert.deepEqual(await read(stored.book.id), stored)
    })

    it('when other unknown members come with the read-only ones, then 422 still rejects only those', async () => {
      const stored = await read((await create()).id)
      const response = await put(stored.book.id, { ...stored.book, isbn: '9780547928227', version: 1 })
      assert.deepEqual(await errorsOf(response), { isbn: 'Unknown field', version: 'Unknown field' })
      assert.deepEqual(await read(stored.book.id), stored)
    })

    it('when a create carries the read-only members, then 422 rejects each and its Idempotency-Key stays unused', async () => {
      const { book } = await read((await create()).id)
      const key = { 'idempotency-key': `go-client-${backend}` }
      const rejected = await service.fetch('/v1/books', jsonRequest('POST', book, key))
      assert.deepEqual(await errorsOf(rejected), {
        id: 'Unknown field',
        created_by: 'Unknown field',
        created_at: 'Unknown field',
        updated_at: 'Unknown field',
      })
      const { id: _id, created_by: _by, created_at: _createdAt, updated_at: _updatedAt, ...input } = book
      const first = await service.fetch('/v1/books', jsonRequest('POST', input, key))
      assert.equal(first.status, 201)
      assert.equal(first.headers.get('idempotent-replayed'), null)
      const created = await bodyOf(first)
      assert.notEqual(created.id, book.id)
      const retry = await service.fetch('/v1/books', jsonRequest('POST', input, key))
      assert.equal(retry.headers.get('idempotent-replayed'), 'true')
      assert.deepEqual(await bodyOf(retry), created)
    })

    it('when a client generated from openapi.yaml puts back what it read, then the replace succeeds', async () => {
      const client = createClient<paths>({
        baseUrl: service.baseUrl,
        fetch: async (request) => {
          const response = await fetch(request)
          await assertConformsToContract(request.method, request.url, response)
          return response
        },
      })
      const { id } = await create()
      const got = await client.GET('/v1/books/{id}', { params: { path: { id } } })
      assert.ok(got.data)
      const put = await client.PUT('/v1/books/{id}', {
        params: { path: { id } },
        body: { ...got.data, status: 'pending' },
      })
      assert.equal(put.response.status, 200)
      assert.equal(put.data?.status, 'pending')
      assert.equal(put.data?.created_at, got.data.created_at)
    })
  })
}
