// The outbox relay: publishes the outbox's rows to NATS JetStream, each to its resource's stream and subject, at
// least once and in position order, with the event id as Nats-Msg-Id so that JetStream's duplicate window drops a re-send. One relay publishes at a time
// across replicas: each batch runs in a transaction that holds an advisory lock, reads the oldest unpublished rows,
// publishes them all at once, each to be stored only right after the one before it in its stream (JetStream's
// expected last sequence), so that none overtakes one that failed, and marks those acknowledged. With NATS unreachable the writes
// go on; the rows wait, and flow once it is back.
//
// Observed: each failed attempt to reach NATS or publish is counted by reason, each published event's lag is
// measured, and with tracing on each publish is a PRODUCER span, a child of the request that made the change.
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamClient,
  JetStreamError,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  StorageType,
} from '@nats-io/jetstream'
import {
  type ConnectionOptions,
  connect,
  credsAuthenticator,
  errors,
  headers,
  type NatsConnection,
  nanos,
} from '@nats-io/transport-node'
import { context, ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode } from '@opentelemetry/api'
import { suppressTracing } from '@opentelemetry/core'
import type { EventsConfig } from '../config/events.ts'
import type { Database } from '../db/database.ts'
import type { Logger } from '../logger.ts'
import type { Metrics } from '../observability/metrics.ts'
import { tracer } from '../observability/tracing.ts'
import type { EventCatalog } from './cloudevents.ts'
import { relayBatch, type UnpublishedRow } from './outbox.ts'
import { DUPLICATE_WINDOW_MS } from './stream.ts'
import { contextOf, traceparentOf } from './trace-context.ts'

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
  /** Every resource's events: which stream and subject each event goes to, and its envelope. */
  catalog: EventCatalog
  nats: NatsSettings
  logger: Logger
  /** Where publish errors and the relay lag go (the app's metrics). */
  metrics?: Metrics | undefined
  /** Trace each publish as a PRODUCER span (tracing is on). */
  traced?: boolean | undefined
  /** How long the stream keeps an event when the relay creates it: the outbox's retention, so that JetStream holds
   * what the feed holds and its store does not fill until publishes are refused. No limit when absent. */
  maxAgeMs?: number | undefined
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

/** Why an attempt to reach NATS or publish failed: the label values of events_publish_errors_total. */
export const PUBLISH_ERROR_REASONS = ['unreachable', 'timeout', 'refused', 'other'] as const
export type PublishErrorReason = (typeof PUBLISH_ERROR_REASONS)[number]

/** The reason of `error`, or else of its causes (JetStream wraps a "no responders" answer, for one). */
/** JetStream refused a message because the stream's last sequence was not the one it expected. */
const isWrongLastSequence = (error: unknown) =>
  error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamWrongLastSequence

export function publishErrorReason(error: unknown, depth = 0): PublishErrorReason {
  const reason = ownReason(error)
  if (reason !== 'other' || depth === 3 || !(error instanceof Error)) return reason
  return error.cause === undefined ? reason : publishErrorReason(error.cause, depth + 1)
}

function ownReason(error: unknown): PublishErrorReason {
  if (error instanceof errors.TimeoutError) return 'timeout'
  if (
    error instanceof errors.ConnectionError ||
    error instanceof errors.ClosedConnectionError ||
    error instanceof errors.DrainingConnectionError
  ) {
    return 'unreachable'
  }
  // A request's own failure says only in its message that the connection went; no responders means no stream
  // (or no JetStream) took the subject.
  if (error instanceof errors.RequestError) {
    if (error.isNoResponders()) return 'refused'
    return /connection (closed|disconnected)/i.test(error.message) ? 'unreachable' : 'other'
  }
  // JetStream answered no: a stream limit, a wrong stream, no permission.
  if (
    error instanceof JetStreamApiError ||
    error instanceof JetStreamError ||
    error instanceof errors.PermissionViolationError ||
    error instanceof errors.AuthorizationError
  ) {
    return 'refused'
  }
  return 'other'
}

// The messaging and CloudEvents semantic conventions, written out: the package has them only among its incubating
// names, which may change in any release.
const ATTRIBUTES = {
  system: 'messaging.system',
  systemName: 'messaging.system.name',
  destination: 'messaging.destination.name',
  operationName: 'messaging.operation.name',
  operationType: 'messaging.operation.type',
  messageId: 'messaging.message.id',
  eventType: 'cloudevents.event_type',
  eventSubject: 'cloudevents.event_subject',
} as const

