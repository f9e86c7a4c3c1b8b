// Rate limiting: per client address, counted before anything else reads the request, fail-open when Redis is
// gone; and the smaller budget of refused bearer tokens. Two instances sharing one Redis are in test/system/http.
import assert from 'node:assert/strict'
import { after, before, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe } from '../../helpers/describe.ts'
import {
  badToken,
  bearer,
  freshAddress,
  freshSubject,
  from,
  goodToken,
  inParallel,
  jwtService,
  tally,
} from '../../helpers/rate-limit.ts'
import { BACKENDS, bodyOf, jsonRequest, skipReason, startService, type TestService } from '../../helpers/service.ts'
import { freePort } from '../../helpers/tools.ts'

const skips = Object.fromEntries(
  await Promise.all(BACKENDS.map(async (backend) => [backend, await skipReason(backend)])),
)

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
})

const book = { title: 'Kindred', author: 'Octavia E. Butler', published_date: '1979-06-01' }

const rateLimitHeaders = (response: Response) =>
  ['ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset'].map((name) => response.headers.get(name))

describe('the request budget counts every answer', () => {
  it('when 700 requests from one address fail validation (422), then each lowers RateLimit-Remaining and the 601st gets 429', async () => {
    const service = await startService('embedded', { RATE_LIMIT_MAX: '600', RATE_LIMIT_WINDOW: '1m' })
    try {
      const remaining: string[] = []
      const statuses: number[] = []
      for (let i = 0; i < 700; i++) {
        const response = await service.fetch('/v1/books?pageSize=0')
        await response.arrayBuffer()
        statuses.push(response.status)
        remaining.push(response.headers.get('ratelimit-remaining') ?? 'missing')
      }
      assert.deepEqual(tally(statuses), { 422: 600, 429: 100 })
      assert.deepEqual(statuses.slice(0, 600), Array(600).fill(422))
      assert.deepEqual(
        remaining,
        [...Array.from({ length: 600 }, (_, i) => String(599 - i)), ...Array(100).fill('0')],
        'Remaining counts down with every 422',
      )
    } finally {
      await service.close()
    }
  })

  for (const backend of BACKENDS) {
    it(`when /v1 gives every kind of answer, then each carries RateLimit-*, counted by subject or else by address (${backend})`, {
      skip: skips[backend],
    }, async () => {
      type Call = [expected: number, path: string, init: (token: string, reader: string) => RequestInit]
      // One subject's calls, whatever they are answered, with a writer's token and a reader's.
      const bySubject: Call[] = [
        [200, '/v1/books', (token) => ({ headers: bearer(token) })],
        [201, '/v1/books', (token) => jsonRequest('POST', book, bearer(token))],
        [400, '/v1/books/not-a-uuid', (token) => ({ headers: bearer(token) })],
        [400, '/v1/books', (token) => jsonRequest('POST', '{"title":', bearer(token))],
        [404, '/v1/books/019a7c1e-5b3a-7cc1-9a4e-3f1d2b6c8e90', (token) => ({ headers: bearer(token) })],
        [
          415,
          '/v1/books',
          (token) => ({ method: 'POST', body: 'x', headers: { ...bearer(token), 'content-type': 'text/plain' } }),
        ],
        [422, '/v1/books', (token) => jsonRequest('POST', {}, bearer(token))],
        [422, '/v1/books?page=0', (token) => ({ headers: bearer(token) })],
        [403, '/v1/books', (_token, reader) => jsonRequest('POST', book, bearer(reader))],
      ]
      // Calls with no subject to count them by (none sent, a bad one, or a route that reads none): the address's.
      const byAddress: Call[] = [
        [404, '/v1/no-such-route', () => ({})],
        [405, '/v1/books', (token) => ({ method: 'PATCH', headers: bearer(token) })],
        [401, '/v1/books', () => ({})],
        [401, '/v1/books', (token) => ({ headers: bearer(badToken(token)) })],
      ]
      const max = bySubject.length
      const service = await jwtService(backend, { RATE_LIMIT_MAX: String(max), RATE_LIMIT_WINDOW: '1m' })
      try {
        const subject = freshSubject()
        const [token, reader] = [await goodToken(undefined, subject), await goodToken('books:read', subject)]
        const address = freshAddress()
        const run = async (calls: Call[], extra: Call | undefined) => {
          const seen: number[] = []
          for (const [index, [expected, path, init]] of [...calls, ...(extra ? [extra] : [])].entries()) {
            const { headers, ...rest } = init(token, reader)
            const response = await service.fetch(path, {
              ...rest,
              headers: from(address, headers as Record<string, string>),
            })
            await response.arrayBuffer()
            const status = index === max ? 429 : expected
            assert.equal(response.status, status, `${path} → ${response.status}`)
            const [limit, left, reset] = rateLimitHeaders(response)
            assert.equal(limit, String(max), `${status} ${path}: RateLimit-Limit`)
            assert.equal(left, String(Math.max(0, max - 1 - index)), `${status} ${path}: RateLimit-Remaining`)
            assert.ok(Number(reset) >= 1 && Number(reset) <= 60, `${status} ${path}: RateLimit-Reset ${reset}`)
            seen.push(response.status)
          }
          return seen
        }
        const subjectSeen = await run(bySubject, bySubject[0])
        assert.deepEqual(subjectSeen.sort(), [200, 201, 400, 400, 403, 404, 415, 422, 422, 429])
        // The same address's calls without a subject have a budget of their own, untouched by the subject's.
        assert.deepEqual((await run(byAddress, undefined)).sort(), [401, 401, 404, 405])
      } finally {
        await service.close()
      }
    })
  }
})

