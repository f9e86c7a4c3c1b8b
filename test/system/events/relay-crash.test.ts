// The relay when PostgreSQL crashes mid-batch (pg_ctl stop -m immediate) under about 100 writes/s: the batch that
// had published to NATS but not yet committed its "published" mark is re-sent after recovery and JetStream drops
// it by event id, so a durable consumer gets every acknowledged write once, nothing of a refused one, and each
// book's versions in order; writes during the outage are refused with 503, never 500.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { after, before, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { AckPolicy, type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import postgres from 'postgres'
import { BOOK_EVENTS, type BookEvent } from '../../../src/books/events.ts'
import { DATABASE_RETRY_AFTER_SECONDS } from '../../../src/db/errors.ts'
import { OUTBOX_SQL } from '../../../src/events/outbox.ts'
import { type RelayedBatch, startRelay } from '../../../src/events/relay.ts'
import { createLogger } from '../../../src/logger.ts'
import { EVENTS } from '../../../src/resources.ts'
import { describe } from '../../helpers/describe.ts'
import { natsMissing, natsSettings, startNats, type TestNats } from '../../helpers/nats.ts'
import { bodyOf, jsonRequest, startService, type TestService } from '../../helpers/service.ts'
import {
  startThrowawayPostgres,
  type ThrowawayPostgres,
  throwawayPostgresMissing,
} from '../../helpers/throwaway-postgres.ts'
import { until as untilEvery } from '../../helpers/tools.ts'

const RUN_MS = 14_000
const CRASH_AT_MS = 3000
const OUTAGE_MS = 4000
const WRITE_EVERY_MS = 10
const MAX_IN_FLIGHT = 64

/** Polled every 20 ms: the outage's figures are timed by it. */
const until = <T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>) =>
  untilEvery(what, timeoutMs, probe, 20)
const book = (n: number) => ({ title: `Crash ${n}`, author: 'Iain M. Banks', published_date: '1987-04-01' })
const writeOf = (event: BookEvent) => Number(String(event.data.title).replace('Crash ', ''))

interface Received {
  id: string
  book: string
  version: number
  write: number
  time: number
  at: number
}

interface Answer {
  status: number
  retryAfter: string | null
  contentType: string | null
}

const skip = natsMissing() || throwawayPostgresMissing()

