// GET /v1/events: the outbox as server-sent events, for consumers without a broker. Each event is one `id:` (its
// position, the cursor a reconnecting client sends back as Last-Event-ID) and one `data:` line (the CloudEvent).
// The stream is pulled: the next events are read only when the client has taken the last ones, so a slow reader
// holds one batch at most.
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyBaseLogger } from 'fastify'
import { Type } from 'typebox'
import { allows } from '../../auth/access.ts'
import type { Operation } from '../../http/toolkit/operation.ts'
import { problemDocs } from '../../http/toolkit/responses.ts'
import { ERROR_MESSAGE } from '../../schema/keywords.ts'
import type { EventCatalog } from '../cloudevents.ts'
import type { FeedCursor, Outbox } from '../outbox.ts'

export const PREFIX = '/v1/events'
/** What the feed sends, for the OpenAPI document; the events themselves are the AsyncAPI document's. */
export const FEED_DESCRIPTION =
  'Every committed create, update and delete of the resources the caller may read, as server-sent events: `id:` ' +
  'is the event position and `data:` one CloudEvent 1.0 in JSON (for books: `type` dev.myapp.book.created.v1, ' +
  '…updated.v1 or …deleted.v1; `subject` the book id; `bookversion` orders the events of one book). Without ' +
  'Last-Event-ID the stream starts at the oldest event kept (EVENTS_RETENTION, 7 days by default); with it, ' +
  'right after that event. Events appear once their transaction and every older one have ended, so a resumed ' +
  'stream has no gap. A comment line every 15 seconds (or half of SERVER_TIMEOUT_WRITE) keeps idle connections ' +
  'open. The events themselves, one schema per type, are described by the AsyncAPI document (/asyncapi.json, ' +
  'channel eventFeed).'

/** Events read, and written to the client, at once. */
const BATCH = 100

const LastEventId = Type.Object({
  'last-event-id': Type.Optional(
    Type.String({
      pattern: '^[0-9]{1,18}$',
      description: 'The id of the last event received: the stream goes on after it, with no gap and no repeat',
      [ERROR_MESSAGE]: 'Must be the id of an event of this stream',
    }),
  ),
})

const problemResponses = problemDocs({ instance: PREFIX })

export interface FeedTiming {
  /** A comment line after this long without an event, so that proxies and the write timeout keep the stream. */
  heartbeatMs: number
  /** How often an idle stream looks for new events. */
  pollMs: number
}

/** The SSE frames of a stream: events as they commit, heartbeats in between, until `signal` ends it. */
async function* frames(
  outbox: Outbox,
  aggregates: readonly string[] | undefined,
  start: FeedCursor,
  { heartbeatMs, pollMs }: FeedTiming,
  signal: AbortSignal,
  log: FastifyBaseLogger,
): AsyncGenerator<string> {
  // Sent at once, with the headers: the client knows the stream is open before the first event.
  yield 'retry: 1000\n\n'
  let cursor = start
  let lastWrite = performance.now()
  let failing = false
  while (!signal.aborted) {
    let count = 0
    try {
      const read = await outbox.readAfter(cursor, BATCH, aggregates)
      cursor = read.cursor
      count = read.entries.length
      failing = false
      if (count > 0) {
        yield read.entries.map(({ position, event }) => `id: ${position}\ndata: ${JSON.stringify(event)}\n\n`).join('')
        lastWrite = performance.now()
        if (count === BATCH) continue
      }
    } catch (error) {
      // The stream stays open through a database outage; its heartbeats go on, and so does it afterwards.
      if (!failing) log.warn({ err: error }, 'could not read events; retrying')
      failing = true
    }
    if (performance.now() - lastWrite >= heartbeatMs) {
      yield ': heartbeat\n\n'
      lastWrite = performance.now()
    }
    await sleep(pollMs, undefined, { signal }).catch(() => {})
  }
}

export const eventsRoutes: FastifyPluginAsyncTypebox<{
  outbox: Outbox
  catalog: EventCatalog
  timing: FeedTiming
  operation: Operation
}> = async (app, { outbox, catalog, timing, operation }) => {
  /** The aggregates whose events this caller may read; undefined for all (no token needed, or none checked). */
  const readableBy = (scopes: ReadonlySet<string> | undefined) =>
    scopes === undefined
      ? undefined
      : catalog.resources.filter(({ read }) => allows(read, scopes)).map(({ aggregate }) => aggregate)

  const open = new Set<AbortController>()
  // An open stream would hold the server's close until the client left: it ends instead.
  app.addHook('preClose', async () => {
    for (const stream of open) stream.abort()
  })

  app.get(
    '/',
    {
      config: { operation },
      exposeHeadRoute: false,
      schema: {
        tags: ['events'],
        headers: LastEventId,
        response: {
          200: {
            description: 'The event stream (text/event-stream); it stays open',
            headers: {
              'x-request-id': {
                type: 'string',
                required: true,
                description: 'The id of this request: the one sent when well-formed, otherwise generated',
              },
              'cache-control': { type: 'string', required: true, description: 'no-cache: a stream is never stored' },
            },
            content: { 'text/event-stream': { schema: Type.String() } },
          },
          ...problemResponses(401, 403, 422, 429, 500, 503),
        },
      },
    },
    async (request, reply) => {
      const stream = new AbortController()
      const start = await outbox.cursorAfter(request.headers['last-event-id'])
      // One chunk buffered: the next batch is read once the socket has taken the last one.
      const aggregates = readableBy(request.principal?.scopes)
      const body = Readable.from(frames(outbox, aggregates, start, timing, stream.signal, request.log), {
        highWaterMark: 1,
      })
      open.add(stream)
      // The response's close, not the body's: the body closes only once its generator has stopped, which waits
      // for this signal when the generator is between polls.
      reply.raw.on('close', () => {
        stream.abort()
        open.delete(stream)
      })
      return (
        reply
          .header('content-type', 'text/event-stream; charset=utf-8')
          .header('cache-control', 'no-cache')
          .header('x-accel-buffering', 'no')
          // A stream, which Fastify pipes as it is: the declared schema describes its text.
          .send(body as never)
      )
    },
  )
}
