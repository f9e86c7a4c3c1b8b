// /metrics as Prometheus's own tools read it: promtool finds nothing wrong with the output, and a real Prometheus
// scraping a running service answers a PromQL query over the route labels the service exports.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { after, before, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe } from '../../helpers/describe.ts'
import { jsonRequest, startService, type TestService } from '../../helpers/service.ts'
import { PROMETHEUS, PROMTOOL, programMissing, type RunningPrometheus, startPrometheus } from '../../helpers/tools.ts'

const MISSING_ID = '01900000-0000-7000-8000-000000000000'

describe('promtool and the /metrics endpoint', { skip: programMissing(PROMTOOL, 'apt-get install prometheus') }, () => {
  let service: TestService
  before(async () => {
    service = await startService('embedded')
    // Series of every kind with samples in them, as the other /metrics tests leave: a 404 by route, an unmatched
    // URL, SQL of both kinds, the readiness gauge.
    await service.fetch(`/v1/books/${MISSING_ID}`)
    await service.fetch('/wp-login.php')
    await service.fetch(
      '/v1/books',
      jsonRequest('POST', { title: 'Dune', author: 'Frank Herbert', published_date: '1965-08-01' }),
    )
    await service.fetch('/readyz')
  })
  after(() => service?.close())

  const scrape = async () => {
    const response = await service.fetch('/metrics')
    assert.equal(response.status, 200)
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/)
    return response.text()
  }

  it('when promtool checks the output, then it finds no problem', async () => {
    await service.fetch('/v1/books')
    const text = await scrape()
    const child = spawn(PROMTOOL, ['check', 'metrics'])
    let output = ''
    child.stdout.on('data', (chunk) => {
      output += chunk
    })
    child.stderr.on('data', (chunk) => {
      output += chunk
    })
    child.stdin.end(text)
    const [code] = await new Promise<[number | null]>((resolve) => child.on('exit', (exit) => resolve([exit])))
    assert.equal(code, 0, output)
    assert.equal(output.trim(), '')
  })
})

describe('a real Prometheus scraping the service', {
  skip: programMissing(PROMETHEUS, 'apt-get install prometheus'),
}, () => {
  let service: TestService
  let prometheus: RunningPrometheus
  before(async () => {
    service = await startService('embedded')
    prometheus = await startPrometheus([new URL(service.baseUrl).host])
  })
  after(async () => {
    prometheus?.stop()
    await service?.close()
  })

  it('when book reads are served, then a PromQL query sees them under route="/v1/books/:id"', async () => {
    for (let i = 0; i < 5; i++) await service.fetch(`/v1/books/${MISSING_ID}`)
    const query = 'sum(http_request_duration_seconds_count{job="myapp",route="/v1/books/:id"})'
    let value: number | undefined
    for (let attempt = 0; attempt < 60 && value === undefined; attempt++) {
      await sleep(500)
      const found = (await prometheus.query(query))[0]?.value[1]
      if (found !== undefined && Number(found) >= 5) value = Number(found)
    }
    assert.equal(value, 5, 'Prometheus scraped the five reads within 30 s')
  })
})