describe('whose budget a request counts against (AUTH_MODE=jwt)', () => {
  let service: TestService
  before(async () => {
    service = await jwtService('embedded', { RATE_LIMIT_MAX: '4', RATE_LIMIT_WINDOW: '1m' })
  })
  after(() => service?.close())

  const statusOf = async (address: string, headers: Record<string, string> = {}) => {
    const response = await service.fetch('/v1/books', { headers: from(address, headers) })
    await response.arrayBuffer()
    return response.status
  }

  it('when two subjects call from two addresses, then each subject has one budget wherever it calls from', async () => {
    const [home, office] = [freshAddress(), freshAddress()]
    const [alice, bob] = [freshSubject(), freshSubject()]
    const aliceToken = bearer(await goodToken(undefined, alice))
    const statuses = [
      await statusOf(home, aliceToken),
      await statusOf(office, aliceToken),
      await statusOf(home, aliceToken),
      await statusOf(office, aliceToken),
    ]
    assert.deepEqual(statuses, [200, 200, 200, 200])
    assert.equal(await statusOf(freshAddress(), aliceToken), 429, 'a new address buys no fresh budget')
    // Behind one address (a NAT), another user is not limited by the first.
    assert.equal(await statusOf(home, bearer(await goodToken(undefined, bob))), 200)
    assert.equal(await statusOf(home), 401, 'nor is an anonymous caller there: the address has its own budget')
  })

  it('when anonymous callers come from one IPv6 /64, then they share its budget; the next /64 has its own', async () => {
    // 2001:db8:<site>:a::/64 holds five hosts; 2001:db8:<site>:b::/64 is the next block.
    const site = `2001:db8:${freshAddress().split('.')[3]}`
    const statuses = []
    for (let host = 1; host <= 5; host++) statuses.push(await statusOf(`${site}:a:0:0:0:${host}`))
    assert.deepEqual(statuses, [401, 401, 401, 401, 429])
    assert.equal(await statusOf(`${site}:b:0:0:0:1`), 401, 'another /64 is another client')
  })
})

