// /metrics: names and labels, the runtime and database series, and what a scrape costs. promtool's verdict and a
// real Prometheus scraping the service need those programs, and are in test/system/observability.
import assert from 'node:assert/strict'
import { after, before, it } from 'node:test'
import { describe } from '../../helpers/describe.ts'
import { jsonRequest, startService, type TestService } from '../../helpers/service.ts'

const MISSING_ID = '01900000-0000-7000-8000-000000000000'

/** The value of one sample line in Prometheus text, 0 when the series is absent. */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `))
  return line === undefined ? 0 : Number(line.slice(series.length + 1))
}

describe('the /metrics endpoint', () => {
  let service: TestService
  before(async () => {
    service = await startService('embedded')
  })
  after(() => service?.close())

  const scrape = async () => {
    const response = await service.fetch('/metrics')
    assert.equal(response.status, 200)
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/)
    return response.text()
  }

  it('when a book is read, then the duration histogram counts it under the route template', async () => {
    const series = 'http_request_duration_seconds_count{method="GET",route="/v1/books/:id",status_code="404"}'
    const before = sample(await scrape(), series)
    await service.fetch(`/v1/books/${MISSING_ID}`)
    await service.fetch(`/v1/books/${MISSING_ID.replace('0000-7', '0001-7')}`)
    assert.equal(sample(await scrape(), series) - before, 2)
  })

  it('when unknown URLs are requested, then they share one route label', async () => {
    for (const path of ['/a', '/b/c', '/wp-login.php', `/x${'y'.repeat(50)}`]) await service.fetch(path)
    const text = await scrape()
    assert.equal(
      sample(text, 'http_request_duration_seconds_count{method="GET",route="unmatched",status_code="404"}'),
      4,
    )
    assert.doesNotMatch(text, /wp-login/)
  })

  it('when SQL runs, then database timings, pool and in-flight gauges are exported', async () => {
    await service.fetch(
      '/v1/books',
      jsonRequest('POST', { title: 'Dune', author: 'Frank Herbert', published_date: '1965-08-01' }),
    )
    const text = await scrape()
    assert.ok(sample(text, 'db_query_duration_seconds_count{operation="INSERT",outcome="ok"}') >= 1)
    assert.ok(sample(text, 'db_query_duration_seconds_count{operation="SELECT",outcome="ok"}') >= 1)
    assert.equal(sample(text, 'db_pool_max_connections'), 1)
    assert.equal(sample(text, 'db_queries_in_flight'), 0)
    assert.equal(sample(text, 'http_requests_in_flight'), 1, 'the scrape itself is in flight')
  })

  it('when scraped, then the Node.js runtime metrics are there too', async () => {
    const text = await scrape()
    for (const name of [
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_p99_seconds',
      'nodejs_heap_size_used_bytes',
      'nodejs_gc_duration_seconds',
    ]) {
      assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name)
    }
  })

  it('when /readyz is probed, then myapp_ready follows it', async () => {
    await service.fetch('/readyz')
    assert.equal(sample(await scrape(), 'myapp_ready'), 1)
  })

  it('when no relay runs (no NATS_URL), then the outbox gauges are declared but have no sample', async () => {
    await service.fetch(
      '/v1/books',
      jsonRequest('POST', { title: 'Solaris', author: 'Stanisław Lem', published_date: '1961-01-01' }),
    )
    const text = await scrape()
    // Nothing marks an event published without a relay: "unpublished" would be the whole feed, and alert on it.
    for (const name of ['events_outbox_depth', 'events_outbox_oldest_unpublished_age_seconds']) {
      assert.match(text, new RegExp(`^# TYPE ${name} gauge$`, 'm'))
      assert.doesNotMatch(text, new RegExp(`^${name}[ {]`, 'm'))
    }
    assert.doesNotMatch(text, /^events_publish_errors_total[ {]/m)
    assert.equal(sample(text, 'events_relay_lag_seconds_count'), 0)
  })

  it('when scraped repeatedly, then the cost is reported', async (t) => {
    const rounds = 200
    const started = performance.now()
    for (let i = 0; i < rounds; i++) await service.app.inject({ url: '/metrics' })
    const perScrape = (performance.now() - started) / rounds
    const bytes = (await service.app.inject({ url: '/metrics' })).body.length
    t.diagnostic(`scrape: ${perScrape.toFixed(2)} ms and ${bytes} bytes each (${rounds} rounds, in-process)`)
    assert.ok(bytes > 1000)
  })

  it('when METRICS_ENABLED=false, then /metrics is not served', async () => {
    const off = await startService('embedded', { METRICS_ENABLED: 'false' })
    try {
      // Not through off.fetch: the document describes the default configuration, with /metrics.
      assert.equal((await off.app.inject({ url: '/metrics' })).statusCode, 404)
    } finally {
      await off.close()
    }
  })
})
