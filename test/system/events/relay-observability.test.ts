// The relay's observability against a real nats-server -js, on both backends: the outbox gauges count what waits
// and how long, from a query that reads the partial index and never holds up /metrics; failed publishes are counted
// by reason; each published event's lag is measured; and with tracing on each publish is a PRODUCER span, a child of
// the request's span, whose context the NATS message carries for a consumer to continue (exported to a real OTLP
// receiver).
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { after, before, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
} from '@nats-io/jetstream'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { propagation, ROOT_CONTEXT, SpanKind, trace } from '@opentelemetry/api'
import { BOOK_EVENTS, type BookEvent } from '../../../src/books/events.ts'
import { DEPTH_BOUND, OUTBOX_SQL } from '../../../src/events/outbox.ts'
import { EVENTS } from '../../../src/resources.ts'
import { describe } from '../../helpers/describe.ts'
import { natsMissing, startNats, type TestNats } from '../../helpers/nats.ts'
import { attribute, otlpReceiver } from '../../helpers/otlp-receiver.ts'
import {
  BACKENDS,
  type Backend,
  bodyOf,
  jsonRequest,
  skipReason,
  startService,
  type TestService,
} from '../../helpers/service.ts'
import { PROMTOOL, programMissing, until } from '../../helpers/tools.ts'

/** OTLP's SpanKind value of a PRODUCER span. */
const PRODUCER_KIND = 4
const book = (n: number) => ({ title: `Observed ${n}`, author: 'Ursula K. Le Guin', published_date: '1969-03-01' })

