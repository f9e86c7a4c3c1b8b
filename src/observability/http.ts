// Per-request metrics and server spans, and the /metrics route.
import { context, propagation, ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api'
import {
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_URL_PATH,
  ATTR_URL_SCHEME,
  ATTR_USER_AGENT_ORIGINAL,
} from '@opentelemetry/semantic-conventions'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { declareOperations } from '../admission/operation.ts'
import { PUBLIC } from '../auth/access.ts'
import type { Metrics } from './metrics.ts'
import { tracer } from './tracing.ts'

// The scrape: open, and neither counted in a budget nor shed, so that an overloaded replica's figures still arrive.
const { metrics: scrape } = declareOperations({
  metrics: { summary: 'Prometheus metrics', access: PUBLIC, effect: 'read', limit: 'probe' },
})

// Requests that matched no route share one label value, so odd URLs cannot grow the series count.
const UNMATCHED_ROUTE = 'unmatched'

const routeOf = (request: FastifyRequest) => request.routeOptions.url ?? UNMATCHED_ROUTE

export function registerHttpMetrics(app: FastifyInstance, metrics: Metrics): void {
  app.addHook('onRequest', (_request, _reply, done) => {
    metrics.httpRequestsInFlight.inc()
    done()
  })
  app.addHook('onResponse', (request, reply, done) => {
    metrics.httpRequestsInFlight.dec()
    metrics.httpRequestDuration.observe(
      { method: request.method, route: routeOf(request), status_code: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    )
    done()
  })

  app.get(
    '/metrics',
    {
      config: { operation: scrape },
      schema: {
        tags: ['observability'],
        response: {
          200: {
            description: 'Metrics in the Prometheus text format',
            content: { 'text/plain': { schema: Type.String() } },
          },
        },
      },
    },
    async (_request, reply) => reply.type(metrics.registry.contentType).send(await metrics.render()),
  )
}

/** A SERVER span per request, continuing the caller's W3C trace context; handlers and queries run inside it. */
export function registerHttpTracing(app: FastifyInstance): void {
  const spans = new WeakMap<FastifyRequest, Span>()
  // Callback-style hook: `done` continues the request's lifecycle inside the span's context.
  app.addHook('onRequest', (request, _reply, done) => {
    const parent = propagation.extract(ROOT_CONTEXT, request.headers)
    const route = request.routeOptions.url
    const span = tracer().startSpan(
      route === undefined ? request.method : `${request.method} ${route}`,
      { kind: SpanKind.SERVER },
      parent,
    )
    // Attributes only for a span that is recorded: with the default ratio sampler nine requests in ten are not,
    // and need none. (The configured samplers decide on the trace id, not on attributes.)
    if (span.isRecording()) {
      span.setAttributes({
        [ATTR_HTTP_REQUEST_METHOD]: request.method,
        [ATTR_URL_PATH]: request.url.split('?', 1)[0],
        [ATTR_URL_SCHEME]: request.protocol,
        ...(route === undefined ? {} : { [ATTR_HTTP_ROUTE]: route }),
        ...(request.headers['user-agent'] ? { [ATTR_USER_AGENT_ORIGINAL]: request.headers['user-agent'] } : {}),
        'myapp.request_id': request.id,
      })
      spans.set(request, span)
    }
    context.with(trace.setSpan(parent, span), done)
  })
  app.addHook('onError', (request, _reply, error, done) => {
    spans.get(request)?.recordException(error)
    done()
  })
  app.addHook('onResponse', (request, reply, done) => {
    const span = spans.get(request)
    if (span !== undefined) {
      span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, reply.statusCode)
      if (reply.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR })
      span.end()
    }
    done()
  })
}
