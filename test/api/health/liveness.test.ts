// GET /livez is answered in front of Fastify; the answer must be the route's own, and still counted.
import assert from 'node:assert/strict'
import { request } from 'node:http'
import { after, before, it } from 'node:test'
import { describe } from '../../helpers/describe.ts'
import { startService, type TestService } from '../../helpers/service.ts'

const COUNT = 'http_request_duration_seconds_count{method="GET",route="/livez",status_code="200"}'
// Headers that differ by nature between two answers, or that only a socket has.
const PER_ANSWER = new Set(['date', 'x-request-id', 'connection', 'keep-alive'])

function count(metrics: string): number {
  const line = metrics.split('\n').find((candidate) => candidate.startsWith(`${COUNT} `))
  return line === undefined ? 0 : Number(line.slice(COUNT.length + 1))
}

/** One request on its own connection: status, headers, body. */
function get(url: string, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
    request(url, { headers, agent: false }, (response) => {
      let body = ''
      response.on('data', (chunk: Buffer) => {
        body += chunk.toString()
      })
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }))
    })
      .on('error', reject)
      .end()
  })
}

describe('GET /livez in front of the framework', () => {
  let service: TestService
  before(async () => {
    service = await startService('embedded')
  })
  after(() => service?.close())

  it('when probed, then the answer has the Fastify route’s status, body and headers', async () => {
    const fast = await get(`${service.baseUrl}/livez`)
    const routed = await service.app.inject({ url: '/livez' })
    assert.equal(fast.status, routed.statusCode)
    assert.equal(fast.body, routed.body)
    const comparable = (headers: Record<string, unknown>) =>
      Object.fromEntries(Object.entries(headers).filter(([name]) => !PER_ANSWER.has(name)))
    assert.deepEqual(comparable(fast.headers), comparable(routed.headers))
    assert.equal(fast.headers['content-security-policy'], "default-src 'none'; frame-ancestors 'none'")
  })

  it('when a request id is sent, then it is echoed; when none or a bad one is, then one is made', async () => {
    assert.equal(
      (await get(`${service.baseUrl}/livez`, { 'x-request-id': 'probe-1' })).headers['x-request-id'],
      'probe-1',
    )
    const made = (await get(`${service.baseUrl}/livez`, { 'x-request-id': 'bad id' })).headers['x-request-id']
    assert.match(String(made), /^[0-9a-f-]{36}$/)
  })

  it('when probed, then the probe is counted in the request metrics and not logged', async () => {
    const before = count(await (await service.fetch('/metrics')).text())
    const logged = service.logs.length
    for (let i = 0; i < 3; i++) assert.equal((await get(`${service.baseUrl}/livez`)).status, 200)
    assert.equal(count(await (await service.fetch('/metrics')).text()) - before, 3)
    assert.equal(service.logs.slice(logged).filter((line) => line.url === '/livez').length, 0)
  })

  it('when another method or a query string is used, then the framework answers as before', async () => {
    const head = await fetch(`${service.baseUrl}/livez`, { method: 'HEAD' })
    assert.equal(head.status, 200)
    const post = await service.fetch('/livez', { method: 'POST' })
    assert.equal(post.status, 405)
    assert.match(post.headers.get('content-type') ?? '', /^application\/problem\+json/)
    const logged = service.logs.length
    assert.equal((await service.fetch('/livez?verbose=1')).status, 200)
    assert.ok(
      service.logs.slice(logged).some((line) => line.url === '/livez?verbose=1'),
      'routed, so logged',
    )
  })

  it('when the service drains, then probes still answer 200 and close their connection', async () => {
    service.app.drain.begin()
    const probe = await get(`${service.baseUrl}/livez`)
    assert.equal(probe.status, 200)
    assert.equal(probe.headers.connection, 'close')
  })
})
