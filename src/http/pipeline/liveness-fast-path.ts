// GET /livez answered before Fastify: an orchestrator probes every replica every few seconds, and through the
// framework a probe cost five times what node:http needs to answer it (the benchmark's framework-tax figure).
// The answer is the route's own: same body and headers, and it still counts in http_request_duration_seconds; it
// is neither logged nor traced, as probes are noise in both. The Fastify route stays for the OpenAPI document,
// for app.inject() and for the other methods (405).
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Metrics } from '../../observability/metrics.ts'
import { requestIdFor } from './request-id.ts'
import { SECURITY_HEADERS } from './security.ts'

const BODY = JSON.stringify({ status: 'ok' })
// A flat [name, value, …] list: writeHead takes it as is, without walking an object per answer.
const HEADERS = Object.entries({
  'content-type': 'application/json; charset=utf-8',
  'content-length': String(Buffer.byteLength(BODY)),
  ...SECURITY_HEADERS,
}).flat()
const LABELS = { method: 'GET', route: '/livez', status_code: '200' }

/** Answers the request when it is GET /livez and returns true; returns false for anything else. */
export type LivenessFastPath = (request: IncomingMessage, response: ServerResponse) => boolean

export function livenessFastPath(options: { metrics?: Metrics | undefined; isDraining: () => boolean }) {
  const { metrics, isDraining } = options
  const answer: LivenessFastPath = (request, response) => {
    if (request.method !== 'GET' || (request.url !== '/livez' && request.url !== '/livez/')) return false
    const started = performance.now()
    // As every other answer while draining: the client should move to another instance.
    if (isDraining()) response.shouldKeepAlive = false
    response.writeHead(200, [...HEADERS, 'x-request-id', requestIdFor(request)])
    response.end(BODY)
    metrics?.httpRequestDuration.observe(LABELS, (performance.now() - started) / 1000)
    return true
  }
  return answer
}
