// A request the pipeline refuses (401 from authentication, 429 from the rate limit, 503 from load shedding) is
// still measured, traced and logged, each exactly once: observability comes first in the pipeline.
import assert from 'node:assert/strict'
import { afterEach, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { exportSPKI, generateKeyPair, SignJWT } from 'jose'
import { describe } from '../../helpers/describe.ts'
import { attribute, type ExportedSpan, otlpReceiver, SERVER_KIND } from '../../helpers/otlp-receiver.ts'
import { startService, type TestService } from '../../helpers/service.ts'

const ISSUER = 'https://auth.test/'
const AUDIENCE = 'myapp'
const { privateKey, publicKey } = await generateKeyPair('ES256')
const JWT_ENV = {
  AUTH_MODE: 'jwt',
  AUTH_JWT_ISSUER: ISSUER,
  AUTH_JWT_AUDIENCE: AUDIENCE,
  AUTH_JWT_ALGORITHMS: 'ES256',
  AUTH_JWT_PUBLIC_KEY: await exportSPKI(publicKey),
}

/** A well-formed token from the right issuer whose signature is not the issuer's. */
async function badlySignedToken(): Promise<string> {
  const token = await new SignJWT({ sub: 'guesser', scope: 'books:read' })
    .setProtectedHeader({ alg: 'ES256' })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setExpirationTime('5m')
    .sign(privateKey)
  const [header, payload] = token.split('.')
  return `${header}.${payload}.${Buffer.alloc(64, 7).toString('base64url')}`
}

/** The value of one sample line in Prometheus text; undefined when the series is absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

const requestsCounted = (text: string, status: number) =>
  sample(text, `http_request_duration_seconds_count{method="GET",route="/v1/books",status_code="${status}"}`) ?? 0

/** The request log's lines for answers with this status: one line per request. */
const requestLines = (service: TestService, status: number) =>
  service.logs.filter((line) => line.message === 'request' && line.status === status && line.url === '/v1/books')

function tally(statuses: number[]): Map<number, number> {
  const counts = new Map<number, number>()
  for (const status of statuses) counts.set(status, (counts.get(status) ?? 0) + 1)
  return counts
}

describe('a refused request is measured once', () => {
  // Each test has its own service, so that its counts start at zero.
  let service: TestService | undefined
  afterEach(async () => {
    await service?.close()
    service = undefined
  })

  const scrape = async (running: TestService) => {
    const response = await running.fetch('/metrics')
    assert.equal(response.status, 200)
    return response.text()
  }

  /** After the refusals, only the scrape itself is in flight: every refused request was counted in and out. */
  const assertNothingLeftInFlight = (text: string) =>
    assert.equal(sample(text, 'http_requests_in_flight'), 1, 'the scrape itself is the only request in flight')

  it('when 5 requests without a token get 401, then the histogram counts exactly 5 and nothing is left in flight', async () => {
    const running = await startService('embedded', JWT_ENV)
    service = running
    for (let i = 0; i < 5; i++) {
      const response = await running.fetch('/v1/books')
      assert.equal(response.status, 401)
      await response.arrayBuffer()
      // Checked after every refusal: a gauge decremented for a request it never counted in goes below zero.
      assertNothingLeftInFlight(await scrape(running))
    }
    const text = await scrape(running)
    assertNothingLeftInFlight(text)
    assert.equal(requestsCounted(text, 401), 5)
    assert.equal(requestLines(running, 401).length, 5, 'one request log line each')
  })

  it('when RATE_LIMIT_MAX=2 and 5 requests arrive, then 2 are counted as 200 and exactly 3 as 429', async () => {
    const running = await startService('embedded', { RATE_LIMIT_MAX: '2', RATE_LIMIT_WINDOW: '1m' })
    service = running
    const statuses: number[] = []
    for (let i = 0; i < 5; i++) {
      const response = await running.fetch('/v1/books')
      await response.arrayBuffer()
      statuses.push(response.status)
    }
    assert.deepEqual(statuses, [200, 200, 429, 429, 429])
    const text = await scrape(running)
    assertNothingLeftInFlight(text)
    assert.equal(requestsCounted(text, 200), 2)
    assert.equal(requestsCounted(text, 429), 3)
    assert.equal(requestLines(running, 429).length, 3, 'one request log line each')
  })

  it('when the event loop lags past LOAD_SHED_EVENT_LOOP_DELAY, then every 503 is counted once and nothing is left in flight', async (t) => {
    const running = await startService('embedded', { LOAD_SHED_EVENT_LOOP_DELAY: '100ms' })
    service = running
    const statuses: number[] = [(await running.app.inject({ url: '/v1/books' })).statusCode]
    assert.equal(statuses[0], 200)
    // The service runs in this process: 300 ms of CPU at a time for 1.5 s makes its loop lag, as in
    // test/http/load-shedding.test.ts, yielding just long enough for requests to be handled in between.
    let saturating = true
    const saturator = (async () => {
      const until = performance.now() + 1500
      while (performance.now() < until) {
        const slice = performance.now() + 300
        while (performance.now() < slice) {}
        await new Promise((resolve) => setImmediate(resolve))
      }
      saturating = false
    })()
    // Bounded by the saturator's 1.5 s, and by 5 s whatever happens.
    const deadline = performance.now() + 5000
    while (saturating && performance.now() < deadline) {
      await sleep(5)
      statuses.push((await running.app.inject({ url: '/v1/books' })).statusCode)
    }
    await saturator
    const counts = tally(statuses)
    const seen = `answers while saturated: ${JSON.stringify(Object.fromEntries(counts))}`
    t.diagnostic(seen)
    assert.ok((counts.get(503) ?? 0) >= 1, seen)
    assert.ok(
      statuses.every((status) => status === 200 || status === 503),
      seen,
    )
    const text = await scrape(running)
    assertNothingLeftInFlight(text)
    assert.equal(requestsCounted(text, 503), counts.get(503), seen)
    assert.equal(requestsCounted(text, 200), counts.get(200) ?? 0, seen)
    assert.equal(requestLines(running, 503).length, counts.get(503), 'one request log line each')
  })
})

describe('a refused request is traced once, in its caller’s trace', () => {
  let service: TestService | undefined
  let receiver: Awaited<ReturnType<typeof otlpReceiver>> | undefined
  afterEach(async () => {
    await service?.close()
    receiver?.server.close()
    service = undefined
    receiver = undefined
  })

  const CALLER_SPAN_ID = '00f067aa0ba902b7'
  const traceparent = (traceId: string) => `00-${traceId}-${CALLER_SPAN_ID}-01`

  /** Starts a service exporting to a fresh receiver; the tracer provider is global, so tests run one by one. */
  const tracedService = async (env: Record<string, string>) => {
    receiver = await otlpReceiver()
    service = await startService('embedded', { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, ...env })
    assert.ok(service.tracing, 'tracing is on')
    return { running: service, spans: receiver.spans }
  }

  /** The one SERVER span of the trace, after the service has exported what it holds. */
  const serverSpanOf = async (running: TestService, spans: ExportedSpan[], traceId: string) => {
    await running.tracing?.forceFlush()
    const server = spans.filter((span) => span.traceId === traceId && span.kind === SERVER_KIND)
    assert.equal(server.length, 1, `SERVER spans in trace ${traceId}: ${JSON.stringify(server.map((s) => s.name))}`)
    return server[0] as ExportedSpan
  }

  it('when a request without a token gets 401, then exactly one SERVER span records it, parented on the caller', async () => {
    const { running, spans } = await tracedService(JWT_ENV)
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736'
    const response = await running.fetch('/v1/books', { headers: { traceparent: traceparent(traceId) } })
    assert.equal(response.status, 401)
    await response.arrayBuffer()
    const span = await serverSpanOf(running, spans, traceId)
    assert.equal(span.parentSpanId, CALLER_SPAN_ID)
    assert.equal(span.name, 'GET /v1/books')
    assert.equal(Number(attribute(span, 'http.response.status_code')), 401)
  })

  it('when a request over the rate limit gets 429, then exactly one SERVER span records it, parented on the caller', async () => {
    const { running, spans } = await tracedService({ RATE_LIMIT_MAX: '1', RATE_LIMIT_WINDOW: '1m' })
    assert.equal((await running.fetch('/v1/books')).status, 200)
    const traceId = '5ce03a4688c45eb7b4df030e1f1f5847'
    const response = await running.fetch('/v1/books', { headers: { traceparent: traceparent(traceId) } })
    assert.equal(response.status, 429)
    await response.arrayBuffer()
    const span = await serverSpanOf(running, spans, traceId)
    assert.equal(span.parentSpanId, CALLER_SPAN_ID)
    assert.equal(Number(attribute(span, 'http.response.status_code')), 429)
  })

  it('when a badly signed token is rejected, then its one "token rejected" line carries the caller’s trace id', async () => {
    const { running, spans } = await tracedService(JWT_ENV)
    const traceId = '6df14b5799d56fc8c5e0141f2a2a6958'
    const response = await running.fetch('/v1/books', {
      headers: {
        traceparent: traceparent(traceId),
        'x-request-id': 'bad-signature',
        authorization: `Bearer ${await badlySignedToken()}`,
      },
    })
    assert.equal(response.status, 401)
    assert.match(response.headers.get('www-authenticate') ?? '', /error="invalid_token"/)
    await response.arrayBuffer()
    const span = await serverSpanOf(running, spans, traceId)

    const lines = running.logs.filter((line) => line.request_id === 'bad-signature')
    const rejected = lines.filter((line) => line.message === 'token rejected')
    assert.equal(rejected.length, 1, 'logged once')
    assert.equal(rejected[0]?.trace_id, traceId)
    assert.equal(rejected[0]?.span_id, span.spanId, 'written inside the request’s server span')
    assert.equal(lines.filter((line) => line.message === 'request').length, 1, 'one request log line')
    for (const line of lines) assert.equal(line.trace_id, traceId, `${line.message} carries the trace id`)
  })
})
