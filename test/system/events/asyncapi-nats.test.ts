// The AsyncAPI document against the messages the relay really publishes: each create, replace and delete lands on
// NATS JetStream under its channel's subject, with a payload and headers its schemas take.
import assert from 'node:assert/strict'
import { it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { jetstreamManager } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'
import { BOOK_EVENTS } from '../../../src/books/events.ts'
import { startRelay } from '../../../src/events/relay.ts'
import { createLogger } from '../../../src/logger.ts'
import { EVENTS } from '../../../src/resources.ts'
import { assertValid, channelAt, document, schemasOf, writeEachChange } from '../../helpers/asyncapi.ts'
import { describe } from '../../helpers/describe.ts'
import { natsMissing, natsSettings, startNats } from '../../helpers/nats.ts'
import { type Json, startService } from '../../helpers/service.ts'

describe('the AsyncAPI document against NATS', { skip: natsMissing() }, () => {
  it('when the relay publishes a create, a replace and a delete, then each message matches its channel', async () => {
    const nats = await startNats()
    const service = await startService('embedded')
    const client = await connect({ servers: nats.url })
    const relay = startRelay({
      catalog: EVENTS,
      database: service.database,
      nats: natsSettings(nats.url),
      logger: createLogger('silent'),
    })
    try {
      const bookId = await writeEachChange(service)
      const jsm = await jetstreamManager(client)
      // Bounded: 100 × 100 ms for the relay to create the stream and publish the three events.
      let stored = 0
      for (let attempt = 0; attempt < 100 && stored < 3; attempt++) {
        stored = await jsm.streams.info(BOOK_EVENTS.stream.name).then(
          (info) => info.state.messages,
          () => 0,
        )
        if (stored < 3) await sleep(100)
      }
      assert.equal(stored, 3)
      const subjects: string[] = []
      for (let seq = 1; seq <= 3; seq++) {
        const message = await jsm.streams.getMessage(BOOK_EVENTS.stream.name, { seq })
        assert.ok(message)
        subjects.push(message.subject)
        const event = message.json<Json>()
        assert.equal(event.subject, bookId)
        const schemas = schemasOf(channelAt(document, message.subject)).get(event.type)
        assertValid(schemas?.payload, event, `the payload on ${message.subject}`)
        const headers = Object.fromEntries(message.header.keys().map((key) => [key, message.header.get(key)]))
        assertValid(schemas?.headers, headers, `the headers on ${message.subject}`)
        assert.equal(headers['Nats-Msg-Id'], event.id)
      }
      assert.deepEqual(subjects, ['books.created', 'books.updated', 'books.deleted'])
    } finally {
      await relay.stop()
      await client.close()
      await service.close()
      await nats.remove()
    }
  })
})