describe('the budget of refused bearer tokens', () => {
  let service: TestService
  before(async () => {
    service = await jwtService('embedded', {
      RATE_LIMIT_MAX: '100000',
      AUTH_FAILURE_LIMIT: '20',
      AUTH_FAILURE_WINDOW: '1m',
    })
  })
  after(() => service?.close())

  it('when one address sends 1,000 bad tokens, then the budget of 20 (and those in flight) get 401 and the rest 429 unverified, while another address is served', async (t) => {
    const attacker = freshAddress()
    const template = await goodToken()
    const neighbours = await Promise.all(Array.from({ length: 5 }, () => goodToken()))
    const known = await goodToken()
    assert.equal((await service.fetch('/v1/books', { headers: from(attacker, bearer(known)) })).status, 200)
    const served: number[] = []
    const started = performance.now()
    const statuses = await inParallel(1000, 20, async (index) => {
      if (index % 100 === 50) {
        // A client at another address, with tokens this instance has not seen yet, in the middle of the attack.
        const response = await service.fetch('/v1/books', {
          headers: from('203.0.113.9', bearer(neighbours[index % 5] as string)),
        })
        await response.arrayBuffer()
        served.push(response.status)
      }
      const response = await service.fetch('/v1/books', { headers: from(attacker, bearer(badToken(template))) })
      if (response.status === 429) {
        assert.equal(response.headers.get('ratelimit-limit'), '20')
        assert.equal(response.headers.get('ratelimit-remaining'), '0')
        assert.ok(Number(response.headers.get('retry-after')) >= 1 && Number(response.headers.get('retry-after')) <= 60)
        assert.equal(response.headers.get('ratelimit-reset'), response.headers.get('retry-after'))
        assert.match((await bodyOf(response)).detail, /too many refused bearer tokens/)
      } else await response.arrayBuffer()
      return response.status
    })
    const elapsedMs = performance.now() - started
    const counts = tally(statuses)
    t.diagnostic(
      `1,000 bad tokens from one address at 20 in flight: ${JSON.stringify(counts)} in ${Math.round(elapsedMs)} ms`,
    )
    // Only refused tokens count, so the guesses in flight when the 20th is refused are checked too.
    const refused = counts[401] ?? 0
    assert.ok(refused >= 20 && refused < 20 + 20, `${refused} × 401: the budget of 20, and fewer than 20 in flight`)
    assert.equal(refused + (counts[429] ?? 0), 1000)
    assert.deepEqual(served, Array(10).fill(200), 'the other address is served throughout')
    const verified = service.logs.filter((line) => line.message === 'token rejected').length
    assert.equal(verified, refused, 'no token answered 429 was verified at all')
    const warnings = service.logs.filter(
      (line) => line.message === 'authentication failure budget used up; refusing tokens',
    )
    assert.equal(warnings.length, 1, 'one warning when the budget runs out, not one per refusal')

    const good = await service.fetch('/v1/books', { headers: from(attacker, bearer(await goodToken())) })
    assert.equal(good.status, 429, 'a new token from that address is not looked at either')
    const seen = await service.fetch('/v1/books', { headers: from(attacker, bearer(known)) })
    assert.equal(seen.status, 200, 'a token this instance verified before is no guess, and is still honoured')
  })

  it('when a client sends good tokens, then they do not count: its whole budget of failures is left', async () => {
    const client = freshAddress()
    for (let i = 0; i < 30; i++) {
      const response = await service.fetch('/v1/books', { headers: from(client, bearer(await goodToken())) })
      assert.equal(response.status, 200)
      await response.arrayBuffer()
    }
    const template = await goodToken()
    const statuses = await inParallel(25, 5, async () => {
      const response = await service.fetch('/v1/books', { headers: from(client, bearer(badToken(template))) })
      await response.arrayBuffer()
      return response.status
    })
    const counts = tally(statuses)
    assert.ok((counts[401] ?? 0) >= 20 && (counts[401] ?? 0) < 20 + 5, JSON.stringify(counts))
    assert.equal((counts[401] ?? 0) + (counts[429] ?? 0), 25)
  })

  it('when bursts of 200 requests from one address each carry a fresh good token, then every one is served', async (t) => {
    const client = freshAddress()
    for (let burst = 0; burst < 5; burst++) {
      const token = await goodToken()
      const statuses = await inParallel(200, 200, async () => {
        const response = await service.fetch('/v1/books', { headers: from(client, bearer(token)) })
        await response.arrayBuffer()
        return response.status
      })
      assert.deepEqual(tally(statuses), { 200: 200 }, `burst ${burst + 1}`)
    }
    const verifications = service.logs.filter((line) => line.message === 'token rejected').length
    t.diagnostic(`5 bursts of 200 with a fresh token each: all served; ${verifications} tokens rejected in the run`)
  })

  it('when requests carry no token, then they do not count either; a malformed header does', async () => {
    const client = freshAddress()
    for (let i = 0; i < 30; i++) {
      const response = await service.fetch('/v1/books', { headers: from(client) })
      assert.equal(response.status, 401)
      await response.arrayBuffer()
    }
    const statuses: number[] = []
    for (let i = 0; i < 21; i++) {
      const response = await service.fetch('/v1/books', { headers: from(client, { authorization: `Basic ${i}` }) })
      await response.arrayBuffer()
      statuses.push(response.status)
    }
    assert.deepEqual(tally(statuses), { 401: 20, 429: 1 })
  })

  it('when the window has passed, then the client is served again', async () => {
    const short = await jwtService('embedded', { AUTH_FAILURE_LIMIT: '3', AUTH_FAILURE_WINDOW: '2s' })
    try {
      const client = freshAddress()
      const template = await goodToken()
      const guess = () => short.fetch('/v1/books', { headers: from(client, bearer(badToken(template))) })
      const statuses = []
      for (let i = 0; i < 5; i++) statuses.push((await guess()).status)
      assert.deepEqual(statuses, [401, 401, 401, 429, 429])
      const refused = await guess()
      assert.equal(refused.status, 429)
      const retryAfter = Number(refused.headers.get('retry-after'))
      assert.ok(retryAfter >= 1 && retryAfter <= 2, `Retry-After ${retryAfter}`)
      await sleep(retryAfter * 1000 + 100)
      const again = await short.fetch('/v1/books', { headers: from(client, bearer(await goodToken())) })
      assert.equal(again.status, 200)
      assert.equal((await guess()).status, 401, 'and has a fresh budget')
    } finally {
      await short.close()
    }
  })

  it('when AUTH_FAILURE_LIMIT is 0, then bad tokens only ever get 401', async () => {
    const unlimited = await jwtService('embedded', { AUTH_FAILURE_LIMIT: '0' })
    try {
      const client = freshAddress()
      const template = await goodToken()
      const statuses = await inParallel(60, 5, async () => {
        const response = await unlimited.fetch('/v1/books', { headers: from(client, bearer(badToken(template))) })
        await response.arrayBuffer()
        return response.status
      })
      assert.deepEqual(tally(statuses), { 401: 60 })
    } finally {
      await unlimited.close()
    }
  })

  it('when Redis cannot be reached, then tokens are checked as usual (fail-open)', async () => {
    const failOpen = await jwtService('embedded', {
      AUTH_FAILURE_LIMIT: '2',
      RATE_LIMIT_MAX: '2',
      REDIS_URL: `redis://127.0.0.1:${await freePort()}`,
    })
    try {
      const client = freshAddress()
      const template = await goodToken()
      const statuses = []
      for (let i = 0; i < 5; i++) {
        const response = await failOpen.fetch('/v1/books', { headers: from(client, bearer(badToken(template))) })
        await response.arrayBuffer()
        statuses.push(response.status)
      }
      assert.deepEqual(statuses, Array(5).fill(401))
      assert.equal(
        (await failOpen.fetch('/v1/books', { headers: from(client, bearer(await goodToken())) })).status,
        200,
      )
    } finally {
      await failOpen.close()
    }
  })
})
