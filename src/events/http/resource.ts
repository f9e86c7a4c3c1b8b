// The events' HTTP door: the server-sent feed of the outbox (GET /v1/events), and the AsyncAPI document that
// describes it and the NATS subjects, both made from every resource's events.
import type { FastifyInstance } from 'fastify'
import { requiresScope } from '../../auth/access.ts'
import { declareOperations, PUBLIC } from '../../http/toolkit/operation.ts'
import type { HttpResource } from '../../http/toolkit/resource.ts'
import { buildAsyncApi } from '../asyncapi.ts'
import type { EventCatalog } from '../cloudevents.ts'
import type { Outbox } from '../outbox.ts'
import { asyncApiRoutes } from './asyncapi.ts'
import { eventsRoutes, FEED_DESCRIPTION, PREFIX } from './routes.ts'

const HEARTBEAT_MS = 15_000
const POLL_MS = 500

/** The feed's and the documents' operations: whoever may read any resource's events may open the feed. */
export function eventOperations(catalog: EventCatalog) {
  const scopes = catalog.resources.flatMap(({ read }) => (read.kind === 'scope' ? read.scopes : []))
  const [first, ...rest] = scopes
  const open = catalog.resources.some(({ read }) => read.kind === 'public') || first === undefined
  return declareOperations({
    streamEvents: {
      summary: 'Stream the events',
      description: FEED_DESCRIPTION,
      access: open ? PUBLIC : requiresScope(first, ...rest),
      effect: 'read',
    },
    asyncApiDocument: { summary: 'The AsyncAPI document', access: PUBLIC, effect: 'read', limit: 'probe' },
  })
}

/** The document as served, and as `npm run openapi` commits it (asyncapi.yaml). */
export const asyncApiOf = (catalog: EventCatalog) =>
  buildAsyncApi({ catalog, feed: { path: PREFIX, access: eventOperations(catalog).streamEvents.access } })

/** `writeTimeoutMs`: SERVER_TIMEOUT_WRITE, which closes a connection that moves no byte: heartbeats come sooner. */
export function eventsHttp({
  catalog,
  outbox,
  writeTimeoutMs,
}: {
  catalog: EventCatalog
  outbox: Outbox
  writeTimeoutMs: number
}): HttpResource {
  const operations = eventOperations(catalog)
  const timing = { heartbeatMs: Math.min(HEARTBEAT_MS, writeTimeoutMs / 2), pollMs: POLL_MS }
  const asyncApi = buildAsyncApi({ catalog, feed: { path: PREFIX, access: operations.streamEvents.access } })
  return {
    // Mounted at the root: the feed is under /v1/events, its document beside /openapi.json.
    prefix: '',
    tags: [{ name: 'events', description: 'Committed changes of the resources, as CloudEvents' }],
    components: [],
    routes: async (app: FastifyInstance) => {
      await app.register(eventsRoutes, { prefix: PREFIX, outbox, catalog, timing, operation: operations.streamEvents })
      await app.register(asyncApiRoutes, { document: asyncApi, operation: operations.asyncApiDocument })
    },
  }
}
