// The relay with two resources' events in one outbox (the books and the test-only widgets): each event goes to its
// own resource's stream and subject, once, and each stream keeps its events in the order they were written, even
// when the writes of the two interleave within one batch.
import assert from 'node:assert/strict'
import { after, before, it } from 'node:test'
import { jetstreamManager } from '@nats-io/jetstream'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { BOOK_EVENTS } from '../../../src/books/events.ts'
import { startRelay } from '../../../src/events/relay.ts'
import { createLogger } from '../../../src/logger.ts'
import { catalogOf, RESOURCES } from '../../../src/resources.ts'
import { describe } from '../../helpers/describe.ts'
import { natsMissing, natsSettings, startNats, type TestNats } from '../../helpers/nats.ts'
import { bodyOf, type Json, jsonRequest, skipReason, startService, type TestService } from '../../helpers/service.ts'
import { until } from '../../helpers/tools.ts'
import { WIDGET_EVENTS, WIDGETS_TABLE, widgetsResource } from '../../helpers/widgets.ts'

const RESOURCES_WITH_WIDGETS = [...RESOURCES, widgetsResource]
const skip = natsMissing() || (await skipReason('postgres'))

describe('the relay with two resources', { skip }, () => {
  let nats: TestNats
  let service: TestService
  let client: NatsConnection
  before(async () => {
    nats = await startNats()
    service = await startService('postgres', {}, { resources: RESOURCES_WITH_WIDGETS })
    await service.database.query(WIDGETS_TABLE)
    client = await connect({ servers: nats.url })
  })
  after(async () => {
    await client?.close()
    await service?.close()
    await nats?.remove()
  })

  it('when books and widgets are written in turn, then each stream gets its own events once, in order', async () => {
    const written: { stream: string; id: string }[] = []
    // Written before the relay starts, so that one batch holds both resources' events, interleaved.
    for (let n = 0; n < 10; n++) {
      const book = await bodyOf(
        await service.fetch(
          '/v1/books',
          jsonRequest('POST', { title: `Turn ${n}`, author: 'Italo Calvino', published_date: '1979-01-01' }),
        ),
      )
      written.push({ stream: BOOK_EVENTS.stream.name, id: book.id })
      const widget = (await fetch(`${service.baseUrl}/v1/widgets`, jsonRequest('POST', { name: `turn-${n}` })).then(
        (response) => response.json(),
      )) as Json
      written.push({ stream: WIDGET_EVENTS.stream.name, id: widget.id })
    }
    const relay = startRelay({
      database: service.database,
      catalog: catalogOf(RESOURCES_WITH_WIDGETS),
      nats: natsSettings(nats.url),
      logger: createLogger('silent'),
    })
    try {
      const jsm = await jetstreamManager(client)
      const contents = async (stream: string) => {
        const { state } = await jsm.streams.info(stream)
        const stored: { subject: string; event: Json }[] = []
        for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq++) {
          const message = await jsm.streams.getMessage(stream, { seq })
          if (message !== null) stored.push({ subject: message.subject, event: message.json() })
        }
        return stored
      }
      for (const [stream, subject] of [
        [BOOK_EVENTS.stream.name, 'books.created'],
        [WIDGET_EVENTS.stream.name, 'widgets.created'],
      ] as const) {
        const expected = written.filter((write) => write.stream === stream).map(({ id }) => id)
        const stored = await until(`the ${stream} stream`, 10_000, async () => {
          const found = await contents(stream).catch(() => [])
          return found.length >= expected.length ? found : undefined
        })
        assert.deepEqual(
          stored.map(({ event }) => event.subject),
          expected,
          `${stream}: every event once, in write order`,
        )
        assert.ok(
          stored.every((message) => message.subject === subject),
          `${stream}: each on ${subject}`,
        )
      }
      const unpublished = await service.database.query('SELECT 1 FROM outbox WHERE published_at IS NULL')
      assert.equal(unpublished.length, 0, 'every event is marked published')
    } finally {
      await relay.stop()
    }
  })
})
