// Rate limit per client (token subject, else address), shared by all replicas through Redis when REDIS_URL is set.
// Fail-open: when Redis does not answer, requests are served unlimited (and a warning is logged) rather than
// refused: a limiter outage should not become an API outage. Limits apply to /v1 routes only.
import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Config } from '../config/config.ts'
import { HttpError } from './problem.ts'

export async function registerRateLimit(app: FastifyInstance, config: Config['rateLimit']): Promise<void> {
  if (config.max === 0) return
  // ioredis is loaded only when a Redis store is configured.
  const redis =
    config.redisUrl === undefined
      ? undefined
      : new (await import('ioredis')).Redis(config.redisUrl, {
          // Fail fast instead of queueing commands while Redis is away.
          connectTimeout: 500,
          maxRetriesPerRequest: 1,
          enableOfflineQueue: false,
          lazyConnect: false,
        })
  redis?.on('error', (error) => app.log.warn({ err: error }, 'rate limit store unavailable; not limiting'))
  app.addHook('onClose', async () => {
    redis?.disconnect()
  })

  await app.register(rateLimit, {
    max: config.max,
    timeWindow: config.windowMs,
    // After authentication (onRequest), so that a token's subject is the key.
    hook: 'preHandler',
    redis,
    nameSpace: config.namespace,
    skipOnError: true,
    enableDraftSpec: true,
    allowList: (request: FastifyRequest) => !request.url.startsWith('/v1/'),
    keyGenerator: (request: FastifyRequest) =>
      request.principal === undefined ? `ip:${request.ip}` : `sub:${request.principal.subject}`,
    errorResponseBuilder: (_request, context) =>
      new HttpError(429, `rate limit of ${context.max} requests per ${context.after} exceeded`, {
        headers: { 'retry-after': String(Math.max(1, Math.ceil(context.ttl / 1000))) },
      }),
  })
}
