// Fault: the database freezes (SIGSTOP on the postmaster and its backends) for 10 s under traffic. No request may
// wait longer than the configured bounds, /livez stays 200, and service resumes by itself after SIGCONT.
import assert from 'node:assert/strict'
import { after, before, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe } from '../../helpers/describe.ts'
import { jsonRequest, startService, type TestService } from '../../helpers/service.ts'
import {
  startThrowawayPostgres,
  type ThrowawayPostgres,
  throwawayPostgresMissing,
} from '../../helpers/throwaway-postgres.ts'

const QUERY_TIMEOUT_MS = 2000
const CONNECT_TIMEOUT_MS = 1000
const book = { title: 'Frozen', author: 'Hans Christian Andersen', published_date: '1844-12-21' }

describe('when the database hangs', { skip: throwawayPostgresMissing() }, () => {
  let database: ThrowawayPostgres
  let service: TestService
  before(async () => {
    database = await startThrowawayPostgres()
    service = await startService('postgres', {
      DATABASE_URL: database.url,
      DB_QUERY_TIMEOUT: `${QUERY_TIMEOUT_MS}ms`,
      DB_CONNECT_TIMEOUT: `${CONNECT_TIMEOUT_MS}ms`,
      DB_POOL_MAX: '4',
    })
  })
  after(async () => {
    await service?.close()
    await database?.destroy()
  })

  it('then every request ends within the bounds with 503, /livez stays 200, and it recovers after SIGCONT', async (t) => {
    assert.equal((await service.fetch('/v1/books', jsonRequest('POST', book))).status, 201)
    await database.freeze()
    const frozenAt = performance.now()
    const answers: { status: number; ms: number }[] = []
    try {
      // Bounded: 10 s of frozen database, a request every 200 ms, 4 of them concurrently.
      while (performance.now() - frozenAt < 10_000) {
        const batch = await Promise.all(
          ['/v1/books', '/v1/books', `/readyz`, '/v1/books'].map(async (path) => {
            const started = performance.now()
            const response = await fetch(`${service.baseUrl}${path}`)
            return {
              status: response.status,
              ms: performance.now() - started,
              retryAfter: response.headers.get('retry-after'),
            }
          }),
        )
        for (const answer of batch) {
          assert.equal(answer.status, 503)
          assert.equal(answer.retryAfter, '5')
          answers.push(answer)
        }
        const live = await fetch(`${service.baseUrl}/livez`)
        assert.equal(live.status, 200)
        await sleep(200)
      }
    } finally {
      await database.thaw()
    }
    const slowest = Math.max(...answers.map((answer) => answer.ms))
    assert.ok(slowest <= QUERY_TIMEOUT_MS + 500, `slowest answer ${slowest.toFixed(0)} ms`)

    const thawedAt = performance.now()
    let recovered: number | undefined
    while (recovered === undefined && performance.now() - thawedAt < 15_000) {
      if ((await fetch(`${service.baseUrl}/v1/books`)).status === 200) recovered = performance.now() - thawedAt
      else await sleep(100)
    }
    assert.ok(recovered !== undefined, 'the service recovered within 15 s of SIGCONT')
    t.diagnostic(
      `${answers.length} answers while frozen, all 503, slowest ${slowest.toFixed(0)} ms; first 200 ${recovered.toFixed(0)} ms after SIGCONT`,
    )
    assert.equal((await service.fetch('/v1/books', jsonRequest('POST', book))).status, 201)
  })
})
