// Idempotency-Key on POST /v1/books: replay, reuse with another body, the 50-request race, expiry; both backends.
// Replicas sharing the sweep need the PostgreSQL server, and are in test/system/books.
import assert from 'node:assert/strict'
import { after, before, it } from 'node:test'
import { createBooksRepository } from '../../../src/books/repository.ts'
import { describe } from '../../helpers/describe.ts'
import { BACKENDS, bodyOf, jsonRequest, skipReason, startService, type TestService } from '../../helpers/service.ts'

const book = { title: 'Piranesi', author: 'Susanna Clarke', published_date: '2020-09-15' }

for (const backend of BACKENDS) {
  describe(`idempotent creates on ${backend}`, { skip: await skipReason(backend) }, () => {
    let service: TestService
    before(async () => {
      service = await startService(backend)
    })
    after(() => service?.close())

    const post = (key: string, body: unknown = book) =>
      service.fetch('/v1/books', jsonRequest('POST', body, { 'idempotency-key': key }))
    const count = async () =>
      (await service.database.query<{ n: number }>('SELECT count(*)::int AS n FROM books'))[0]?.n ?? 0

    it('when a create is retried with the same key and body, then the first answer is replayed and nothing new is stored', async () => {
      const before = await count()
      const first = await post('retry-1')
      assert.equal(first.status, 201)
      assert.equal(first.headers.get('idempotent-replayed'), null)
      const created = await bodyOf(first)
      // Same content, other member order and spacing: the same request.
      const again = await post(
        'retry-1',
        JSON.stringify({ published_date: book.published_date, author: ` ${book.author}`, title: book.title }),
      )
      assert.equal(again.status, 201)
      assert.equal(again.headers.get('idempotent-replayed'), 'true')
      assert.deepEqual(await bodyOf(again), created)
      assert.equal(again.headers.get('location'), first.headers.get('location'))
      assert.equal(again.headers.get('etag'), first.headers.get('etag'))
      assert.equal(await count(), before + 1)
    })

    it('when a key is reused with another body, then 422 names the key and nothing is stored', async () => {
      assert.equal((await post('reuse-1')).status, 201)
      const before = await count()
      const reused = await post('reuse-1', { ...book, title: 'Jonathan Strange & Mr Norrell' })
      assert.equal(reused.status, 422)
      assert.deepEqual((await bodyOf(reused)).errors, {
        'idempotency-key': 'Was already used with a different request body',
      })
      assert.equal(await count(), before)
    })

    it('when the first attempt fails validation, then the key stays free for a correct retry', async () => {
      assert.equal((await post('fix-1', { ...book, published_date: '2020-02-30' })).status, 422)
      const retry = await post('fix-1')
      assert.equal(retry.status, 201)
      assert.equal(retry.headers.get('idempotent-replayed'), null)
    })

    it('when the key is malformed, then 422 names it', async () => {
      for (const [key, message] of [
        ['k'.repeat(256), 'Must be at most 255 characters'],
        ['with space', 'Must be 1 to 255 visible ASCII characters'],
        ['tab\there', 'Must be 1 to 255 visible ASCII characters'],
      ]) {
        const response = await post(key as string)
        assert.equal(response.status, 422, key)
        assert.deepEqual((await bodyOf(response)).errors, { 'idempotency-key': message })
      }
    })

    it('when 50 identical creates with one key race, then exactly one book exists and every answer is a 201 replay or a 409', async (t) => {
      const before = await count()
      const responses = await Promise.all(Array.from({ length: 50 }, () => post('race-1')))
      const originals = responses.filter(
        (response) => response.status === 201 && !response.headers.has('idempotent-replayed'),
      )
      const replays = responses.filter((response) => response.headers.get('idempotent-replayed') === 'true')
      const conflicts = responses.filter((response) => response.status === 409)
      assert.equal(originals.length, 1, responses.map((response) => response.status).join())
      assert.equal(originals.length + replays.length + conflicts.length, 50)
      t.diagnostic(`1 created, ${replays.length} replayed, ${conflicts.length} answered 409`)
      const id = (await bodyOf(originals[0] as Response)).id
      for (const replay of replays) assert.equal((await bodyOf(replay)).id, id)
      for (const conflict of conflicts) assert.equal(conflict.headers.get('retry-after'), '1')
      assert.equal(await count(), before + 1)
    })

    it('when a key is older than 24 hours, then it is forgotten: swept, and free for a new book', async () => {
      const first = await bodyOf(await post('old-1'))
      await service.database.query(
        "UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = 'old-1'",
      )
      const fresh = await post('old-1', { ...book, title: 'The Ladies of Grace Adieu' })
      assert.equal(fresh.status, 201)
      assert.equal(fresh.headers.get('idempotent-replayed'), null)
      assert.notEqual((await bodyOf(fresh)).id, first.id)
      await service.database.query(
        "UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = 'old-1'",
      )
      const repository = createBooksRepository(service.database)
      assert.ok((await service.database.transaction((tx) => repository.deleteExpiredIdempotencyKeys(tx))) >= 1)
      const left = await service.database.query("SELECT 1 FROM idempotency_keys WHERE key = 'old-1'")
      assert.equal(left.length, 0)
    })

    it('when a key was stored by the release before 00004 (an ETag, no version), then its replay has the same ETag', async () => {
      const first = await post('older-release-1')
      assert.equal(first.status, 201)
      await service.database.query("UPDATE idempotency_keys SET response_version = NULL WHERE key = 'older-release-1'")
      const again = await post('older-release-1')
      assert.equal(again.headers.get('idempotent-replayed'), 'true')
      assert.equal(again.headers.get('etag'), first.headers.get('etag'))
      assert.equal(again.headers.get('etag'), '"1"')
    })

    it('when a key was stored before created_by and microseconds, then its replay reads as a book does now', async () => {
      const first = await post('older-release-2')
      const book = await bodyOf(first)
      const { created_by: _, ...older } = {
        ...book,
        created_at: book.created_at.replace(/\d{3}Z$/, 'Z'),
        updated_at: book.updated_at.replace(/\d{3}Z$/, 'Z'),
      }
      await service.database.query("UPDATE idempotency_keys SET response_body = $1 WHERE key = 'older-release-2'", [
        JSON.stringify(older),
      ])
      const again = await post('older-release-2')
      assert.equal(again.headers.get('idempotent-replayed'), 'true')
      const replayed = await bodyOf(again)
      assert.equal(replayed.created_by, null)
      assert.equal(replayed.created_at, `${older.created_at.slice(0, -1)}000Z`)
      assert.match(replayed.updated_at, /\.\d{6}Z$/)
    })
  })
}
