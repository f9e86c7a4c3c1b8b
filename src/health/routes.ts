// Liveness never touches the database; readiness needs the database and a server that is not draining.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { Database } from '../db/database.ts'
import { declareOperations, PUBLIC } from '../http/toolkit/operation.ts'
import { HttpError } from '../http/toolkit/problem.ts'
import { jsonResponse, problemDocs } from '../http/toolkit/responses.ts'
import type { Metrics } from '../observability/metrics.ts'

const READINESS_TIMEOUT_MS = 2000

// Probes: open, and neither counted in a budget nor shed, so that the orchestrator sees the replica as it is.
export const HEALTH_OPERATIONS = declareOperations({
  liveness: {
    summary: 'Liveness: the process can serve',
    description: 'Never touches the database.',
    access: PUBLIC,
    effect: 'read',
    limit: 'probe',
  },
  readiness: {
    summary: 'Readiness: the database answers and the server is not draining',
    access: PUBLIC,
    effect: 'read',
    limit: 'probe',
  },
})

const Status = Type.Object({ status: Type.Literal('ok') })

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)
  })
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer))
}

export const healthRoutes: FastifyPluginAsyncTypebox<{
  database: Database
  /** True once the server has begun to stop. */
  isDraining: () => boolean
  metrics: Metrics
}> = async (app, { database, isDraining, metrics }) => {
  app.get(
    '/livez',
    {
      config: { operation: HEALTH_OPERATIONS.liveness },
      schema: {
        tags: ['health'],
        response: { 200: jsonResponse(Status, 'The process is alive') },
      },
    },
    async () => ({ status: 'ok' as const }),
  )

  const readiness = {
    tags: ['health'],
    response: { 200: jsonResponse(Status, 'Ready for traffic'), ...problemDocs({ instance: '/readyz' })(503) },
  }
  app.get('/readyz', { config: { operation: HEALTH_OPERATIONS.readiness }, schema: readiness }, async (request) => {
    const unavailable = (detail: string, cause?: unknown) =>
      new HttpError(503, detail, { headers: { 'retry-after': '5' }, cause })
    metrics.ready.set(0)
    if (isDraining()) throw unavailable('shutting down')
    try {
      await withTimeout(database.ping(), READINESS_TIMEOUT_MS)
    } catch (error) {
      request.log.warn({ err: error }, 'readiness check failed: database')
      throw unavailable('the database is not answering')
    }
    metrics.ready.set(1)
    return { status: 'ok' as const }
  })
}
