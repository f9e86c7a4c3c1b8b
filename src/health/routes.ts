// Liveness never touches the database; readiness needs the database and a server that is not draining.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { Database } from '../db/database.ts'
import type { Drain } from '../http/pipeline/drain.ts'
import { PUBLIC } from '../http/toolkit/access.ts'
import { HttpError } from '../http/toolkit/problem.ts'
import { jsonResponse, problemDocs } from '../http/toolkit/responses.ts'
import type { Metrics } from '../observability/metrics.ts'

const READINESS_TIMEOUT_MS = 2000

const Status = Type.Object({ status: Type.Literal('ok') })

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)
  })
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer))
}

export const healthRoutes: FastifyPluginAsyncTypebox<{ database: Database; drain: Drain; metrics: Metrics }> = async (
  app,
  { database, drain, metrics },
) => {
  app.get(
    '/livez',
    {
      config: { access: PUBLIC },
      schema: {
        operationId: 'liveness',
        summary: 'Liveness: the process can serve',
        description: 'Never touches the database.',
        tags: ['health'],
        response: { 200: jsonResponse(Status, 'The process is alive') },
      },
    },
    async () => ({ status: 'ok' as const }),
  )

  const readiness = {
    operationId: 'readiness',
    summary: 'Readiness: the database answers and the server is not draining',
    tags: ['health'],
    response: { 200: jsonResponse(Status, 'Ready for traffic'), ...problemDocs({ instance: '/readyz' })(503) },
  }
  app.get('/readyz', { config: { access: PUBLIC }, schema: readiness }, async (request) => {
    const unavailable = (detail: string, cause?: unknown) =>
      new HttpError(503, detail, { headers: { 'retry-after': '5' }, cause })
    metrics.ready.set(0)
    if (drain.isDraining()) throw unavailable('shutting down')
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
