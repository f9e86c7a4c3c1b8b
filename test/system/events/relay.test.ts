// The relay against a real nats-server -js: every committed change reaches a durable consumer once by event id
// and nothing comes of a refused write; NATS stopped for 10 s under about 100 writes/s loses nothing, duplicates
// nothing, keeps each book's order, measures each event's lag once and counts the reconnect attempts; of two
// relays on one database one publishes at a time, and the other takes over when it stops.
import assert from 'node:assert/strict'
import { after, before, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { AckPolicy, type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { BOOK_EVENTS, type BookEvent } from '../../../src/books/events.ts'
import { parseConfig } from '../../../src/config/config.ts'
import type { Database } from '../../../src/db/database.ts'
import { openDatabase } from '../../../src/db/open.ts'
import type { EventRow } from '../../../src/events/cloudevents.ts'
import { type RelayedBatch, startRelay } from '../../../src/events/relay.ts'
import { createLogger } from '../../../src/logger.ts'
import { createMetrics, type Metrics } from '../../../src/observability/metrics.ts'
import { EVENTS } from '../../../src/resources.ts'
import { describe } from '../../helpers/describe.ts'
import { natsMissing, natsSettings, startNats, type TestNats } from '../../helpers/nats.ts'
import { bodyOf, jsonRequest, skipReason, startService, type TestService } from '../../helpers/service.ts'
import { until } from '../../helpers/tools.ts'

const logger = createLogger('silent')
/** The relay's settings as NATS_URL alone makes them. */
const book = (n: number) => ({ title: `Relayed ${n}`, author: 'Iain M. Banks', published_date: '1987-04-01' })

interface Stored {
  seq: number
  msgId: string | undefined
  subject: string
  event: BookEvent
}

/** Every message in the stream, in stream order. */
async function streamContents(jsm: JetStreamManager): Promise<Stored[]> {
  const { state } = await jsm.streams.info(BOOK_EVENTS.stream.name)
  const stored: Stored[] = []
  for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq++) {
    const message = await jsm.streams.getMessage(BOOK_EVENTS.stream.name, { seq })
    if (message === null) continue
    stored.push({
      seq,
      msgId: message.header.get('Nats-Msg-Id'),
      subject: message.subject,
      event: message.json<BookEvent>(),
    })
  }
  return stored
}

/** The upper bound of the histogram bucket the q-quantile of the relay lag falls in, and how many were observed. */
async function lagQuantiles(metrics: Metrics, quantiles: number[]) {
  const { values } = await metrics.eventsRelayLag.get()
  const buckets = values
    .filter((value) => value.metricName === 'events_relay_lag_seconds_bucket')
    .map((value) => ({ le: Number(value.labels.le), count: value.value }))
  const count = buckets.at(-1)?.count ?? 0
  return {
    count,
    bounds: quantiles.map((q) => buckets.find((bucket) => bucket.count >= q * count)?.le ?? Number.NaN),
  }
}

const eventCount = async (database: Database) =>
  (await database.query<{ n: number }>('SELECT count(*)::int AS n FROM outbox'))[0]?.n ?? 0

const skip = natsMissing() || (await skipReason('postgres'))

describe('the outbox relay to NATS JetStream', { skip }, () => {
  let nats: TestNats
  let service: TestService
  let client: NatsConnection
  let jsm: JetStreamManager
  before(async () => {
    nats = await startNats()
    service = await startService('postgres')
    client = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 250 })
    jsm = await jetstreamManager(client)
  })
  after(async () => {
    await client?.close()
    await service?.close()
    await nats?.remove()
  })

  it('when changes commit, then each reaches a durable consumer once by id, and a refused write sends nothing', async () => {
    const retentionMs = 7 * 24 * 3600_000
    const relay = startRelay({
      database: service.database,
      catalog: EVENTS,
      nats: natsSettings(nats.url),
      logger,
      maxAgeMs: retentionMs,
    })
    try {
      // The relay creates the stream when it first connects, keeping events as long as the outbox does.
      await until(
        'the BOOKS stream',
        5000,
        async () => (await jsm.streams.info(BOOK_EVENTS.stream.name)).config.subjects,
      )
      const { config } = await jsm.streams.info(BOOK_EVENTS.stream.name)
      assert.equal(config.max_age, retentionMs * 1_000_000, 'max_age is the retention, in nanoseconds')
      await jsm.consumers.add(BOOK_EVENTS.stream.name, { durable_name: 'first-test', ack_policy: AckPolicy.Explicit })
      const consumer = await jetstream(client).consumers.get(BOOK_EVENTS.stream.name, 'first-test')
      const received: { id: string; subject: string; event: BookEvent }[] = []
      const messages = await consumer.consume()
      void (async () => {
        for await (const message of messages) {
          received.push({
            id: message.headers?.get('Nats-Msg-Id') ?? '',
            subject: message.subject,
            event: message.json(),
          })
          message.ack()
        }
      })()

      const created = await bodyOf(await service.fetch('/v1/books', jsonRequest('POST', book(1))))
      const put = (ifMatch: string) =>
        service.fetch(`/v1/books/${created.id}`, jsonRequest('PUT', book(2), { 'if-match': ifMatch }))
      assert.equal((await put('"1"')).status, 200)
      assert.equal((await put('"1"')).status, 412, 'a stale If-Match is refused')
      assert.equal((await service.fetch('/v1/books', jsonRequest('POST', { title: 'No author' }))).status, 422)
      assert.equal((await service.fetch(`/v1/books/${created.id}`, { method: 'DELETE' })).status, 204)

      await until('three messages', 5000, async () => (received.length >= 3 ? true : undefined))
      await sleep(500)
      messages.stop()
      const committed = await outboxEvents(service.database, '0')
      assert.deepEqual(
        received.map(({ id, subject, event }) => [id, subject, event.type, event.bookversion]),
        committed.map((event) => [event.id, `books.${event.type.split('.')[3]}`, event.type, event.bookversion]),
      )
      assert.deepEqual(
        received.map(({ subject }) => subject),
        ['books.created', 'books.updated', 'books.deleted'],
      )
      assert.deepEqual(received[0]?.event.data, created)
      const published = await service.database.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM outbox WHERE published_at IS NULL',
      )
      assert.equal(published[0]?.n, 0, 'every row is marked published')
    } finally {
      await relay.stop()
    }
  })

  it('when NATS is stopped for 10 s under about 100 writes/s, then nothing is lost or duplicated, each book keeps its order, each event is measured once and the reconnect attempts are counted', async () => {
    const metrics = createMetrics()
    const relay = startRelay({
      database: service.database,
      catalog: EVENTS,
      nats: natsSettings(nats.url),
      logger,
      metrics,
    })
    try {
      const [{ last } = { last: '0' }] = await service.database.query<{ last: string }>(
        'SELECT coalesce(max(position), 0)::text AS last FROM outbox',
      )
      const before = await eventCount(service.database)
      const firstSeq =
        (await until('the BOOKS stream', 5000, () => jsm.streams.info(BOOK_EVENTS.stream.name))).state.last_seq + 1
      const books: { id: string; version: number }[] = []
      let sent = 0
      let acked = 0
      const failures: number[] = []
      const writes: Promise<void>[] = []
      const write = async (n: number) => {
        sent++
        const target = n % 3 === 0 || books.length === 0 ? undefined : books[n % books.length]
        const response =
          target === undefined
            ? await service.fetch('/v1/books', jsonRequest('POST', book(n)))
            : await service.fetch(`/v1/books/${target.id}`, jsonRequest('PUT', book(n)))
        if (response.status >= 300) {
          failures.push(response.status)
          return
        }
        acked++
        const written = await bodyOf(response)
        if (target === undefined) books.push({ id: written.id, version: 1 })
      }
      const started = Date.now()
      let outage: Promise<void> | undefined
      let stoppedFor = 0
      for (let n = 0; Date.now() - started < 16_000; n++) {
        writes.push(write(n))
        if (outage === undefined && Date.now() - started > 3000) {
          outage = (async () => {
            const stoppedAt = Date.now()
            await nats.stop()
            await sleep(10_000)
            await nats.start()
            stoppedFor = Date.now() - stoppedAt
          })()
        }
        await sleep(10)
      }
      await Promise.all(writes)
      await outage
      const committed = (await eventCount(service.database)) - before
      const stored = await until('every event in the stream', 30_000, async () => {
        const contents = (await streamContents(jsm)).filter((message) => message.seq >= firstSeq)
        return contents.length >= committed ? contents : undefined
      })
      const ids = stored.map((message) => message.msgId)
      const duplicates = ids.length - new Set(ids).size
      const outboxIds = new Set((await outboxEvents(service.database, last)).map((event) => event.id))
      const lost = [...outboxIds].filter((id) => !ids.includes(id)).length
      const byBook = new Map<string, number[]>()
      for (const { event } of stored)
        byBook.set(event.subject, [...(byBook.get(event.subject) ?? []), event.bookversion])
      const outOfOrder = [...byBook.values()].filter((versions) =>
        versions.some((v, i) => i > 0 && v <= (versions[i - 1] as number)),
      )
      const rate = sent / 16
      // Measured once the batch's mark commits, which may come a moment after JetStream has the last of them.
      const lag = await until('every event measured', 5000, async () => {
        const measured = await lagQuantiles(metrics, [0.5, 0.99, 1])
        return measured.count >= committed ? measured : undefined
      })
      const errorCounts = (await metrics.eventsPublishErrors.get()).values
      const unreachable = errorCounts.find((value) => value.labels.reason === 'unreachable')?.value ?? 0
      const errors = errorCounts
        .filter((value) => value.value > 0)
        .map((value) => `${value.labels.reason} ${value.value}`)
      // The figures the README reports.
      console.log(
        `outage: NATS stopped ${stoppedFor} ms; sent ${sent} writes (${rate.toFixed(0)}/s), acked ${acked}, ` +
          `events ${committed}, in stream ${stored.length}, lost ${lost}, duplicates ${duplicates}, ` +
          `books out of order ${outOfOrder.length}; relay lag p50 <= ${lag.bounds[0]} s, p99 <= ${lag.bounds[1]} s, ` +
          `max <= ${lag.bounds[2]} s; publish errors: ${errors.join(', ') || 'none'}`,
      )
      assert.deepEqual(failures, [], 'every write succeeds while NATS is down')
      assert.ok(rate >= 60, `about 100 writes/s (${rate.toFixed(0)})`)
      assert.ok(stoppedFor >= 10_000)
      assert.equal(acked, committed, 'one event per acknowledged write')
      assert.equal(lost, 0)
      assert.equal(duplicates, 0)
      assert.equal(stored.length, committed)
      assert.equal(outOfOrder.length, 0, `bookversions in stream order: ${outOfOrder.slice(0, 3).join(' | ')}`)
      assert.equal(lag.count, committed, 'one lag per event')
      // The client tries to reconnect about once a second; each try while NATS is away counts.
      assert.ok(unreachable >= 5, `${unreachable} attempts counted as unreachable`)
      // The events written during the outage waited for most of it.
      assert.ok((lag.bounds[2] ?? 0) >= 10, `the longest lag is in the bucket up to ${lag.bounds[2]} s`)
    } finally {
      await relay.stop()
    }
  })

  it('when two relays share a database, then one publishes at a time, and the other takes over within 5 s when it stops', async () => {
    const second = await openDatabase(
      parseConfig({ DATABASE_URL: service.serverDatabase?.url as string }).database,
      logger,
    )
    const batches: (RelayedBatch & { relay: string })[] = []
    const relayOn = (name: string, database: Database) =>
      startRelay({
        database,
        catalog: EVENTS,
        nats: natsSettings(nats.url),
        logger,
        onBatch: (batch) => batches.push({ ...batch, relay: name }),
      })
    const a = relayOn('a', service.database)
    const b = relayOn('b', second)
    let bStopped = false
    try {
      const firstSeq =
        (await until('the BOOKS stream', 5000, () => jsm.streams.info(BOOK_EVENTS.stream.name))).state.last_seq + 1
      const write = async (n: number) => {
        const response = await service.fetch('/v1/books', jsonRequest('POST', book(n)))
        assert.equal(response.status, 201)
      }
      for (let n = 0; n < 150; n++) {
        await write(n)
        await sleep(10)
      }
      // One of them stops; which one was publishing last does not matter, the other has to carry on alone.
      const last = batches.at(-1)?.relay ?? 'a'
      const stoppedAt = performance.now()
      await (last === 'a' ? a : b).stop()
      if (last === 'b') bStopped = true
      const survivor = last === 'a' ? 'b' : 'a'
      const writtenAfter = performance.now()
      await write(1000)
      const takeover = await until('a batch of the other relay', 10_000, async () =>
        batches.find((batch) => batch.relay === survivor && batch.lockedAt > writtenAfter),
      )
      const takeoverMs = takeover.committedAt - stoppedAt
      for (let n = 1001; n < 1050; n++) await write(n)
      const stored = await until('every event in the stream', 15_000, async () => {
        const contents = (await streamContents(jsm)).filter((message) => message.seq >= firstSeq)
        return contents.length >= 200 ? contents : undefined
      })
      assert.equal(new Set(stored.map((message) => message.msgId)).size, 200, 'each event once')

      // Without the lock both relays would read the same unpublished rows and publish them twice: JetStream
      // would answer the second as a duplicate, and both relays would report the event.
      const publishedBy = new Map<string, string[]>()
      for (const batch of batches)
        for (const id of batch.eventIds) publishedBy.set(id, [...(publishedBy.get(id) ?? []), batch.relay])
      const twice = [...publishedBy.values()].filter((relays) => relays.length > 1).length
      const duplicateAcks = batches.reduce((sum, batch) => sum + batch.duplicates, 0)
      const byRelay = { a: 0, b: 0 } as Record<string, number>
      for (const batch of batches) byRelay[batch.relay] = (byRelay[batch.relay] ?? 0) + batch.eventIds.length
      console.log(
        `failover: ${batches.length} batches (a: ${byRelay.a} events, b: ${byRelay.b}), published twice ${twice}, ` +
          `duplicate acks ${duplicateAcks}; after ${last} stopped, ${survivor} published within ${takeoverMs.toFixed(0)} ms`,
      )
      assert.equal(publishedBy.size, 200)
      assert.equal(twice, 0)
      assert.equal(duplicateAcks, 0)
      assert.ok(takeoverMs <= 5000, `takeover in ${takeoverMs} ms`)
    } finally {
      await a.stop()
      if (!bStopped) await b.stop()
      await second.close()
    }
  })
})

/**
 * The committed events after a position, in position order, read from the table: the feed would hold back those
 * of transactions younger than one still running anywhere on the shared server.
 */
async function outboxEvents(database: Database, after: string): Promise<BookEvent[]> {
  const rows = await database.query<EventRow>(
    `SELECT position::text AS position, xid::text AS xid, id, type, aggregate_type, aggregate_id, aggregate_version,
            occurred_at, traceparent, data
     FROM outbox WHERE position > $1::bigint ORDER BY outbox.position`,
    [after],
  )
  return rows.map((row) => EVENTS.toCloudEvent(row) as BookEvent)
}
