// Database failures: 503 with Retry-After and never a hang when it is gone, 500 with nothing leaked when it breaks.
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:net'
import { after, before, it } from 'node:test'
import { parseConfig } from '../../../src/config/config.ts'
import { openDatabase } from '../../../src/db/open.ts'
import { createLogger } from '../../../src/logger.ts'
import { createMetrics } from '../../../src/observability/metrics.ts'
import { createService } from '../../../src/service.ts'
import { describe } from '../../helpers/describe.ts'
import { BACKENDS, jsonRequest, skipReason, startService, type TestService } from '../../helpers/service.ts'

const hobbit = { title: 'The Hobbit', author: 'J. R. R. Tolkien', published_date: '1937-09-21' }
const SOME_ID = '01900000-0000-7000-8000-000000000000'

/** A TCP server that accepts connections and never answers: a hung database. */
async function silentServer(): Promise<{ port: number; server: Server }> {
  const server = createServer(() => {})
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { port: (server.address() as { port: number }).port, server }
}

async function closedPort(): Promise<number> {
  const { port, server } = await silentServer()
  await new Promise((resolve) => server.close(resolve))
  return port
}

async function appOn(databaseUrl: string) {
  const config = parseConfig({ DATABASE_URL: databaseUrl, DB_CONNECT_TIMEOUT: '1s' })
  const logger = createLogger('silent')
  const database = await openDatabase(config.database, logger)
  const { app } = await createService({ config, database, logger, metrics: createMetrics() })
  return {
    app,
    async close() {
      await app.close()
      await database.close()
    },
  }
}

async function expectUnavailable(response: {
  statusCode: number
  headers: Record<string, unknown>
  json(): { status: number }
}) {
  assert.equal(response.statusCode, 503)
  assert.equal(response.headers['retry-after'], '5')
  assert.match(String(response.headers['content-type']), /^application\/problem\+json/)
  assert.equal(response.json().status, 503)
}

describe('when the PostgreSQL server refuses connections', () => {
  let subject: Awaited<ReturnType<typeof appOn>>
  before(async () => {
    subject = await appOn(`postgres://myapp:secret@127.0.0.1:${await closedPort()}/myapp`)
  })
  after(() => subject.close())

  it('then data routes answer 503 with Retry-After at once', async () => {
    for (const request of [
      { method: 'GET' as const, url: '/v1/books' },
      { method: 'GET' as const, url: `/v1/books/${SOME_ID}` },
      { method: 'POST' as const, url: '/v1/books', payload: hobbit },
    ]) {
      const started = performance.now()
      const response = await subject.app.inject(request)
      await expectUnavailable(response)
      assert.ok(performance.now() - started < 2000, `${request.url} answered within 2 s`)
      assert.doesNotMatch(response.body, /ECONNREFUSED|secret|127\.0\.0\.1/)
    }
  })

  it('then /readyz is 503 and /livez stays 200', async () => {
    await expectUnavailable(await subject.app.inject({ url: '/readyz' }))
    assert.equal((await subject.app.inject({ url: '/livez' })).statusCode, 200)
  })
})

describe('when the PostgreSQL server accepts connections but never answers', () => {
  let hung: Awaited<ReturnType<typeof silentServer>>
  let subject: Awaited<ReturnType<typeof appOn>>
  before(async () => {
    hung = await silentServer()
    subject = await appOn(`postgres://myapp@127.0.0.1:${hung.port}/myapp`)
  })
  after(async () => {
    await subject.close()
    hung.server.close()
  })

  it('then requests end in 503 after the connect timeout instead of hanging', async () => {
    const started = performance.now()
    await expectUnavailable(await subject.app.inject({ url: `/v1/books/${SOME_ID}` }))
    const elapsed = performance.now() - started
    assert.ok(elapsed >= 900 && elapsed < 3000, `answered after ${elapsed.toFixed(0)} ms (DB_CONNECT_TIMEOUT=1s)`)
  })

  it('then /readyz is 503 within its own 2 s bound', async () => {
    const started = performance.now()
    await expectUnavailable(await subject.app.inject({ url: '/readyz' }))
    assert.ok(performance.now() - started < 2500)
  })
})

for (const backend of BACKENDS) {
  describe(`when the ${backend} database breaks under a running service`, { skip: await skipReason(backend) }, () => {
    let service: TestService
    before(async () => {
      service = await startService(backend)
    })
    after(() => service?.close())

    it('then an unexpected error is a 500 with a generic detail, and the full error is logged with the request id', async () => {
      await service.database.query('DROP TABLE books')
      const response = await service.fetch(`/v1/books/${SOME_ID}`, { headers: { 'x-request-id': 'broken-1' } })
      assert.equal(response.status, 500)
      const text = await response.text()
      const problem = JSON.parse(text)
      assert.equal(problem.detail, 'internal server error')
      assert.equal(problem.request_id, 'broken-1')
      assert.doesNotMatch(text, /relation|does not exist|SELECT|stack|\.ts:|\bat /i)
      const logged = service.logs.find((line) => line.request_id === 'broken-1' && line.level === 'error')
      assert.ok(logged, 'the error is logged with the request id')
      const err = logged.err as { message: string; stack: string; params?: unknown }
      assert.match(err.message, /relation "books" does not exist/)
      assert.match(err.stack, /\n\s+at /)
      assert.equal(err.params, undefined, 'statement parameters stay out of the log')
    })

    it('then a closed database answers 503, /readyz 503 and /livez 200', async () => {
      await service.database.close()
      const create = await service.fetch('/v1/books', jsonRequest('POST', hobbit))
      assert.equal(create.status, 503)
      assert.equal(create.headers.get('retry-after'), '5')
      assert.equal((await service.fetch('/readyz')).status, 503)
      assert.equal((await service.fetch('/livez')).status, 200)
    })
  })
}
