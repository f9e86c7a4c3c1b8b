// The events resource as the app registers it: the server-sent feed of the outbox, and the AsyncAPI document that
// describes it and the NATS subjects.
import type { FastifyInstance } from 'fastify'
import type { Database } from '../../db/database.ts'
import type { Resource } from '../../http/toolkit/resource.ts'
import { createOutbox } from '../outbox.ts'
import { asyncApiRoutes } from './asyncapi.ts'
import { eventsRoutes, PREFIX } from './routes.ts'

const HEARTBEAT_MS = 15_000
const POLL_MS = 500

/** `writeTimeoutMs`: SERVER_TIMEOUT_WRITE, which closes a connection that moves no byte: heartbeats come sooner. */
export function eventsResource({ database, writeTimeoutMs }: { database: Database; writeTimeoutMs: number }): Resource {
  const outbox = createOutbox(database)
  const timing = { heartbeatMs: Math.min(HEARTBEAT_MS, writeTimeoutMs / 2), pollMs: POLL_MS }
  return {
    // Mounted at the root: the feed is under /v1/events, its document beside /openapi.json.
    prefix: '',
    tags: [{ name: 'events', description: 'Committed changes of the books, as CloudEvents' }],
    components: [],
    routes: async (app: FastifyInstance) => {
      await app.register(eventsRoutes, { prefix: PREFIX, outbox, timing })
      await app.register(asyncApiRoutes)
    },
  }
}