export function startRelay({
  database,
  catalog,
  nats,
  logger,
  metrics,
  traced = false,
  maxAgeMs,
  onBatch,
}: RelayOptions): Relay {
  const log = logger.child({ component: 'events-relay' })
  const streamOf = (type: string) => catalog.byType(type)?.events.stream.name
  const stopping = new AbortController()
  let connection: NatsConnection | undefined
  let js: JetStreamClient | undefined
  let jsm: JetStreamManager | undefined
  let connected = false
  let streamReady = false

  for (const reason of PUBLISH_ERROR_REASONS) metrics?.eventsPublishErrors.inc({ reason }, 0)
  /** Runs one step that talks to NATS, counting its failure. */
  async function counted<T>(step: () => Promise<T>): Promise<T> {
    try {
      return await step()
    } catch (error) {
      metrics?.eventsPublishErrors.inc({ reason: publishErrorReason(error) })
      throw error
    }
  }

  async function connectNats() {
    const nc = await counted(() => connect(connectionOptions(nats)))
    connection = nc
    js = jetstream(nc)
    jsm = await jetstreamManager(nc)
    connected = true
    void (async () => {
      for await (const status of nc.status()) {
        if (status.type === 'disconnect') connected = false
        // One per attempt to get the connection back: the first stands for the loss, each later one for a failed
        // try. (Attempts before the first connection fail connect() itself, counted there.)
        if (status.type === 'reconnecting') metrics?.eventsPublishErrors.inc({ reason: 'unreachable' })
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

  /** Each resource's stream, created when it is missing. */
  async function ensureStreams() {
    await counted(async () => {
      const jsm = await jetstreamManager(connection as NatsConnection)
      for (const { stream, streamSubjects: subjects } of catalog.resources) {
        try {
          await jsm.streams.info(stream.name)
        } catch (error) {
          if (!isStreamNotFound(error)) throw error
          // Replicas racing here add the same configuration, which JetStream accepts from each.
          await jsm.streams.add({
            name: stream.name,
            subjects,
            storage: StorageType.File,
            duplicate_window: nanos(DUPLICATE_WINDOW_MS),
            ...(maxAgeMs === undefined ? {} : { max_age: nanos(maxAgeMs), discard: DiscardPolicy.Old }),
          })
          log.info({ stream: stream.name, subjects }, 'JetStream stream created')
        }
      }
    })
    streamReady = true
  }

  /**
   * The publish's span, a child of the request that made the change (its stored traceparent): one event comes of
   * one request, so its trace runs on from that request through the publish to whoever consumes it.
   */
  function startPublishSpan(row: UnpublishedRow, subject: string): Span {
    const span = tracer().startSpan(`publish ${subject}`, { kind: SpanKind.PRODUCER }, contextOf(row.traceparent))
    if (span.isRecording()) {
      span.setAttributes({
        // Both names: the current one, and the one most tracing backends still read.
        [ATTRIBUTES.system]: 'nats',
        [ATTRIBUTES.systemName]: 'nats',
        [ATTRIBUTES.destination]: subject,
        [ATTRIBUTES.operationName]: 'publish',
        [ATTRIBUTES.operationType]: 'send',
        [ATTRIBUTES.messageId]: row.id,
        [ATTRIBUTES.eventType]: row.type,
        [ATTRIBUTES.eventSubject]: row.aggregate_id,
      })
    }
    return span
  }

  /**
   * Publishes one event, to be stored only if the stream's last message is `lastSequence`; true when JetStream had
   * the event already (a duplicate is not stored, so the stream's sequence does not move).
   */
  async function publish(row: UnpublishedRow, streamName: string, lastSequence: number): Promise<boolean> {
    const event = catalog.toCloudEvent(row)
    const subject = catalog.subjectOf(row.type)
    const span = traced ? startPublishSpan(row, subject) : undefined
    const messageHeaders = headers()
    messageHeaders.set('content-type', 'application/cloudevents+json')
    // A consumer continues from the publish span when there is one; the envelope keeps the request's traceparent.
    const traceparent = span === undefined ? (event.traceparent ?? null) : traceparentOf(span.spanContext())
    if (traceparent !== null) messageHeaders.set('traceparent', traceparent)
    try {
      const ack = await (js as JetStreamClient).publish(subject, JSON.stringify(event), {
        msgID: row.id,
        headers: messageHeaders,
        timeout: PUBLISH_TIMEOUT_MS,
        expect: { streamName, lastSequence },
      })
      if (ack.duplicate) span?.setAttribute('myapp.event.duplicate', true)
      return ack.duplicate
    } catch (error) {
      span?.recordException(error as Error)
      span?.setStatus({ code: SpanStatusCode.ERROR })
      throw error
    } finally {
      span?.end()
    }
  }

  /** One batch: true when more are waiting (a full batch, or one cut short by the sequence), so the next goes at once. */
  async function relayOnce(): Promise<boolean> {
    let failure: unknown
    let more = false
    let lockedAt = 0
    let duplicates = 0
    const published: string[] = []
    const positions: string[] = []
    const lags: number[] = []
    const locked = await database.transaction(async (tx) => {
      if (!(await relayBatch.lock(tx))) return false
      lockedAt = performance.now()
      const rows = await relayBatch.unpublished(tx, BATCH)
      const readAt = performance.now()
      if (rows.length === 0) return true
      // The batch's publishes are all in flight at once, yet none overtakes another in its stream: each is stored
      // only right after the one before it (its expected last sequence), so after one that is lost the rest of
      // that stream's are refused.
      const byStream = new Map<string, UnpublishedRow[]>()
      for (const row of rows) {
        const stream = streamOf(row.type)
        if (stream === undefined) throw new Error(`no resource declares the event type ${row.type}`)
        const streamRows = byStream.get(stream)
        if (streamRows === undefined) byStream.set(stream, [row])
        else streamRows.push(row)
      }
      const streams = await Promise.all(
        [...byStream].map(async ([stream, streamRows]) => {
          const last = (await counted(() => (jsm as JetStreamManager).streams.info(stream))).state.last_seq
          const outcomes = await Promise.all(
            streamRows.map((row, i) =>
              publish(row, stream, last + i).then(
                (duplicate) => ({ duplicate, ackedAt: performance.now(), error: undefined }),
                (error: unknown) => ({ duplicate: false, ackedAt: 0, error }),
              ),
            ),
          )
          return { streamRows, outcomes }
        }),
      )
      for (const { streamRows, outcomes } of streams) {
        let publishedHere = 0
        for (const [i, outcome] of outcomes.entries()) {
          const row = streamRows[i] as UnpublishedRow
          if (outcome.error !== undefined) {
            // Refused for the sequence only: an earlier one was a duplicate (not stored, so the count is off by
            // one) or failed. The next batch starts again from the stream's last sequence.
            if (isWrongLastSequence(outcome.error) && publishedHere > 0) {
              more = true
            } else {
              failure = outcome.error
              metrics?.eventsPublishErrors.inc({ reason: publishErrorReason(outcome.error) })
            }
            break
          }
          if (outcome.duplicate) duplicates++
          lags.push(row.waited_seconds + (outcome.ackedAt - readAt) / 1000)
          published.push(row.id)
          positions.push(row.position)
          publishedHere++
        }
      }
      more ||= published.length === BATCH
      // What was acknowledged stays acknowledged, even when a later publish failed.
      await relayBatch.markPublished(tx, positions)
      return true
    })
    // Once committed: an event whose mark is lost is published again, and measured then.
    for (const lag of lags) metrics?.eventsRelayLag.observe(lag)
    if (published.length > 0) onBatch?.({ lockedAt, committedAt: performance.now(), eventIds: published, duplicates })
    if (failure !== undefined) throw failure
    return locked && more
  }

  // The batches' statements are left out of the traces (each would be a trace of its own, several a second while
  // idle); the publish spans start from their requests' contexts, which this does not touch.
  const loop = context.with(traced ? suppressTracing(ROOT_CONTEXT) : context.active(), async () => {
    let failures = 0
    while (!stopping.signal.aborted) {
      let waitMs = IDLE_MS
      try {
        if (connection === undefined) await connectNats()
        if (connected) {
          if (!streamReady) await ensureStreams()
          const more = await relayOnce()
          if (failures > 0) log.info({ failures }, 'relaying events again')
          failures = 0
          if (more) continue
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
  })

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