/** The value of one sample line in Prometheus text, undefined when the series is absent. */
function sampleOf(text: string, series: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

/** GET /metrics over HTTP: its status, text and how long it took. */
async function scrape(service: TestService): Promise<{ status: number; text: string; ms: number }> {
  const started = performance.now()
  const response = await fetch(`${service.baseUrl}/metrics`)
  const text = await response.text()
  return { status: response.status, text, ms: performance.now() - started }
}

/** The app as src/server.ts wires it, on a fresh database, with the events background (relay, gauges) running. */
const startRelayedService = (backend: Backend, env: Record<string, string>) =>
  startService(backend, env, { events: true })

/** What `promtool check metrics` says about a scrape: empty when it finds nothing wrong. */
async function promtoolVerdict(text: string): Promise<string> {
  const child = spawn(PROMTOOL, ['check', 'metrics'])
  let output = ''
  child.stdout.on('data', (chunk) => {
    output += chunk
  })
  child.stderr.on('data', (chunk) => {
    output += chunk
  })
  child.stdin.end(text)
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
  return code === 0 ? output.trim() : `exit ${code}: ${output}`
}

const gauges = (text: string) => ({
  depth: sampleOf(text, 'events_outbox_depth'),
  age: sampleOf(text, 'events_outbox_oldest_unpublished_age_seconds'),
})

const skipNats = natsMissing()

// Tests run one after another: the tracer provider is global to the process.
for (const backend of BACKENDS) {
  describe(`the outbox gauges and relay metrics on ${backend}`, {
    skip: skipNats || (await skipReason(backend)),
  }, () => {
    let nats: TestNats
    before(async () => {
      nats = await startNats()
    })
    after(() => nats?.remove())

    it('when changes are written while NATS is down, then the gauges show how many wait and for how long, and the failed attempts count; once NATS is back, the gauges fall to 0 and each lag is measured', async () => {
      await nats.stop()
      let natsDown = true
      const service = await startRelayedService(backend, { NATS_URL: nats.url })
      try {
        const first = await scrape(service)
        assert.equal(first.status, 200)
        assert.deepEqual(gauges(first.text), { depth: 0, age: 0 })
        for (const reason of ['unreachable', 'timeout', 'refused', 'other']) {
          assert.notEqual(sampleOf(first.text, `events_publish_errors_total{reason="${reason}"}`), undefined, reason)
        }

        for (let n = 0; n < 3; n++) {
          assert.equal((await service.fetch('/v1/books', jsonRequest('POST', book(n)))).status, 201)
        }
        const waiting = gauges((await scrape(service)).text)
        assert.equal(waiting.depth, 3)
        assert.ok((waiting.age ?? 0) > 0, `age ${waiting.age}`)
        await sleep(1200)
        const later = await scrape(service)
        const { depth, age } = gauges(later.text)
        assert.equal(depth, 3)
        assert.ok((age ?? 0) >= (waiting.age ?? 0) + 1, `age ${waiting.age} s, then ${age} s`)
        assert.ok((sampleOf(later.text, 'events_publish_errors_total{reason="unreachable"}') ?? 0) >= 1)
        assert.equal(sampleOf(later.text, 'events_relay_lag_seconds_count'), 0)

        await nats.start()
        natsDown = false
        // A scrape takes the histogram as it starts and the gauges once the database answers: one that comes as
        // the batch commits may show the outbox drained before the lags are in.
        const drained = await until('the outbox drained and the lags measured', 15_000, async () => {
          const { text } = await scrape(service)
          return gauges(text).depth === 0 && sampleOf(text, 'events_relay_lag_seconds_count') === 3 ? text : undefined
        })
        assert.equal(gauges(drained).age, 0)
        // Each waited over a second before JetStream had it: the lag says so, from the write, not from the read.
        assert.equal(sampleOf(drained, 'events_relay_lag_seconds_bucket{le="1"}'), 0)
        assert.ok((sampleOf(drained, 'events_relay_lag_seconds_sum') ?? 0) >= 3 * ((age ?? 0) - 0.5))
        if (!programMissing(PROMTOOL, 'apt-get install prometheus')) assert.equal(await promtoolVerdict(drained), '')

        // With the relay keeping up, the next one is measured within a poll or so.
        assert.equal((await service.fetch('/v1/books', jsonRequest('POST', book(3)))).status, 201)
        const quick = await until('the fourth event measured', 10_000, async () => {
          const { text } = await scrape(service)
          return sampleOf(text, 'events_relay_lag_seconds_count') === 4 ? text : undefined
        })
        const within = (text: string) => sampleOf(text, 'events_relay_lag_seconds_bucket{le="2.5"}') ?? 0
        assert.equal(within(quick) - within(drained), 1)
        assert.deepEqual(gauges(quick), { depth: 0, age: 0 })
      } finally {
        await service.close()
        if (natsDown) await nats.start()
      }
    })

    it('when the database does not answer within the scrape, then /metrics answers anyway without the outbox gauges, and has them again after', async () => {
      const service = await startRelayedService(backend, { NATS_URL: nats.url })
      try {
        assert.deepEqual(gauges((await scrape(service)).text), { depth: 0, age: 0 })
        // The embedded database has one connection, which a transaction holds throughout (as a relay batch that
        // waits on NATS does); on the server, a lock on the table stands in the way of the count.
        let held = false
        const hold = service.database.transaction(async (tx) => {
          if (backend === 'postgres') await tx.query('LOCK TABLE outbox IN ACCESS EXCLUSIVE MODE')
          else await tx.query('SELECT 1')
          held = true
          await sleep(4500)
        })
        await until('the hold', 2000, async () => (held ? true : undefined))
        const blocked = await scrape(service)
        assert.equal(blocked.status, 200)
        assert.ok(blocked.ms < 2000, `the scrape took ${blocked.ms.toFixed(0)} ms`)
        assert.deepEqual(gauges(blocked.text), { depth: undefined, age: undefined })
        assert.match(blocked.text, /^# TYPE events_outbox_depth gauge$/m)
        assert.match(blocked.text, /^http_request_duration_seconds_count\{/m)
        // Later scrapes while the first reading still waits share it: no second query queues up. In flight: that
        // reading, and on the server the relay's batch statement behind the same lock.
        for (let n = 0; n < 2; n++) {
          const again = await scrape(service)
          assert.equal(again.status, 200)
          assert.equal(gauges(again.text).depth, undefined)
          const inFlight = sampleOf(again.text, 'db_queries_in_flight') ?? 0
          assert.ok(inFlight >= 1 && inFlight <= (backend === 'postgres' ? 2 : 1), `${inFlight} statements in flight`)
        }
        await hold
        assert.deepEqual(gauges((await scrape(service)).text), { depth: 0, age: 0 })
      } finally {
        await service.close()
      }
    })

    it('when the outbox is read for a scrape, then both parts of the query use the partial index of the unpublished rows', async () => {
      // No relay: the rows stay as written. Most events published and a few waiting, as a running service has them.
      const service = await startService(backend)
      try {
        await service.database.query(
          `INSERT INTO outbox (id, aggregate_type, aggregate_id, aggregate_version, type, data, published_at)
           SELECT gen_random_uuid(), 'book', gen_random_uuid(), 1, 'dev.myapp.book.created.v1', '{}'::jsonb,
                  CASE WHEN n <= 5000 THEN now() END
           FROM generate_series(1, 5005) AS n`,
        )
        await service.database.query('ANALYZE outbox')
        const [plan] = await service.database.query<Record<string, unknown>>(
          `EXPLAIN (FORMAT JSON) ${OUTBOX_SQL.backlog}`,
          [DEPTH_BOUND],
        )
        const text = JSON.stringify(plan)
        assert.equal(text.match(/"Index Name":\s*"outbox_unpublished_idx"/g)?.length, 2, text)
        assert.doesNotMatch(text, /Seq Scan/)
        const [backlog] = await service.database.query<{ depth: number; oldest_age_seconds: number }>(
          OUTBOX_SQL.backlog,
          [DEPTH_BOUND],
        )
        assert.equal(backlog?.depth, 5)
        assert.ok((backlog?.oldest_age_seconds ?? -1) >= 0)
      } finally {
        await service.close()
      }
    })
  })
}

describe('the relay against a stream that refuses', { skip: skipNats || (await skipReason('postgres')) }, () => {
  let nats: TestNats
  let client: NatsConnection
  let jsm: JetStreamManager
  before(async () => {
    nats = await startNats()
    client = await connect({ servers: nats.url })
    jsm = await jetstreamManager(client)
  })
  after(async () => {
    await client?.close()
    await nats?.remove()
  })

  it('when the stream is full, then each refused publish is counted as refused and the events wait; once it has room, they flow', async () => {
    const service = await startRelayedService('postgres', { NATS_URL: nats.url })
    try {
      await until('the BOOKS stream', 5000, async () => (await jsm.streams.info(BOOK_EVENTS.stream.name)).config.name)
      // This server's stream starts empty: with room for one message, the second is refused.
      await jsm.streams.update(BOOK_EVENTS.stream.name, { max_msgs: 1, discard: DiscardPolicy.New })
      assert.equal((await service.fetch('/v1/books', jsonRequest('POST', book(100)))).status, 201)
      await until('the first event in', 5000, async () =>
        (await jsm.streams.info(BOOK_EVENTS.stream.name)).state.messages === 1 ? true : undefined,
      )
      for (let n = 0; n < 2; n++) {
        assert.equal((await service.fetch('/v1/books', jsonRequest('POST', book(n)))).status, 201)
      }
      const refused = await until('refusals counted', 10_000, async () => {
        const { text } = await scrape(service)
        return (sampleOf(text, 'events_publish_errors_total{reason="refused"}') ?? 0) >= 2 ? text : undefined
      })
      assert.equal(gauges(refused).depth, 2)
      assert.equal(sampleOf(refused, 'events_publish_errors_total{reason="unreachable"}'), 0)

      await jsm.streams.update(BOOK_EVENTS.stream.name, { max_msgs: -1 })
      const flowed = await until('the outbox drained', 15_000, async () => {
        const { text } = await scrape(service)
        return gauges(text).depth === 0 ? text : undefined
      })
      assert.equal(gauges(flowed).age, 0)
      assert.equal((await jsm.streams.info(BOOK_EVENTS.stream.name)).state.messages, 3)
    } finally {
      await service.close()
    }
  })
})

describe('a publish span per event', { skip: skipNats || (await skipReason('postgres')) }, () => {
  let nats: TestNats
  let client: NatsConnection
  let jsm: JetStreamManager
  before(async () => {
    nats = await startNats()
    client = await connect({ servers: nats.url })
    jsm = await jetstreamManager(client)
  })
  after(async () => {
    await client?.close()
    await nats?.remove()
  })

  /** The next message on books.created after now, from a durable consumer of its own. */
  async function nextCreated(name: string, write: () => Promise<void>) {
    await jsm.consumers.add(BOOK_EVENTS.stream.name, {
      durable_name: name,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.New,
      filter_subject: 'books.created',
    })
    const consumer = await jetstream(client).consumers.get(BOOK_EVENTS.stream.name, name)
    await write()
    const message = await consumer.next({ expires: 10_000 })
    assert.ok(message, 'a message within 10 s')
    message.ack()
    return { traceparent: message.headers?.get('traceparent'), event: message.json<BookEvent>() }
  }

  it('when a traced request creates a book, then a PRODUCER span under the request span publishes its event, the message names that span, and a consumer continues from it', async () => {
    const receiver = await otlpReceiver()
    const service = await startRelayedService('postgres', {
      NATS_URL: nats.url,
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_SERVICE_NAME: 'myapp-test',
      // Every trace without a parent recorded: a statement traced outside any request would be exported.
      OTEL_TRACES_SAMPLER: 'parentbased_always_on',
    })
    try {
      await until('the BOOKS stream', 5000, async () => (await jsm.streams.info(BOOK_EVENTS.stream.name)).config.name)
      const traceId = '5af7183fb1d4cf5f87ff4a8bdc5c2a10'
      const callerSpanId = '0102030405060708'
      let created: { id: string } | undefined
      const received = await nextCreated('traced', async () => {
        const response = await service.fetch(
          '/v1/books',
          jsonRequest('POST', book(1), { traceparent: `00-${traceId}-${callerSpanId}-01` }),
        )
        assert.equal(response.status, 201)
        created = await bodyOf(response)
      })
      assert.equal(received.event.subject, created?.id)

      // The envelope keeps the request's span; the header names another span of the same trace.
      const request = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(received.event.traceparent ?? '')
      assert.ok(request, `the envelope's traceparent: ${received.event.traceparent}`)
      assert.equal(request[1], traceId)
      const header = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(received.traceparent ?? '')
      assert.ok(header, `the header's traceparent: ${received.traceparent}`)
      assert.equal(header[1], traceId)
      assert.notEqual(header[2], request[2])

      // The consumer's side, as any OpenTelemetry consumer would write it: continue from the message's header.
      const consumerContext = propagation.extract(ROOT_CONTEXT, { traceparent: received.traceparent })
      trace
        .getTracer('a-consumer')
        .startSpan('process books.created', { kind: SpanKind.CONSUMER }, consumerContext)
        .end()

      // The message may arrive before the relay has its acknowledgement, and so before the publish span ends.
      const publish = await until('the publish span exported', 5000, async () => {
        await service.tracing?.forceFlush()
        return receiver.spans.find((span) => span.spanId === header[2])
      })
      const inTrace = receiver.spans.filter((span) => span.traceId === traceId)
      const server = inTrace.find((span) => span.spanId === request[2])
      assert.ok(server, `the request's span: ${JSON.stringify(inTrace.map((span) => span.name))}`)
      assert.equal(server.name, 'POST /v1/books')
      assert.equal(server.parentSpanId, callerSpanId)

      assert.equal(publish.traceId, traceId)
      assert.equal(publish.kind, PRODUCER_KIND)
      assert.equal(publish.name, 'publish books.created')
      assert.equal(publish.parentSpanId, server.spanId)
      assert.equal(attribute(publish, 'messaging.system'), 'nats')
      assert.equal(attribute(publish, 'messaging.system.name'), 'nats')
      assert.equal(attribute(publish, 'messaging.destination.name'), 'books.created')
      assert.equal(attribute(publish, 'messaging.message.id'), received.event.id)
      assert.equal(attribute(publish, 'messaging.operation.name'), 'publish')
      assert.equal(attribute(publish, 'messaging.operation.type'), 'send')
      assert.equal(attribute(publish, 'cloudevents.event_type'), 'dev.myapp.book.created.v1')

      const processing = inTrace.find((span) => span.name === 'process books.created')
      assert.ok(processing, "the consumer's span")
      assert.equal(processing.parentSpanId, publish.spanId)

      // The batches' own statements, several a second while idle, are no traces of their own.
      const batchStatements = receiver.spans.filter((span) =>
        /pg_try_advisory_xact_lock|published_at IS NULL/.test(String(attribute(span, 'db.query.text'))),
      )
      assert.deepEqual(
        batchStatements.map((span) => span.name),
        [],
      )
    } finally {
      await service.close()
      receiver.server.close()
    }
  })

  it('when the request was not sampled, then no publish span is exported and the message carries the unsampled trace on', async () => {
    const receiver = await otlpReceiver()
    const service = await startRelayedService('postgres', {
      NATS_URL: nats.url,
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    })
    try {
      await until('the BOOKS stream', 5000, async () => (await jsm.streams.info(BOOK_EVENTS.stream.name)).config.name)
      const traceId = '6bf7183fb1d4cf5f87ff4a8bdc5c2a11'
      const received = await nextCreated('unsampled', async () => {
        const response = await service.fetch(
          '/v1/books',
          jsonRequest('POST', book(2), { traceparent: `00-${traceId}-0102030405060709-00` }),
        )
        assert.equal(response.status, 201)
      })
      const header = /^00-([0-9a-f]{32})-([0-9a-f]{16})-00$/.exec(received.traceparent ?? '')
      assert.ok(header, `the header's traceparent: ${received.traceparent}`)
      assert.equal(header[1], traceId)
      // Marked published once acknowledged, so after its publish span (had it been recorded) ended.
      await until('the event marked published', 5000, async () => {
        const [row] = await service.database.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM outbox WHERE published_at IS NULL',
        )
        return row?.n === 0 ? true : undefined
      })
      await service.tracing?.forceFlush()
      assert.deepEqual(
        receiver.spans.filter((span) => span.traceId === traceId).map((span) => span.name),
        [],
      )
    } finally {
      await service.close()
      receiver.server.close()
    }
  })
})
