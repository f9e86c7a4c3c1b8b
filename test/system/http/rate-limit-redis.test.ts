// Rate limiting across instances: two services on one Redis count one request budget and one budget of refused
// bearer tokens between them, whichever instance a request reaches.
import assert from 'node:assert/strict'
import { it } from 'node:test'
import { Redis } from 'ioredis'
import { describe } from '../../helpers/describe.ts'
import { REQUIRE_SERVICES } from '../../helpers/postgres-server.ts'
import {
  badToken,
  bearer,
  freshAddress,
  from,
  goodToken,
  inParallel,
  jwtService,
  tally,
} from '../../helpers/rate-limit.ts'
import { startService } from '../../helpers/service.ts'

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

async function redisMissing(): Promise<string | false> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0 })
  try {
    await redis.connect()
    await redis.ping()
    return false
  } catch (error) {
    const reason = `no Redis at ${REDIS_URL} (${(error as Error).message}); set TEST_REDIS_URL`
    if (REQUIRE_SERVICES) throw new Error(`REQUIRE_TEST_SERVICES=true but ${reason}`)
    return reason
  } finally {
    redis.disconnect()
  }
}

const noRedis = await redisMissing()

describe('two instances sharing one Redis', { skip: noRedis }, () => {
  it('when two instances share Redis with a limit of 10, then exactly 10 requests pass in total', async () => {
    const redis = new Redis(REDIS_URL)
    // Only this test's bucket: other test files may be counting other addresses in the same Redis meanwhile.
    await redis.del('myapp-rate-limit:requests:ip:127.0.0.1')
    redis.disconnect()
    const env = { RATE_LIMIT_MAX: '10', RATE_LIMIT_WINDOW: '1m', REDIS_URL }
    const [a, b] = [await startService('embedded', env), await startService('embedded', env)]
    try {
      const statuses: number[] = []
      for (let i = 0; i < 24; i++) statuses.push((await (i % 2 === 0 ? a : b).fetch('/v1/books')).status)
      assert.equal(statuses.filter((status) => status === 200).length, 10, String(statuses))
      assert.equal(statuses.filter((status) => status === 429).length, 14)
      assert.deepEqual(statuses.slice(0, 10), Array(10).fill(200), 'the first ten pass, whichever instance serves them')
    } finally {
      await a.close()
      await b.close()
    }
  })

  it('when two instances share Redis, then they share one budget: 10 refused tokens (and those in flight) in all, whichever instance checks them', async (t) => {
    const env = { AUTH_FAILURE_LIMIT: '10', AUTH_FAILURE_WINDOW: '1m', REDIS_URL, RATE_LIMIT_MAX: '100000' }
    const [a, b] = [await jwtService('embedded', env), await jwtService('embedded', env)]
    try {
      const client = freshAddress()
      for (let i = 0; i < 20; i++) {
        const response = await (i % 2 === 0 ? a : b).fetch('/v1/books', {
          headers: from(client, bearer(await goodToken())),
        })
        assert.equal(response.status, 200, 'good tokens are forgiven on either instance')
        await response.arrayBuffer()
      }
      const template = await goodToken()
      const started = performance.now()
      const statuses = await inParallel(200, 20, async (index) => {
        const response = await (index % 2 === 0 ? a : b).fetch('/v1/books', {
          headers: from(client, bearer(badToken(template))),
        })
        await response.arrayBuffer()
        return response.status
      })
      t.diagnostic(
        `200 bad tokens over two instances: ${JSON.stringify(tally(statuses))} in ${Math.round(performance.now() - started)} ms`,
      )
      // Only refused tokens count, so the guesses in flight when the 10th is refused are checked too.
      const counts = tally(statuses)
      assert.ok((counts[401] ?? 0) >= 10 && (counts[401] ?? 0) < 10 + 20, JSON.stringify(counts))
      assert.equal((counts[401] ?? 0) + (counts[429] ?? 0), 200)
      for (const instance of [a, b]) {
        const response = await instance.fetch('/v1/books', { headers: from(client, bearer(await goodToken())) })
        assert.equal(response.status, 429, 'both instances refuse the address')
        await response.arrayBuffer()
      }
      const neighbour = await b.fetch('/v1/books', { headers: from(freshAddress(), bearer(await goodToken())) })
      assert.equal(neighbour.status, 200)
    } finally {
      await a.close()
      await b.close()
    }
  })
})
