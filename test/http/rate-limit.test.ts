// Rate limiting: per client, shared by two instances through Redis, fail-open when Redis is gone.
import assert from 'node:assert/strict'
import { it } from 'node:test'
import { Redis } from 'ioredis'
import { describe } from '../helpers/describe.ts'
import { REQUIRE_SERVICES } from '../helpers/postgres-server.ts'
import { startService } from '../helpers/service.ts'
import { freePort } from '../helpers/tools.ts'

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

describe('rate limits', () => {
  it('when one instance allows 3 per window, then the 4th request gets a 429 problem with Retry-After', async () => {
    const service = await startService('embedded', { RATE_LIMIT_MAX: '3', RATE_LIMIT_WINDOW: '1m' })
    try {
      const statuses = []
      for (let i = 0; i < 4; i++) statuses.push((await service.fetch('/v1/books')).status)
      assert.deepEqual(statuses, [200, 200, 200, 429])
      const limited = await service.fetch('/v1/books')
      assert.equal(limited.headers.get('ratelimit-limit'), '3')
      assert.equal(limited.headers.get('ratelimit-remaining'), '0')
      assert.ok(Number(limited.headers.get('retry-after')) > 0)
      assert.equal(limited.headers.get('content-type'), 'application/problem+json; charset=utf-8')
      assert.equal((await service.fetch('/livez')).status, 200, 'probes are never limited')
    } finally {
      await service.close()
    }
  })

  it('when Redis cannot be reached, then requests are served (fail-open) without waiting on it', async () => {
    const service = await startService('embedded', {
      RATE_LIMIT_MAX: '2',
      REDIS_URL: `redis://127.0.0.1:${await freePort()}`,
    })
    try {
      const started = performance.now()
      for (let i = 0; i < 5; i++) assert.equal((await service.fetch('/v1/books')).status, 200)
      assert.ok(performance.now() - started < 5000)
    } finally {
      await service.close()
    }
  })

  it('when two instances share Redis with a limit of 10, then exactly 10 requests pass in total', {
    skip: noRedis,
  }, async () => {
    const redis = new Redis(REDIS_URL)
    const keys = await redis.keys('myapp-rate-limit:*')
    if (keys.length > 0) await redis.del(...keys)
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
})
