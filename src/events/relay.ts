// The outbox relay: publishes the book_events rows to NATS JetStream, at least once and in position order, with
// the event id as Nats-Msg-Id so that JetStream's duplicate window drops a re-send. One relay publishes at a time
// across replicas: each batch runs in a transaction that holds an advisory lock, reads the oldest unpublished rows,
// publishes them one after another (a failed one stops the batch, so nothing overtakes it), and marks those
// acknowledged. With NATS unreachable the writes go on; the rows wait, and flow once it is back.
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { type JetStreamClient, jetstream, jetstreamManager, StorageType } from '@nats-io/jetstream'
import {
  type ConnectionOptions,
  connect,
  credsAuthenticator,
  headers,
  type NatsConnection,
  nanos,
} from '@nats-io/transport-node'
import type { EventsConfig } from '../config/events.ts'
import type { Database } from '../db/database.ts'
import type { Logger } from '../logger.ts'
import { type EventRow, subjectOf, toCloudEvent } from './cloudevents.ts'
import { relayBatch } from './outbox.ts'

export const STREAM = 'BOOKS'
export const STREAM_SUBJECTS = ['books.>']
/** How long JetStream remembers an event id: a re-send after a relay's crash or failover falls well within it. */
export const DUPLICATE_WINDOW_MS = 60 * 60_000

const BATCH = 100
const IDLE_MS = 200
const PUBLISH_TIMEOUT_MS = 2000
const MAX_BACKOFF_MS = 5000

export type NatsSettings = NonNullable<EventsConfig['nats']>

/** One batch, as the relay saw it: for tests and measurements. */
export interface RelayedBatch {
  lockedAt: number
  committedAt: number
  eventIds: string[]
  /** Of those, how many JetStream had already (a re-send after a failure, dropped by the duplicate window). */
  duplicates: number
}

export interface RelayOptions {
  database: Database
  nats: NatsSettings
  logger: Logger
  /** Told after each batch that published something, once committed. */
  onBatch?(batch: RelayedBatch): void
}

export interface Relay {
  /** Finishes the batch in flight, then closes the NATS connection. */
  stop(): Promise<void>
}

export function connectionOptions(nats: NatsSettings): ConnectionOptions {
  return {
    servers: nats.servers,
    name: 'myapp-outbox-relay',
    // The relay outlives any outage: it never gives up reconnecting.
    maxReconnectAttempts: -1,
    reconnectTimeWait: 1000,
    ...(nats.user === undefined ? {} : { user: nats.user, pass: nats.pass }),
    ...(nats.token === undefined ? {} : { token: nats.token }),
    ...(nats.credsFile === undefined ? {} : { authenticator: credsAuthenticator(readFileSync(nats.credsFile)) }),
    ...(nats.tlsCaFile === undefined ? {} : { tls: { caFile: nats.tlsCaFile } }),
  }
}

const isStreamNotFound = (error: unknown) => /stream not found/i.test(String((error as Error)?.message))

export function startRelay({ database, nats, logger, onBatch }: RelayOptions): Relay {
  const log = logger.child({ component: 'events-relay' })
  const stopping = new AbortController()
  let connection: NatsConnection | undefined
  let js: JetStreamClient | undefined
  let connected = false
  let streamReady = false

  async function connectNats() {
    const nc = await connect(connectionOptions(nats))
    connection = nc
    js = jetstream(nc)
    connected = true
    void (async () => {
      for await (const status of nc.status()) {
        if (status.type === 'disconnect') connected = false
        if (status.type === 'reconnect') {
          connected = true
          // The server may have come back without the stream.
          streamReady = false
        }
      }
    })()
    void nc.closed().then(() => {
      if (connection !== nc) return
      connection = undefined
      connected = false
    })
  }

  async function ensureStream() {
    const jsm = await jetstreamManager(connection as NatsConnection)
    try {
      await jsm.streams.info(STREAM)
    } catch (error) {
      if (!isStreamNotFound(error)) throw error
      // Replicas racing here add the same configuration, which JetStream accepts from each.
      await jsm.streams.add({
        name: STREAM,
        subjects: STREAM_SUBJECTS,
        storage: StorageType.File,
        duplicate_window: nanos(DUPLICATE_WINDOW_MS),
      })
      log.info({ stream: STREAM, subjects: STREAM_SUBJECTS }, 'JetStream stream created')
    }
    streamReady = true
  }

  /** Publishes one event; true when JetStream had it already. */
  async function publish(row: EventRow): Promise<boolean> {
    const event = toCloudEvent(row)
    const messageHeaders = headers()
    messageHeaders.set('content-type', 'application/cloudevents+json')
    if (event.traceparent !== undefined) messageHeaders.set('traceparent', event.traceparent)
    const ack = await (js as JetStreamClient).publish(subjectOf(row.type), JSON.stringify(event), {
      msgID: row.id,
      headers: messageHeaders,
      timeout: PUBLISH_TIMEOUT_MS,
      expect: { streamName: STREAM },
    })
    return ack.duplicate
  }

  /** One batch: how many were published, or undefined when another replica's relay holds the lock. */
  async function relayOnce(): Promise<number | undefined> {
    let failure: unknown
    let lockedAt = 0
    let duplicates = 0
    const published: string[] = []
    const positions: string[] = []
    const locked = await database.transaction(async (tx) => {
      if (!(await relayBatch.lock(tx))) return false
      lockedAt = performance.now()
      for (const row of await relayBatch.unpublished(tx, BATCH)) {
        try {
          if (await publish(row)) duplicates++
        } catch (error) {
          failure = error
          break
        }
        published.push(row.id)
        positions.push(row.position)
      }
      // What was acknowledged stays acknowledged, even when a later publish failed.
      await relayBatch.markPublished(tx, positions)
      return true
    })
    if (published.length > 0) onBatch?.({ lockedAt, committedAt: performance.now(), eventIds: published, duplicates })
    if (failure !== undefined) throw failure
    return locked ? published.length : undefined
  }

  const loop = (async () => {
    let failures = 0
    while (!stopping.signal.aborted) {
      let waitMs = IDLE_MS
      try {
        if (connection === undefined) await connectNats()
        if (connected) {
          if (!streamReady) await ensureStream()
          const published = await relayOnce()
          if (failures > 0) log.info({ failures }, 'relaying events again')
          failures = 0
          if (published === BATCH) continue
        }
      } catch (error) {
        failures++
        streamReady = false
        waitMs = Math.min(MAX_BACKOFF_MS, 100 * 2 ** failures) * (0.5 + Math.random() / 2)
        // Once when an outage starts, then now and then while it lasts.
        if (failures === 1 || failures % 30 === 0) {
          log.warn({ err: error, failures, retry_in_ms: Math.round(waitMs) }, 'could not relay events; retrying')
        }
      }
      await sleep(waitMs, undefined, { signal: stopping.signal }).catch(() => {})
    }
  })()

  let stopped: Promise<void> | undefined
  return {
    stop: () => {
      stopped ??= (async () => {
        stopping.abort()
        await loop
        await connection?.close()
      })()
      return stopped
    },
  }
}
