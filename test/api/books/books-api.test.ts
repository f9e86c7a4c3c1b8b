// The books routes through HTTP, on the PostgreSQL server and on embedded PGlite.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { BACKENDS, bodyOf, jsonRequest, skipReason, startService, type TestService } from '../../helpers/service.ts'

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/
// To the microsecond, as the Go series' V3 shows them.
const RFC3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/
const MISSING_ID = '01900000-0000-7000-8000-000000000000'

const hobbit = { title: 'The Hobbit', author: 'J. R. R. Tolkien', published_date: '1937-09-21' }

async function problemOf(response: Response) {
  assert.match(response.headers.get('content-type') ?? '', /^application\/problem\+json; charset=utf-8$/)
  const body = await bodyOf(response)
  assert.equal(body.status, response.status)
  assert.equal(body.type, 'about:blank')
  assert.equal(typeof body.title, 'string')
  assert.equal(body.error, body.detail)
  assert.equal(body.request_id, response.headers.get('x-request-id'))
  return body
}

for (const backend of BACKENDS) {
  describe(`books API on ${backend}`, { skip: await skipReason(backend) }, () => {
    let service: TestService
    before(async () => {
      service = await startService(backend)
    })
    after(() => service?.close())

    const create = async (book: Record<string, unknown>) => {
      const response = await service.fetch('/v1/books', jsonRequest('POST', book))
      assert.equal(response.status, 201, await response.clone().text())
      return bodyOf(response)
    }
    const postInvalid = async (book: unknown) => {
      const response = await service.fetch('/v1/books', jsonRequest('POST', book))
      assert.equal(response.status, 422)
      return (await problemOf(response)).errors as Record<string, string>
    }

    describe('create', () => {
      it('when a valid book is posted, then 201 returns it with Location, defaults and server-set fields', async () => {
        const response = await service.fetch('/v1/books', jsonRequest('POST', hobbit))
        assert.equal(response.status, 201)
        assert.equal(response.headers.get('content-type'), 'application/json; charset=utf-8')
        const book = await bodyOf(response)
        assert.match(book.id, UUID_V7)
        assert.equal(response.headers.get('location'), `/v1/books/${book.id}`)
        assert.deepEqual(
          { ...book, id: undefined, created_at: undefined, updated_at: undefined },
          {
            ...hobbit,
            status: 'pending',
            image_url: null,
            description: null,
            created_by: null,
            id: undefined,
            created_at: undefined,
            updated_at: undefined,
          },
        )
        assert.match(book.created_at, RFC3339_UTC)
        assert.equal(book.updated_at, book.created_at)
      })

      it('when every field is given, then each is stored as sent', async () => {
        const full = {
          ...hobbit,
          status: 'verified',
          image_url: 'https://covers.example.org/hobbit.jpg',
          description: 'There and back again.',
        }
        const book = await create(full)
        const read = await await bodyOf(await service.fetch(`/v1/books/${book.id}`))
        assert.deepEqual(
          { ...read, id: undefined, created_at: undefined, updated_at: undefined },
          {
            ...full,
            created_by: null,
            id: undefined,
            created_at: undefined,
            updated_at: undefined,
          },
        )
      })

      it('when ids are generated, then they are UUID v7 and grow with time', async () => {
        const first = await create(hobbit)
        const second = await create(hobbit)
        assert.ok(second.id > first.id, `${second.id} should sort after ${first.id}`)
      })

      it('when title and author have surrounding spaces, then they are trimmed', async () => {
        const book = await create({ ...hobbit, title: '  Dune \n', author: ' Frank Herbert ' })
        assert.equal(book.title, 'Dune')
        assert.equal(book.author, 'Frank Herbert')
      })

      for (const author of [
        'Gabriel García Márquez',
        'J. R. R. Tolkien',
        '村上 春樹',
        'Фёдор Достоевский',
        'Nguye\u0302\u0303n Du',
        "Flannery O'Connor",
        'Jean-Paul Sartre',
      ]) {
        it(`when the author is "${author}", then it is accepted unchanged`, async () => {
          const book = await create({ ...hobbit, author })
          assert.equal(book.author, author)
        })
      }

      for (const author of ['R2D2', 'Tolkien!', '<script>', '-', 'Robert; DROP TABLE books']) {
        it(`when the author is "${author}", then 422 names the author field`, async () => {
          assert.deepEqual(await postInvalid({ ...hobbit, author }), {
            author: 'Must contain only letters, spaces, dots, apostrophes and hyphens',
          })
        })
      }

      for (const published_date of ['2023-02-30', '2023-02-29', '2023-13-01', '1937-9-21', '21/09/1937', '']) {
        it(`when published_date is "${published_date}", then 422 says it must be a valid date`, async () => {
          assert.deepEqual(await postInvalid({ ...hobbit, published_date }), { published_date: 'Must be a valid date' })
        })
      }

      it('when published_date is 2024-02-29 (a leap day), then it is accepted', async () => {
        assert.equal((await create({ ...hobbit, published_date: '2024-02-29' })).published_date, '2024-02-29')
      })

      it('when required fields are missing, then 422 names each of them', async () => {
        assert.deepEqual(await postInvalid({}), {
          title: 'This field is required',
          published_date: 'This field is required',
        })
      })

      it('when the author is left out or null, then the book has none, and no author filter finds it', async () => {
        const { author: _, ...anonymous } = hobbit
        const title = `Anonymous ${backend}`
        const left = await create({ ...anonymous, title })
        assert.equal(left.author, null)
        const nulled = await create({ ...anonymous, title, author: null })
        assert.equal(nulled.author, null)
        const listed = await bodyOf(await service.fetch(`/v1/books?q=${encodeURIComponent(title)}`))
        assert.equal(listed.length, 2)
        for (const author of ['null', '', ' ']) {
          const response = await service.fetch(`/v1/books?q=${encodeURIComponent(title)}&author=${author}`)
          if (response.status === 200) assert.deepEqual(await bodyOf(response), [], `author=${author}`)
          else assert.equal(response.status, 422, `author=${author}`)
        }
      })

      it('when text holds NUL, an unpaired surrogate or (in the title) a control character, then 422', async () => {
        const line = 'Must be a single line of text without control characters'
        const text = 'Must be text without NUL characters or unpaired surrogates'
        assert.deepEqual(await postInvalid({ ...hobbit, title: 'a\u0000b', description: 'a\u0000b' }), {
          title: line,
          description: text,
        })
        assert.deepEqual(await postInvalid({ ...hobbit, title: 'a\nb', description: 'x\ud800' }), {
          title: line,
          description: text,
        })
        const book = await create({ ...hobbit, description: 'Two\nlines\tand a tab' })
        assert.equal(book.description, 'Two\nlines\tand a tab')
      })

      it('when the title is blank or too long, then 422 explains the length rule', async () => {
        assert.deepEqual(await postInvalid({ ...hobbit, title: '   ' }), { title: 'Must not be empty' })
        assert.deepEqual(await postInvalid({ ...hobbit, title: 'x'.repeat(256) }), {
          title: 'Must be at most 255 characters',
        })
        assert.deepEqual(await postInvalid({ ...hobbit, author: 'a'.repeat(256) }), {
          author: 'Must be at most 255 characters',
        })
      })

      it('when the title is 255 characters outside the BMP, then it is accepted (characters, not bytes)', async () => {
        const title = '📚'.repeat(255)
        assert.equal((await create({ ...hobbit, title })).title, title)
      })

      it('when fields have the wrong JSON types, then 422 names each', async () => {
        assert.deepEqual(await postInvalid({ title: 42, author: ['x'], published_date: 19370921, status: true }), {
          title: 'Must be a string',
          author: 'Must be a string or null',
          published_date: 'Must be a string',
          status: 'Must be one of pending, verified',
        })
      })

      it('when the status is unknown, then 422 lists the allowed ones', async () => {
        assert.deepEqual(await postInvalid({ ...hobbit, status: 'done' }), {
          status: 'Must be one of pending, verified',
        })
      })

      for (const image_url of [
        'javascript:alert(1)',
        'file:///etc/passwd',
        'ftp://example.org/a.jpg',
        '/covers/a.jpg',
      ]) {
        it(`when image_url is "${image_url}", then 422 asks for an http(s) URL`, async () => {
          assert.deepEqual(await postInvalid({ ...hobbit, image_url }), {
            image_url: 'Must be a valid URL',
          })
        })
      }

      it('when image_url or description is too long, then 422 gives the limit', async () => {
        assert.deepEqual(await postInvalid({ ...hobbit, image_url: `https://e.org/${'a'.repeat(2040)}` }), {
          image_url: 'Must be at most 2048 characters',
        })
        assert.deepEqual(await postInvalid({ ...hobbit, description: 'd'.repeat(5001) }), {
          description: 'Must be at most 5000 characters',
        })
      })

      it('when unknown or server-set members are sent, then 422 rejects them instead of dropping them', async () => {
        assert.deepEqual(await postInvalid({ ...hobbit, isbn: '9780547928227', id: MISSING_ID }), {
          isbn: 'Unknown field',
          id: 'Unknown field',
        })
      })

      it('when the body is JSON but not an object, then 422 says so', async () => {
        assert.deepEqual(await postInvalid([hobbit]), { body: 'Must be a JSON object' })
        assert.deepEqual(await postInvalid('"a string"'), { body: 'Must be a JSON object' })
      })

      it('when the JSON is malformed or empty, then 400', async () => {
        for (const body of ['{"title": "x",', '{title: "x"}', '']) {
          const response = await service.fetch('/v1/books', jsonRequest('POST', body))
          assert.equal(response.status, 400, `body ${JSON.stringify(body)}`)
          const problem = await problemOf(response)
          assert.equal(problem.errors, undefined)
        }
      })

      it('when the body is not application/json, then 415', async () => {
        const cases: RequestInit[] = [
          { method: 'POST', headers: { 'content-type': 'text/plain' }, body: JSON.stringify(hobbit) },
          { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'title=x' },
          { method: 'POST' },
        ]
        for (const init of cases) {
          const response = await service.fetch('/v1/books', init)
          assert.equal(response.status, 415, JSON.stringify(init.headers))
          assert.equal((await problemOf(response)).detail, 'Content-Type must be application/json')
        }
      })

      it('when the body is over 64 KiB, then 413 and nothing is stored', async () => {
        const before = Number(
          (await service.fetch('/v1/books', { headers: { prefer: 'count=exact' } })).headers.get('x-total-count'),
        )
        const huge = JSON.stringify({ ...hobbit, description: 'x'.repeat(70 * 1024) })
        const response = await service.fetch('/v1/books', jsonRequest('POST', huge))
        assert.equal(response.status, 413)
        await problemOf(response)
        const afterCount = Number(
          (await service.fetch('/v1/books', { headers: { prefer: 'count=exact' } })).headers.get('x-total-count'),
        )
        assert.equal(afterCount, before)
      })

      it('when the body is just under 64 KiB, then it is parsed (and judged on its content)', async () => {
        const body = JSON.stringify({ ...hobbit, description: 'x'.repeat(64 * 1024 - 200) })
        assert.ok(Buffer.byteLength(body) < 64 * 1024)
        const response = await service.fetch('/v1/books', jsonRequest('POST', body))
        assert.equal(response.status, 422)
        assert.deepEqual((await problemOf(response)).errors, { description: 'Must be at most 5000 characters' })
      })
    })

    describe('read', () => {
      it('when the book exists, then 200 returns it', async () => {
        const book = await create(hobbit)
        const response = await service.fetch(`/v1/books/${book.id}`)
        assert.equal(response.status, 200)
        assert.equal(response.headers.get('content-type'), 'application/json; charset=utf-8')
        assert.deepEqual(await bodyOf(response), book)
      })

      it('when no book has the id, then 404 problem says book not found', async () => {
        const response = await service.fetch(`/v1/books/${MISSING_ID}`)
        assert.equal(response.status, 404)
        const problem = await problemOf(response)
        assert.equal(problem.detail, 'book not found')
        assert.equal(problem.instance, `/v1/books/${MISSING_ID}`)
      })

      it('when the id is not a UUID, then 400 names the id', async () => {
        for (const id of ['42', 'not-a-uuid', "1' OR '1'='1"]) {
          const response = await service.fetch(`/v1/books/${encodeURIComponent(id)}`)
          assert.equal(response.status, 400, id)
          assert.deepEqual((await problemOf(response)).errors, { id: 'Must be a UUID' })
        }
      })
    })

    describe('update', () => {
      it('when a valid replacement is put, then 200 returns it, updated_at moves and created_at stays', async () => {
        const book = await create({ ...hobbit, status: 'verified', image_url: 'https://e.org/h.jpg' })
        const replacement = {
          title: 'The Hobbit, or There and Back Again',
          author: 'J.R.R. Tolkien',
          published_date: '1937-09-22',
        }
        const response = await service.fetch(`/v1/books/${book.id}`, jsonRequest('PUT', replacement))
        assert.equal(response.status, 200)
        const updated = await bodyOf(response)
        // A full replace: fields left out go back to their defaults.
        assert.deepEqual(updated, {
          ...replacement,
          id: book.id,
          status: 'pending',
          image_url: null,
          description: null,
          created_by: null,
          created_at: book.created_at,
          updated_at: updated.updated_at,
        })
        assert.ok(updated.updated_at > book.updated_at, `${updated.updated_at} > ${book.updated_at}`)
        assert.deepEqual(await await bodyOf(await service.fetch(`/v1/books/${book.id}`)), updated)
      })

      it('when the same book is updated twice at once, then updated_at still moves each time', async () => {
        const book = await create(hobbit)
        const first = await await bodyOf(await service.fetch(`/v1/books/${book.id}`, jsonRequest('PUT', hobbit)))
        const second = await await bodyOf(await service.fetch(`/v1/books/${book.id}`, jsonRequest('PUT', hobbit)))
        assert.ok(second.updated_at > first.updated_at)
      })

      it('when the book does not exist, then 404', async () => {
        const response = await service.fetch(`/v1/books/${MISSING_ID}`, jsonRequest('PUT', hobbit))
        assert.equal(response.status, 404)
        assert.equal((await problemOf(response)).detail, 'book not found')
      })

      it('when the id or the body is invalid, then 400 or 422 and nothing changes', async () => {
        const book = await create(hobbit)
        const badId = await service.fetch('/v1/books/nope', jsonRequest('PUT', hobbit))
        assert.equal(badId.status, 400)
        const badBody = await service.fetch(`/v1/books/${book.id}`, jsonRequest('PUT', { ...hobbit, title: '' }))
        assert.equal(badBody.status, 422)
        assert.deepEqual((await problemOf(badBody)).errors, { title: 'Must not be empty' })
        const unsupported = await service.fetch(`/v1/books/${book.id}`, { method: 'PUT', body: 'x' })
        assert.equal(unsupported.status, 415)
        assert.deepEqual(await await bodyOf(await service.fetch(`/v1/books/${book.id}`)), book)
      })
    })

    describe('delete', () => {
      it('when the book exists, then 204 and it is gone', async () => {
        const book = await create(hobbit)
        const response = await service.fetch(`/v1/books/${book.id}`, { method: 'DELETE' })
        assert.equal(response.status, 204)
        assert.equal(await response.text(), '')
        assert.equal((await service.fetch(`/v1/books/${book.id}`)).status, 404)
        const again = await service.fetch(`/v1/books/${book.id}`, { method: 'DELETE' })
        assert.equal(again.status, 404)
        await problemOf(again)
      })

      it('when the id is not a UUID, then 400', async () => {
        const response = await service.fetch('/v1/books/123', { method: 'DELETE' })
        assert.equal(response.status, 400)
        await problemOf(response)
      })
    })

    describe('routing and headers', () => {
      it('when the route is unknown, then 404 problem', async () => {
        for (const path of ['/v2/books', '/', '/v1/books/a/b']) {
          const response = await service.fetch(path)
          assert.equal(response.status, 404, path)
          assert.equal((await problemOf(response)).detail, `no route for GET ${path}`)
        }
      })

      it('when a known route is asked with another method, then 405 with Allow', async () => {
        const collection = await service.fetch('/v1/books', { method: 'PATCH' })
        assert.equal(collection.status, 405)
        assert.equal(collection.headers.get('allow'), 'GET, HEAD, POST')
        await problemOf(collection)
        const item = await service.fetch(`/v1/books/${MISSING_ID}`, { method: 'POST' })
        assert.equal(item.status, 405)
        assert.equal(item.headers.get('allow'), 'DELETE, GET, HEAD, PATCH, PUT')
        const health = await service.fetch('/livez', { method: 'DELETE' })
        assert.equal(health.status, 405)
        assert.equal(health.headers.get('allow'), 'GET, HEAD')
      })

      it('when X-Request-ID is well-formed, then it is echoed and on every log line of the request', async () => {
        const requestId = 'client-abc.123:xyz'
        const response = await service.fetch(`/v1/books/${MISSING_ID}`, { headers: { 'x-request-id': requestId } })
        assert.equal(response.headers.get('x-request-id'), requestId)
        assert.equal((await bodyOf(response)).request_id, requestId)
        const lines = service.logs.filter((line) => line.request_id === requestId)
        assert.ok(lines.length >= 1)
        const requestLine = lines.find((line) => line.message === 'request')
        assert.ok(requestLine, 'the request log line carries the id')
        for (const field of ['method', 'url', 'status', 'latency', 'remote_ip', 'agent', 'header_size', 'body_size']) {
          assert.ok(field in requestLine, `request log has ${field}`)
        }
        assert.equal(requestLine.status, 404)
        assert.equal(requestLine.url, `/v1/books/${MISSING_ID}`)
      })

      it('when X-Request-ID is malformed or too long, then a new one is generated', async () => {
        for (const given of ['has space', 'x'.repeat(129), 'semi;colon']) {
          const response = await service.fetch('/livez', { headers: { 'x-request-id': given } })
          const echoed = response.headers.get('x-request-id') ?? ''
          assert.notEqual(echoed, given)
          assert.match(echoed, /^[A-Za-z0-9._:-]{1,128}$/)
        }
      })

      it('when no X-Request-ID is sent, then each response gets a distinct one', async () => {
        const ids = new Set<string | null>()
        for (let i = 0; i < 5; i++) ids.add((await service.fetch('/livez')).headers.get('x-request-id'))
        assert.equal(ids.size, 5)
        assert.ok(!ids.has(null))
      })

      it('when health is probed, then /livez and /readyz answer 200', async () => {
        for (const path of ['/livez', '/readyz']) {
          const response = await service.fetch(path)
          assert.equal(response.status, 200, path)
          assert.deepEqual(await bodyOf(response), { status: 'ok' })
        }
      })
    })
  })
}