describe('the outbox relay when PostgreSQL crashes mid-batch', { skip }, () => {
  let database: ThrowawayPostgres
  let nats: TestNats
  let service: TestService
  let client: NatsConnection
  let jsm: JetStreamManager
  before(async () => {
    database = await startThrowawayPostgres()
    nats = await startNats()
    service = await startService('postgres', {
      DATABASE_URL: database.url,
      DB_CONNECT_TIMEOUT: '1s',
      DB_QUERY_TIMEOUT: '2s',
      DB_POOL_MAX: '8',
    })
    client = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 250 })
    jsm = await jetstreamManager(client)
  })
  after(async () => {
    await client?.close()
    await service?.close()
    await nats?.remove()
    await database?.destroy()
  })

  it('when PostgreSQL crashes between a batch published and its mark committed, then the re-sent batch is dropped by id, every acknowledged write arrives once and in order, and none of a refused one', async (t) => {
    const batches: RelayedBatch[] = []
    const relayLogs: { message?: string; err?: { code?: string; message?: string } }[] = []
    const relayLogger = createLogger('warn', { write: (line: string) => void relayLogs.push(JSON.parse(line)) })
    const relay = startRelay({
      catalog: EVENTS,
      database: service.database,
      nats: natsSettings(nats.url),
      logger: relayLogger,
      onBatch: (batch) => batches.push(batch),
    })
    // The test's own connections to the throwaway server: one holds the row lock, one watches the relay wait on it.
    const sql = postgres(database.url, { max: 2, onnotice: () => {} })
    try {
      await until(
        'the BOOKS stream',
        5000,
        async () => (await jsm.streams.info(BOOK_EVENTS.stream.name)).config.subjects,
      )
      await jsm.consumers.add(BOOK_EVENTS.stream.name, { durable_name: 'crash-test', ack_policy: AckPolicy.Explicit })
      const consumer = await jetstream(client).consumers.get(BOOK_EVENTS.stream.name, 'crash-test')
      const received: Received[] = []
      const messages = await consumer.consume()
      void (async () => {
        for await (const message of messages) {
          const event = message.json<BookEvent>()
          received.push({
            id: message.headers?.get('Nats-Msg-Id') ?? '',
            book: event.subject,
            version: event.bookversion,
            write: writeOf(event),
            time: Date.parse(event.time),
            at: performance.now(),
          })
          message.ack()
        }
      })()

      const books: string[] = []
      const acknowledged = new Set<number>()
      const refused = new Map<number, Answer>()
      const transportFailures: string[] = []
      const inFlight = new Set<Promise<void>>()
      let sent = 0
      const write = async (n: number) => {
        const target = n % 3 === 0 || books.length === 0 ? undefined : books[n % books.length]
        try {
          const response =
            target === undefined
              ? await service.fetch('/v1/books', jsonRequest('POST', book(n)))
              : await service.fetch(`/v1/books/${target}`, jsonRequest('PUT', book(n)))
          if (response.status >= 300) {
            refused.set(n, {
              status: response.status,
              retryAfter: response.headers.get('retry-after'),
              contentType: response.headers.get('content-type'),
            })
            await response.arrayBuffer()
            return
          }
          acknowledged.add(n)
          const written = await bodyOf(response)
          if (target === undefined) books.push(written.id)
        } catch (error) {
          transportFailures.push(`${n}: ${(error as Error).message}`)
        }
      }

      // The relay holds its "published" mark for about a millisecond between the last publish and the commit: too
      // short to aim a crash at. A row lock held by the test stretches that moment: the relay publishes its batch,
      // then its UPDATE waits on the lock, and the crash lands while it waits.
      const crash = {
        lockedId: '',
        unmarked: [] as string[],
        serverLog: '',
        startedAt: 0,
        crashedWall: 0,
        restartedAt: 0,
        waitedMs: 0,
        outageMs: 0,
      }
      const outage = async () => {
        const locker = await sql.reserve()
        const observer = await sql.reserve()
        try {
          await locker`BEGIN`
          const [{ pid: lockerPid } = { pid: 0 }] = await locker<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`
          const [locked] = await until('an unpublished row to lock', 5000, async () => {
            const rows = await locker<{ id: string }[]>`
              SELECT id FROM outbox WHERE published_at IS NULL ORDER BY position DESC LIMIT 1 FOR UPDATE`
            return rows.length > 0 ? rows : undefined
          })
          crash.lockedId = locked?.id as string
          const lockedAt = performance.now()
          await until('the relay waiting on the row lock', 5000, async () => {
            const rows = await observer`
              SELECT pid FROM pg_stat_activity
              WHERE wait_event_type = 'Lock' AND query = ${OUTBOX_SQL.markPublished}
                AND ${lockerPid}::int = ANY(pg_blocking_pids(pid))`
            return rows.length > 0 ? true : undefined
          })
          crash.waitedMs = performance.now() - lockedAt
          const [{ folder } = { folder: '' }] = await observer<{ folder: string }[]>`
            SELECT current_setting('data_directory') AS folder`
          // The throwaway cluster logs next to its data folder.
          crash.serverLog = join(dirname(folder), 'log')
          // The rows not marked at the crash: the relay's batch (all published) and the writes since it was read.
          crash.unmarked = (
            await observer<{ id: string }[]>`SELECT id FROM outbox WHERE published_at IS NULL ORDER BY position`
          ).map((row) => row.id)
        } finally {
          // Back to the pool with its transaction still open: the lock holds until the crash ends it.
          locker.release()
          observer.release()
        }
        crash.startedAt = performance.now()
        crash.crashedWall = Date.now()
        await database.crash()
        await sleep(OUTAGE_MS)
        await database.start()
        crash.restartedAt = performance.now()
        crash.outageMs = crash.restartedAt - crash.startedAt
      }

      const started = performance.now()
      let crashed: Promise<void> | undefined
      // Bounded: RUN_MS of one write every WRITE_EVERY_MS on a fixed schedule, at most MAX_IN_FLIGHT outstanding.
      for (let slot = 0; performance.now() - started < RUN_MS; slot++) {
        if (inFlight.size < MAX_IN_FLIGHT) {
          const request = write(sent++).finally(() => inFlight.delete(request))
          inFlight.add(request)
        }
        if (crashed === undefined && performance.now() - started > CRASH_AT_MS) crashed = outage()
        await sleep(Math.max(0, started + (slot + 1) * WRITE_EVERY_MS - performance.now()))
      }
      await Promise.all(inFlight)
      await crashed
      await sql.end({ timeout: 1 })

      const check = postgres(database.url, { max: 1, onnotice: () => {} })
      let committed: { id: string; published: boolean }[]
      try {
        committed = await until('every event received', 30_000, async () => {
          const rows = await check<{ id: string; published: boolean }[]>`
            SELECT id, published_at IS NOT NULL AS published FROM outbox ORDER BY position`
          return new Set(received.map((message) => message.id)).size >= rows.length ? rows : undefined
        })
        // Long enough for a redelivery or a late duplicate to show.
        await sleep(1000)
        messages.stop()
        committed = await check<{ id: string; published: boolean }[]>`
          SELECT id, published_at IS NOT NULL AS published FROM outbox ORDER BY position`
      } finally {
        await check.end()
      }

      const receivedIds = received.map((message) => message.id)
      const distinct = new Set(receivedIds)
      // No batch can take the lock while the database is down: the first after the crash is the first after the
      // restart, and what arrived before it and was unmarked at the crash came of the batch the crash cut short.
      const firstAfter = batches.find((batch) => batch.lockedAt > crash.startedAt)
      const resumedAt = firstAfter?.lockedAt ?? Number.POSITIVE_INFINITY
      const receivedBefore = new Set(received.filter((message) => message.at < resumedAt).map((message) => message.id))
      const resentExpected = crash.unmarked.filter((id) => receivedBefore.has(id))
      const resent = batches.reduce((sum, batch) => sum + batch.duplicates, 0)
      const backlog = received.filter((message) => message.time < crash.crashedWall)
      const drainedMs = Math.max(...backlog.map((message) => message.at)) - crash.restartedAt
      const resumedMs = resumedAt - crash.restartedAt
      const recovered = /not properly shut down; automatic recovery in progress/.test(
        readFileSync(crash.serverLog, 'utf8'),
      )
      const relayFailure = relayLogs.find((line) => line.message === 'could not relay events; retrying')?.err
      const arrivedWrites = new Set(received.map((message) => message.write))
      const lost = [...acknowledged].filter((n) => !arrivedWrites.has(n))
      const ghosts = [...arrivedWrites].filter((n) => !acknowledged.has(n))
      const byBook = new Map<string, number[]>()
      for (const { book, version } of received) byBook.set(book, [...(byBook.get(book) ?? []), version])
      const outOfOrder = [...byBook.values()].filter((versions) => versions.some((v, i) => v !== i + 1))
      const statuses = new Map<number, number>()
      for (const { status } of refused.values()) statuses.set(status, (statuses.get(status) ?? 0) + 1)
      const rate = sent / (RUN_MS / 1000)

      t.diagnostic(
        `crash: sent ${sent} writes (${rate.toFixed(0)}/s), acknowledged ${acknowledged.size}, refused ` +
          `${JSON.stringify(Object.fromEntries(statuses))}; relay waited on the lock after ${crash.waitedMs.toFixed(0)} ms, ` +
          `failed with ${relayFailure?.code}; outage ${crash.outageMs.toFixed(0)} ms; events ${committed.length}, ` +
          `received ${received.length} (${distinct.size} ids); published before the crash but unmarked ` +
          `${resentExpected.length}, re-sent and dropped as duplicates ${resent}; relay resumed ` +
          `${resumedMs.toFixed(0)} ms (WAL recovery ${recovered ? 'ran' : 'did not run'}) and backlog drained ${drainedMs.toFixed(0)} ms after the restart; ` +
          `lost ${lost.length}, events of refused writes ${ghosts.length}, books out of order ${outOfOrder.length}`,
      )

      assert.deepEqual(transportFailures, [], 'every request is answered')
      assert.ok(rate >= 60, `about 100 writes/s (${rate.toFixed(0)})`)
      assert.ok(crash.outageMs >= OUTAGE_MS)
      assert.ok(refused.size > 0, 'writes during the outage are refused')
      for (const [n, answer] of refused) {
        assert.equal(answer.status, 503, `write ${n}`)
        assert.equal(answer.contentType, 'application/problem+json; charset=utf-8', `write ${n}`)
        assert.equal(answer.retryAfter, String(DATABASE_RETRY_AFTER_SECONDS), `write ${n}`)
      }

      // The crash hit the relay's transaction, not its own deadline, with a batch on NATS and unmarked, and the
      // server came back through WAL recovery.
      assert.ok(recovered, 'PostgreSQL ran crash recovery on restart')
      assert.ok(relayFailure !== undefined, 'the relay saw its batch fail')
      assert.notEqual(relayFailure.code, 'QUERY_TIMEOUT', `the relay failed with ${relayFailure.message}`)
      assert.ok(resentExpected.includes(crash.lockedId), 'the locked row had been published before the crash')
      assert.ok(firstAfter !== undefined, 'the relay published after the restart')
      assert.equal(resent, resentExpected.length, 'JetStream dropped exactly the re-sent batch')
      assert.deepEqual(firstAfter.eventIds.slice(0, resentExpected.length), resentExpected)

      assert.equal(received.length, distinct.size, 'the consumer gets each event once')
      assert.deepEqual(
        [...distinct].sort(),
        committed.map((row) => row.id).sort(),
        'the consumer gets every committed event',
      )
      assert.ok(
        committed.every((row) => row.published),
        'every row is marked published',
      )
      assert.deepEqual(lost, [], 'every acknowledged write arrives')
      assert.deepEqual(ghosts, [], 'no refused write arrives')
      assert.deepEqual(outOfOrder.slice(0, 3), [], "each book's versions arrive in order, none missing")
    } finally {
      await sql.end({ timeout: 1 }).catch(() => {})
      await relay.stop()
    }
  })
})
