// Security headers on every kind of answer, and CORS limited to the configured origins.
import assert from 'node:assert/strict'
import { after, before, it } from 'node:test'
import { describe } from '../../helpers/describe.ts'
import { jsonRequest, startService, type TestService } from '../../helpers/service.ts'

const dune = { title: 'Dune', author: 'Frank Herbert', published_date: '1965-08-01' }

describe('security headers', () => {
  let service: TestService
  before(async () => {
    service = await startService('embedded')
  })
  after(() => service?.close())

  it('when any route answers, then nosniff, no-referrer and a deny-all CSP are set and nothing names the server', async () => {
    for (const [path, init] of [
      ['/v1/books', undefined],
      ['/v1/books', jsonRequest('POST', dune)],
      ['/nope', undefined],
      ['/livez', undefined],
      ['/openapi.json', undefined],
    ] as const) {
      const response = await service.fetch(path, init)
      assert.equal(response.headers.get('x-content-type-options'), 'nosniff', path)
      assert.equal(response.headers.get('referrer-policy'), 'no-referrer', path)
      assert.equal(response.headers.get('content-security-policy'), "default-src 'none'; frame-ancestors 'none'", path)
      assert.equal(response.headers.get('x-powered-by'), null)
      assert.equal(response.headers.get('server'), null)
    }
  })

  it('when a write or an error is answered, then Cache-Control is no-store; a read is left cacheable', async () => {
    const created = await service.fetch('/v1/books', jsonRequest('POST', dune))
    assert.equal(created.headers.get('cache-control'), 'no-store')
    assert.equal((await service.fetch('/v1/books/nope')).headers.get('cache-control'), 'no-store')
    assert.equal((await service.fetch('/v1/books')).headers.get('cache-control'), null)
  })
})

describe('CORS', () => {
  let open: TestService
  let closed: TestService
  before(async () => {
    open = await startService('embedded', { CORS_ALLOWED_ORIGINS: 'https://app.example.com,http://localhost:5173' })
    closed = await startService('embedded')
  })
  after(async () => {
    await open?.close()
    await closed?.close()
  })

  const preflight = (service: TestService, origin: string) =>
    service.app.inject({
      method: 'OPTIONS',
      url: '/v1/books',
      headers: {
        origin,
        'access-control-request-method': 'PUT',
        'access-control-request-headers': 'if-match,content-type',
      },
    })

  it('when an allowed origin calls, then it may read the response and the headers the API exposes', async () => {
    const response = await open.fetch('/v1/books', { headers: { origin: 'https://app.example.com' } })
    assert.equal(response.headers.get('access-control-allow-origin'), 'https://app.example.com')
    assert.match(response.headers.get('access-control-expose-headers') ?? '', /etag.*x-total-count/)
    const check = await preflight(open, 'http://localhost:5173')
    assert.equal(check.statusCode, 204)
    assert.equal(check.headers['access-control-allow-origin'], 'http://localhost:5173')
    assert.match(String(check.headers['access-control-allow-methods']), /PUT/)
    assert.match(String(check.headers['access-control-allow-headers']), /if-match/)
  })

  it('when another origin calls, then no CORS header lets its page read the answer', async () => {
    const response = await open.fetch('/v1/books', { headers: { origin: 'https://evil.example' } })
    assert.equal(response.headers.get('access-control-allow-origin'), null)
    assert.equal((await preflight(open, 'https://evil.example')).headers['access-control-allow-origin'], undefined)
  })

  it('when no origin is configured, then no CORS header is ever sent and OPTIONS answers 405 with Allow', async () => {
    const response = await closed.fetch('/v1/books', { headers: { origin: 'https://app.example.com' } })
    assert.equal(response.headers.get('access-control-allow-origin'), null)
    const options = await preflight(closed, 'https://app.example.com')
    assert.equal(options.statusCode, 405)
    assert.equal(options.headers.allow, 'GET, HEAD, POST')
  })

  it('when CORS_ALLOWED_ORIGINS is not a list of origins, then start-up stops naming it', async () => {
    await assert.rejects(
      startService('embedded', { CORS_ALLOWED_ORIGINS: 'app.example.com' }),
      /CORS_ALLOWED_ORIGINS: must be comma-separated origins/,
    )
  })
})
