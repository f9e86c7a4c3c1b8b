// The verifier, assembled: the image check, the books client with its policies, the event source, the metrics, and
// the probes. src/verifier/main.ts runs it as a process; the tests build it in theirs.
import { readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { SpanKind } from '@opentelemetry/api'
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import { connectionOptions } from '../events/relay.ts'
import { contextOf } from '../events/trace-context.ts'
import type { Logger } from '../logger.ts'
import { endingSpan, tracer } from '../observability/tracing.ts'
import { createBooksClient, isBreakerOpen } from './books-client.ts'
import type { VerifierConfig } from './config.ts'
import { consumeEvents } from './consumer.ts'
import { followFeed } from './feed.ts'
import { createImageChecker } from './image-check.ts'
import { type BookEventEnvelope, createVerifier, type Verification } from './verifier.ts'

/** The label a verification is counted under: its outcome and, where there is one, its reason. */
function reasonOf(result: Verification): string {
  switch (result.outcome) {
    case 'verified':
      return result.kind
    case 'skipped':
      return result.reason
    case 'rejected':
      return result.verdict.outcome
    case 'superseded':
      return result.change
  }
}

export function createVerifierService({ config, logger }: { config: VerifierConfig; logger: Logger }) {
  const registry = new Registry()
  const verifications = new Counter({
    name: 'verifier_verifications_total',
    help: 'Book events handled, by outcome and reason',
    labelNames: ['outcome', 'reason'],
    registers: [registry],
  })
  const deadLetters = new Counter({
    name: 'verifier_dead_letters_total',
    help: 'Events sent to the dead-letter subject, by reason',
    labelNames: ['reason'],
    registers: [registry],
  })
  const latency = new Histogram({
    name: 'verifier_event_to_verified_seconds',
    help: 'From the change (the event’s time) to the book set verified',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [registry],
  })
  const calls = new Counter({
    name: 'verifier_books_calls_total',
    help: 'Calls to the books service (each attempt), by method and gRPC code',
    labelNames: ['method', 'code'],
    registers: [registry],
  })
  // Read from JetStream at each scrape.
  new Gauge({
    name: 'verifier_consumer_messages',
    help: 'The durable consumer as JetStream counts it: pending (not yet delivered), ack_pending, redelivered',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      const counts = await source?.backlog?.().catch(() => undefined)
      if (counts === undefined) return
      this.set({ state: 'pending' }, counts.pending)
      this.set({ state: 'ack_pending' }, counts.ackPending)
      this.set({ state: 'redelivered' }, counts.redelivered)
    },
  })
  const openBreakers = new Gauge({
    name: 'verifier_books_breakers_open',
    help: 'Replicas of the books service whose circuit breaker is open (calls skip them)',
    registers: [registry],
  })
  const replicasKnown = new Gauge({
    name: 'verifier_books_replicas',
    help: 'Replicas of the books service the verifier calls in turn (the addresses its name resolves to)',
    registers: [registry],
  })

  // Read on every call, so that a rotated token file is picked up without a restart.
  const token = () =>
    config.books.tokenFile === undefined ? config.books.token : readFileSync(config.books.tokenFile, 'utf8').trim()
  const books = createBooksClient({
    baseUrl: config.books.url,
    protocol: config.books.protocol,
    token,
    callTimeoutMs: config.books.callTimeoutMs,
    retry: { maxAttempts: 4, initialDelayMs: 100, maxDelayMs: 2000 },
    breaker: { consecutiveFailures: 5, halfOpenAfterMs: 5000 },
    resolveEveryMs: 30_000,
    onCall: (method, code) => calls.inc({ method, code }),
  })
  books.onBreakerChange((address, state) => {
    const { open, of } = books.openBreakers()
    openBreakers.set(open)
    replicasKnown.set(of)
    logger.warn({ address, state }, 'circuit breaker of a books replica changed state')
  })
  const verifier = createVerifier({ images: createImageChecker(config.images), books })

  /**
   * Handles one event in a consumer span that continues the event's trace (the message's traceparent, else the
   * envelope's), so that one trace runs from the request that made the change to the call that verifies it.
   */
  function handle(event: unknown, traceparent?: string): Promise<void> {
    const envelope = event as BookEventEnvelope & { traceparent?: string }
    const parent = contextOf(traceparent ?? envelope.traceparent ?? null)
    return tracer().startActiveSpan(
      `process ${envelope.type ?? 'event'}`,
      { kind: SpanKind.CONSUMER, attributes: { 'messaging.message.id': String(envelope.id) } },
      parent,
      (span) => endingSpan(span, () => handleTraced(envelope)),
    )
  }

  async function handleTraced(envelope: BookEventEnvelope): Promise<void> {
    const started = performance.now()
    let result: Verification
    try {
      result = await verifier.handle(envelope)
    } catch (error) {
      // Not handled: the event comes again (the feed after a pause, JetStream after its backoff).
      verifications.inc({ outcome: 'failed', reason: isBreakerOpen(error) ? 'breaker_open' : 'books_unreachable' })
      logger.warn(
        { event_id: envelope.id, book_id: envelope.data?.id, err: error },
        'book event not handled; it comes again',
      )
      throw error
    }
    verifications.inc({ outcome: result.outcome, reason: reasonOf(result) })
    const changedAt = Date.parse(String((envelope as { time?: string }).time))
    if (result.outcome === 'verified' && Number.isFinite(changedAt)) latency.observe((Date.now() - changedAt) / 1000)
    // One line per event.
    logger.info(
      {
        event_id: envelope.id,
        book_id: envelope.data?.id,
        outcome: result.outcome,
        reason: reasonOf(result),
        duration_ms: Math.round(performance.now() - started),
      },
      'book event handled',
    )
  }

  let source:
    | {
        connected(): boolean
        stop(): Promise<void>
        backlog?(): Promise<{ pending: number; ackPending: number; redelivered: number }>
      }
    | undefined
  let probes: Server | undefined

  /** JetStream when configured, else the books service's feed. */
  async function follow() {
    if (config.nats === undefined) {
      return followFeed(
        {
          url: config.books.url,
          token,
          positionFile: config.feed.positionFile,
          logger,
          retry: { initialDelayMs: 250, maxDelayMs: 10_000 },
          maxAttempts: config.consumer.maxDeliver,
          onGiveUp: (event, error) => {
            deadLetters.inc({ reason: 'kept_failing' })
            logger.error(
              { event_id: (event as BookEventEnvelope).id, err: error },
              'book event given up after VERIFIER_MAX_DELIVER attempts',
            )
          },
        },
        handle,
      )
    }
    return consumeEvents(
      {
        connection: { ...connectionOptions(config.nats), name: 'myapp-verifier' },
        stream: 'BOOKS',
        subjects: ['books.created', 'books.updated'],
        durable: 'verifier',
        concurrency: config.consumer.concurrency,
        maxDeliver: config.consumer.maxDeliver,
        backoffMs: config.consumer.backoffMs,
        ackWaitMs: config.consumer.ackWaitMs,
        deadLetter: { stream: 'VERIFIER_DEAD_LETTERS', subject: 'verifier.dead-letters.books' },
        logger,
      },
      handle,
      (reason) => deadLetters.inc({ reason }),
    )
  }

  return {
    registry,
    /** Serves the probes and metrics, then follows the events. */
    async start(): Promise<{ port: number }> {
      probes = createServer(async (request, response) => {
        const path = request.url?.split('?')[0]
        if (path === '/livez')
          return response.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}')
        if (path === '/readyz') {
          const ready = source?.connected() === true
          return response
            .writeHead(ready ? 200 : 503, { 'content-type': 'application/json' })
            .end(JSON.stringify({ status: ready ? 'ok' : 'not connected to the events' }))
        }
        if (path === '/metrics') {
          return response.writeHead(200, { 'content-type': registry.contentType }).end(await registry.metrics())
        }
        response.writeHead(404, { 'content-type': 'application/json' }).end('{"status":"not found"}')
      })
      await new Promise<void>((resolve) => probes?.listen(config.server.port, config.server.host, resolve))
      source = await follow()
      return { port: (probes.address() as AddressInfo).port }
    },
    /** Stops following (the event in hand is finished or comes again), then closes the probes. */
    async close(): Promise<void> {
      await source?.stop()
      await new Promise<void>((resolve) => (probes === undefined ? resolve() : probes.close(() => resolve())))
    },
  }
}
