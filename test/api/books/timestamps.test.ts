// Timestamps to the microsecond, as the Go series' V3 shows them, everywhere the API shows one: a REST answer, the
// RPC Timestamp (nanos), an event's data and its CloudEvents time, on each backend.
import assert from 'node:assert/strict'
import { after, before, it } from 'node:test'
import { describe } from '../../helpers/describe.ts'
import { bookClient, type RpcService, startRpcService } from '../../helpers/rpc-clients.ts'
import { BACKENDS, bodyOf, jsonRequest, skipReason } from '../../helpers/service.ts'
import { openSse } from '../../helpers/sse.ts'

const MICROSECONDS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.(\d{6})Z$/

for (const backend of BACKENDS) {
  describe(`timestamps on ${backend}`, { skip: await skipReason(backend) }, () => {
    let service: RpcService
    before(async () => {
      service = await startRpcService(backend)
    })
    after(() => service?.close())

    it('when a book is written, then REST, RPC, its event and the feed show the same instant to the microsecond', async () => {
      const input = { title: 'Solaris', author: 'Stanisław Lem', published_date: '1961-06-01' }
      const created = await bodyOf(await service.fetch('/v1/books', jsonRequest('POST', input)))
      const replaced = await bodyOf(
        await service.fetch(`/v1/books/${created.id}`, jsonRequest('PUT', { ...input, title: 'Solaris (1970)' })),
      )
      for (const stamp of [created.created_at, replaced.created_at, replaced.updated_at]) {
        assert.match(stamp, MICROSECONDS)
      }
      assert.equal(replaced.created_at, created.created_at)
      assert.ok(replaced.updated_at > created.updated_at, 'updated_at moves on, in the microseconds too')

      const { book } = await bookClient(service, 'grpc').getBook({ id: created.id })
      for (const [message, text] of [
        [book?.createdAt, replaced.created_at],
        [book?.updatedAt, replaced.updated_at],
      ] as const) {
        const micros = Number(MICROSECONDS.exec(text)?.[1])
        assert.equal(message?.nanos, micros * 1000, `${text} in nanos`)
        assert.equal(Number(message?.seconds), Math.floor(Date.parse(text) / 1000))
      }

      const stream = await openSse(`${service.baseUrl}/v1/events`)
      try {
        const events = await stream.events(2)
        const [createdEvent, replacedEvent] = events.map(({ event }) => event)
        assert.deepEqual(createdEvent.data, created)
        assert.deepEqual(replacedEvent.data, replaced)
        assert.match(replacedEvent.time, MICROSECONDS)
      } finally {
        stream.close()
      }
    })
  })
}
