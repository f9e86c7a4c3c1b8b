// Load shedding: when the event loop lags behind (CPU saturated), answer 503 with Retry-After at once rather than
// queue work that would time out anyway. Probes and metrics are exempt so the orchestrator can see what happens.
import underPressure from '@fastify/under-pressure'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { sendProblem } from './errors.ts'
import { HttpError } from './problem.ts'

const EXEMPT = new Set(['/livez', '/readyz', '/metrics'])

export async function registerLoadShedding(app: FastifyInstance, maxEventLoopDelayMs: number): Promise<void> {
  if (maxEventLoopDelayMs === 0) return
  await app.register(underPressure, {
    maxEventLoopDelay: maxEventLoopDelayMs,
    sampleInterval: 100,
    pressureHandler: (request: FastifyRequest, reply: FastifyReply, type: string, value: number | undefined) => {
      // Returning nothing without sending lets the request through.
      if (EXEMPT.has(request.routeOptions.url ?? '')) return
      request.log.warn({ pressure: type, value }, 'shedding load')
      sendProblem(
        request,
        reply,
        new HttpError(503, 'the service is overloaded; try again later', { headers: { 'retry-after': '2' } }),
      )
    },
  })
}
