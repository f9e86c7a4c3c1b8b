// Response headers for a JSON API, and CORS for the origins the configuration allows.
import cors from '@fastify/cors'
import type { FastifyInstance } from 'fastify'
import { declareOperations, PUBLIC } from '../toolkit/operation.ts'
import { routesServing } from './operations.ts'

const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

/** On every answer. The API's own answers are data, never a page to frame or run; /docs sets its own policy. */
export const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
} as const

export function registerSecurityHeaders(app: FastifyInstance): void {
  app.addHook('onSend', (request, reply, payload, done) => {
    reply.header('x-content-type-options', SECURITY_HEADERS['x-content-type-options'])
    reply.header('referrer-policy', SECURITY_HEADERS['referrer-policy'])
    if (!reply.hasHeader('content-security-policy')) {
      reply.header('content-security-policy', SECURITY_HEADERS['content-security-policy'])
    }
    // Writes and errors must never be replayed from a cache.
    if (WRITE_METHODS.has(request.method) || reply.statusCode >= 400) reply.header('cache-control', 'no-store')
    done(null, payload)
  })
}

const { corsPreflight } = declareOperations({
  corsPreflight: { summary: 'CORS preflight', access: PUBLIC, effect: 'read' },
})

/** CORS for exactly these origins; nothing is sent, and preflights are not answered, when the list is empty. */
export async function registerCors(app: FastifyInstance, origins: readonly string[]): Promise<void> {
  if (origins.length === 0) return
  await routesServing(app, corsPreflight, () =>
    app.register(cors, {
      origin: [...origins],
      methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
      allowedHeaders: [
        'content-type',
        'if-match',
        'if-none-match',
        'x-request-id',
        'authorization',
        'idempotency-key',
        'prefer',
      ],
      exposedHeaders: [
        'etag',
        'location',
        'link',
        'x-total-count',
        'x-total-count-estimate',
        'preference-applied',
        'x-request-id',
        'retry-after',
        'ratelimit-limit',
        'ratelimit-remaining',
        'ratelimit-reset',
      ],
      maxAge: 600,
    }),
  )
}
