// Fault: PostgreSQL crashes (pg_ctl stop -m immediate) for 10 s under ~200 creates/s. Every create the client saw
// acknowledged is stored exactly once; during the outage answers are 503 with Retry-After, fast; service
// resumes soon after the database accepts connections again.
import assert from 'node:assert/strict'
import { after, before, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import postgres from 'postgres'
import { describe } from '../../helpers/describe.ts'
import { bodyOf, jsonRequest, startService, type TestService } from '../../helpers/service.ts'
import {
  startThrowawayPostgres,
  type ThrowawayPostgres,
  throwawayPostgresMissing,
} from '../../helpers/throwaway-postgres.ts'

const RATE_PER_SECOND = 200
const RUN_MS = 20_000
const OUTAGE_AT_MS = 5_000
const OUTAGE_MS = 10_000

describe('when the database crashes under write load', { skip: throwawayPostgresMissing() }, () => {
  let database: ThrowawayPostgres
  let service: TestService
  before(async () => {
    database = await startThrowawayPostgres()
    service = await startService('postgres', {
      DATABASE_URL: database.url,
      DB_CONNECT_TIMEOUT: '1s',
      DB_QUERY_TIMEOUT: '2s',
      DB_POOL_MAX: '8',
    })
  })
  after(async () => {
    await service?.close()
    await database?.destroy()
  })

  it('then acknowledged writes survive exactly once, outage answers are quick 503s, and recovery is prompt', async (t) => {
    const acknowledged = new Set<string>()
    const outageAnswers: { status: number; ms: number; retryAfter: string | null }[] = []
    let failures = 0
    let serial = 0
    let acceptingAt: number | undefined
    let firstSuccessAfterRestart: number | undefined
    const startedAt = performance.now()
    const inFlight = new Set<Promise<void>>()

    const send = async () => {
      const title = `Write ${serial++}`
      const sentAt = performance.now()
      const response = await fetch(
        `${service.baseUrl}/v1/books`,
        jsonRequest('POST', { title, author: 'Load Tester', published_date: '2000-01-01' }),
      ).catch(() => undefined)
      const ms = performance.now() - sentAt
      if (response === undefined) {
        failures++
        return
      }
      if (response.status === 201) {
        acknowledged.add((await bodyOf(response)).id)
        if (acceptingAt !== undefined && firstSuccessAfterRestart === undefined && sentAt >= acceptingAt) {
          firstSuccessAfterRestart = performance.now() - acceptingAt
        }
        return
      }
      await response.arrayBuffer()
      const elapsed = sentAt - startedAt
      if (elapsed > OUTAGE_AT_MS + 200 && acceptingAt === undefined) {
        outageAnswers.push({ status: response.status, ms, retryAfter: response.headers.get('retry-after') })
      }
    }

    const outage = (async () => {
      await sleep(OUTAGE_AT_MS)
      await database.crash()
      await sleep(OUTAGE_MS)
      await database.start()
      acceptingAt = performance.now()
    })()

    // Bounded: RUN_MS of sending at RATE_PER_SECOND, at most 64 requests outstanding.
    const interval = 1000 / RATE_PER_SECOND
    while (performance.now() - startedAt < RUN_MS) {
      if (inFlight.size < 64) {
        const request = send().finally(() => inFlight.delete(request))
        inFlight.add(request)
      }
      await sleep(interval)
    }
    await Promise.all(inFlight)
    await outage

    const check = postgres(database.url, { max: 1, onnotice: () => {} })
    try {
      const rows = await check<{ id: string }[]>`SELECT id FROM books`
      const stored = new Set(rows.map((row) => row.id))
      assert.equal(rows.length, stored.size, 'no book stored twice')
      for (const id of acknowledged) assert.ok(stored.has(id), `acknowledged ${id} is stored`)
      t.diagnostic(
        `${serial} sent, ${acknowledged.size} acknowledged, ${rows.length} rows; ${outageAnswers.length} outage answers, ` +
          `slowest ${Math.max(...outageAnswers.map((a) => a.ms)).toFixed(0)} ms; first 201 ${firstSuccessAfterRestart?.toFixed(0)} ms after restart; ${failures} transport failures`,
      )
    } finally {
      await check.end()
    }
    assert.equal(failures, 0, 'no connection was dropped by the service')
    assert.ok(outageAnswers.length > 100)
    for (const answer of outageAnswers) {
      assert.equal(answer.status, 503)
      assert.equal(answer.retryAfter, '5')
    }
    const slow = outageAnswers.filter((answer) => answer.ms > 1000)
    assert.ok(slow.length === 0, `${slow.length} outage answers took over 1 s`)
    assert.ok(
      firstSuccessAfterRestart !== undefined && firstSuccessAfterRestart < 2000,
      `first 201 after ${firstSuccessAfterRestart} ms`,
    )
  })
})
