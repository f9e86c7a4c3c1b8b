// The outbox: every committed create, update and delete of a book leaves one CloudEvent in outbox, written
// with the change; a refused, failed or rolled-back write leaves none. Both backends.
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import { after, before, it } from 'node:test'
import { Ajv2020 } from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'
import type { BookEvent } from '../../../src/books/events.ts'
import { BOOK_EVENTS } from '../../../src/books/events.ts'
import { createBooksRepository } from '../../../src/books/repository.ts'
import type { Database } from '../../../src/db/database.ts'
import { createOutbox, FEED_START, outboxSweep } from '../../../src/events/outbox.ts'
import { runOnce } from '../../../src/jobs/jobs.ts'
import { EVENTS } from '../../../src/resources.ts'
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

const ajv = new Ajv2020({ strict: false, allErrors: true })
addFormats.default(ajv)
const isBookEvent = ajv.compile(BOOK_EVENTS.envelope)

const dune = { title: 'Dune', author: 'Frank Herbert', published_date: '1965-08-01' }

/** Every event in the outbox, in feed order. */
async function allEvents(database: Database): Promise<Json[]> {
  const { entries } = await createOutbox(database, EVENTS).readAfter(FEED_START, 10_000)
  return entries.map((entry) => entry.event)
}

for (const backend of BACKENDS) {
  describe(`the outbox on ${backend}`, { skip: await skipReason(backend) }, () => {
    let service: TestService
    before(async () => {
      service = await startService(backend)
    })
    after(() => service?.close())

    const eventsOf = async (bookId: string) =>
      (await allEvents(service.database)).filter((event) => event.subject === bookId)

    it('when a book is created, replaced and deleted, then three CloudEvents carry each state in order', async () => {
      const created = await service.fetch('/v1/books', jsonRequest('POST', dune))
      assert.equal(created.status, 201)
      const book = await bodyOf(created)
      const replaced = await service.fetch(
        `/v1/books/${book.id}`,
        jsonRequest('PUT', { ...dune, status: 'verified' }, { 'if-match': '"1"' }),
      )
      assert.equal(replaced.status, 200)
      const stored = await bodyOf(replaced)
      assert.equal((await service.fetch(`/v1/books/${book.id}`, { method: 'DELETE' })).status, 204)

      const events = await eventsOf(book.id)
      assert.deepEqual(
        events.map((event) => [event.type, event.bookversion]),
        [
          ['dev.myapp.book.created.v1', 1],
          ['dev.myapp.book.updated.v1', 2],
          ['dev.myapp.book.deleted.v1', 3],
        ],
      )
      for (const event of events) {
        const valid: boolean = isBookEvent(event)
        assert.ok(valid, `${ajv.errorsText(isBookEvent.errors)}: ${JSON.stringify(event)}`)
        assert.equal(event.specversion, '1.0')
        assert.equal(event.source, '//myapp/books')
        assert.equal(event.datacontenttype, 'application/json')
        assert.match(event.id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'a UUID v7')
        assert.ok(Math.abs(Date.parse(event.time) - Date.now()) < 60_000)
        assert.equal(event.traceparent, undefined, 'no trace without tracing')
      }
      // The data is the book exactly as the API answered with it.
      assert.deepEqual(events[0].data, book)
      assert.deepEqual(events[1].data, stored)
      assert.deepEqual(events[2].data, { id: book.id, version: 2 })
      assert.equal(new Set(events.map((event) => event.id)).size, 3)
    })

    it('when writes are refused (412, 422, 404) or fail, then no event is written', async () => {
      const book = await bodyOf(await service.fetch('/v1/books', jsonRequest('POST', dune)))
      const before = (await allEvents(service.database)).length
      const stale = await service.fetch(`/v1/books/${book.id}`, jsonRequest('PUT', dune, { 'if-match': '"7"' }))
      assert.equal(stale.status, 412)
      const staleDelete = await service.fetch(`/v1/books/${book.id}`, {
        method: 'DELETE',
        headers: { 'if-match': '"7"' },
      })
      assert.equal(staleDelete.status, 412)
      const invalid = await service.fetch(
        `/v1/books/${book.id}`,
        jsonRequest('PUT', { ...dune, published_date: 'soon' }),
      )
      assert.equal(invalid.status, 422)
      assert.equal((await service.fetch('/v1/books', jsonRequest('POST', { title: 'No author' }))).status, 422)
      const missing = '01900000-0000-7000-8000-000000000000'
      assert.equal((await service.fetch(`/v1/books/${missing}`, jsonRequest('PUT', dune))).status, 404)
      assert.equal((await service.fetch(`/v1/books/${missing}`, { method: 'DELETE' })).status, 404)
      // A statement the database refuses: the title passes the schema's length in characters, not the column's.
      const repository = createBooksRepository(service.database)
      await assert.rejects(repository.create({ ...dune, title: 'x'.repeat(256) }))
      assert.equal((await allEvents(service.database)).length, before)
    })

    it('when the transaction around a write rolls back, then neither the book nor its event remains', async () => {
      const before = await allEvents(service.database)
      let written: string | undefined
      await assert.rejects(
        service.database.transaction(async (tx) => {
          const stored = await createBooksRepository(tx as Database).create(dune)
          written = stored.book.id
          throw new Error('rolled back on purpose')
        }),
        /rolled back on purpose/,
      )
      assert.ok(written)
      assert.equal((await service.fetch(`/v1/books/${written}`)).status, 404)
      assert.deepEqual(await allEvents(service.database), before)
    })

    it('when events pass EVENTS_RETENTION, then the sweep deletes them: with a relay only once published', async () => {
      const ids: string[] = []
      for (let n = 0; n < 3; n++)
        ids.push((await bodyOf(await service.fetch('/v1/books', jsonRequest('POST', dune)))).id)
      const [old, oldPublished, recent] = ids
      await service.database.query(
        "UPDATE outbox SET occurred_at = now() - interval '8 days' WHERE aggregate_id = ANY($1::uuid[])",
        [[old, oldPublished]],
      )
      await service.database.query('UPDATE outbox SET published_at = now() WHERE aggregate_id = $1', [oldPublished])
      const week = 7 * 24 * 3600 * 1000
      const remaining = async () =>
        (await allEvents(service.database)).map((event) => event.subject).filter((id) => ids.includes(id))
      assert.equal(await runOnce(service.database, outboxSweep(week, { relayed: true })), 1)
      assert.deepEqual(await remaining(), [old, recent], 'an unpublished event waits for the relay')
      assert.equal(await runOnce(service.database, outboxSweep(week, { relayed: false })), 1)
      assert.deepEqual(await remaining(), [recent], 'without a relay the feed is the only reader')
    })

    it('when a create is replayed by its Idempotency-Key, then only the first one wrote an event', async () => {
      const post = () => service.fetch('/v1/books', jsonRequest('POST', dune, { 'idempotency-key': `once-${backend}` }))
      const first = await bodyOf(await post())
      const replay = await post()
      assert.equal(replay.headers.get('idempotent-replayed'), 'true')
      const events = await eventsOf(first.id)
      assert.equal(events.length, 1)
      assert.deepEqual(events[0].data, first)
    })
  })
}

describe('the trace of an event', () => {
  it('when a traced request creates a book, then its event carries the traceparent of the request span', async () => {
    // An OTLP receiver that takes the spans and keeps them.
    const spans: { traceId: string; spanId: string; parentSpanId?: string; kind: number }[] = []
    const receiver = createServer((request, response) => {
      let body = ''
      request.on('data', (chunk) => {
        body += chunk
      })
      request.on('end', () => {
        for (const resource of JSON.parse(body).resourceSpans ?? [])
          for (const scope of resource.scopeSpans) spans.push(...scope.spans)
        response.writeHead(200, { 'content-type': 'application/json' }).end('{}')
      })
    })
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve))
    const { port } = receiver.address() as { port: number }
    const service = await startService('embedded', { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}` })
    try {
      const traceId = '0af7651916cd43dd8448eb211c80319c'
      const created = await service.fetch(
        '/v1/books',
        jsonRequest('POST', dune, { traceparent: `00-${traceId}-b7ad6b7169203331-01` }),
      )
      const book = await bodyOf(created)
      await service.tracing?.forceFlush()
      const [event] = (await allEvents(service.database)).filter((candidate) => candidate.subject === book.id)
      const server = spans.find((span) => span.traceId === traceId && span.kind === 2)
      assert.ok(server, 'the request span was exported')
      assert.equal(event.traceparent, `00-${traceId}-${server.spanId}-01`)
    } finally {
      await service.close()
      receiver.close()
    }
  })
})
