// GET /v1/events: the outbox as server-sent events. From the oldest event, resumed from Last-Event-ID with no gap
// and no repeat (also while books are written concurrently), heartbeats while idle, declared access. Both backends.
import assert from 'node:assert/strict'
import { after, before, it } from 'node:test'
import { exportSPKI, generateKeyPair, SignJWT } from 'jose'
import { describe } from '../../helpers/describe.ts'
import { BACKENDS, bodyOf, jsonRequest, skipReason, startService, type TestService } from '../../helpers/service.ts'
import { openSse } from '../../helpers/sse.ts'

const book = (n: number) => ({ title: `Book ${n}`, author: 'Ursula K. Le Guin', published_date: '1969-03-01' })

for (const backend of BACKENDS) {
  describe(`the event feed on ${backend}`, { skip: await skipReason(backend) }, () => {
    let service: TestService
    before(async () => {
      // A short write timeout, so that the heartbeat (half of it) comes within the test.
      service = await startService(backend, { SERVER_TIMEOUT_WRITE: '2s' })
    })
    after(() => service?.close())

    const create = async (n: number) => bodyOf(await service.fetch('/v1/books', jsonRequest('POST', book(n))))

    it('when a client connects without Last-Event-ID, then it gets every event from the oldest, as SSE', async () => {
      const first = await create(1)
      const second = await create(2)
      const stream = await openSse(`${service.baseUrl}/v1/events`)
      try {
        assert.equal(stream.status, 200)
        assert.match(stream.headers.get('content-type') ?? '', /^text\/event-stream/)
        assert.equal(stream.headers.get('cache-control'), 'no-cache')
        assert.ok(stream.headers.get('x-request-id'))
        const events = await stream.events(2)
        assert.deepEqual(
          events.map(({ event }) => [event.type, event.subject]),
          [
            ['dev.myapp.book.created.v1', first.id],
            ['dev.myapp.book.created.v1', second.id],
          ],
        )
        assert.ok(Number(events[0]?.id) < Number(events[1]?.id), 'ids are positions, ascending here')
        assert.deepEqual(events[1]?.event.data, second)
      } finally {
        stream.close()
      }
    })

    it('when a client resumes with Last-Event-ID, then it gets the events after that one: no gap, no repeat', async () => {
      for (let n = 0; n < 5; n++) await create(10 + n)
      const all = await openSse(`${service.baseUrl}/v1/events`)
      const everything = await all.events(7)
      all.close()
      const resumeAfter = everything[3] as { id: string }
      const resumed = await openSse(`${service.baseUrl}/v1/events`, { 'last-event-id': resumeAfter.id })
      try {
        const rest = await resumed.events(3)
        assert.deepEqual(
          rest.map(({ event }) => event.id),
          everything.slice(4).map(({ event }) => event.id),
        )
        // And what is written after the client connected is pushed to it.
        const later = await create(99)
        const [pushed] = await resumed.events(1)
        assert.equal(pushed?.event.subject, later.id)
      } finally {
        resumed.close()
      }
    })

    it('when books are written while clients read and reconnect, then each event arrives exactly once, each book in order', async () => {
      const start = await openSse(`${service.baseUrl}/v1/events`)
      const known = await start.events(8)
      start.close()
      let lastId = known.at(-1)?.id as string
      const writers = Array.from({ length: 4 }, async (_, writer) => {
        for (let round = 0; round < 6; round++) {
          const created = await create(1000 + writer * 10 + round)
          for (let version = 1; version <= 2; version++) {
            const response = await service.fetch(
              `/v1/books/${created.id}`,
              jsonRequest('PUT', book(version), { 'if-match': `"${version}"` }),
            )
            assert.equal(response.status, 200)
          }
        }
      })
      const written = 4 * 6 * 3
      const received: { id: string; event: { id: string; subject: string; bookversion: number } }[] = []
      // Reconnect every few events, as a client behind a flaky network would.
      const reading = (async () => {
        while (received.length < written) {
          const stream = await openSse(`${service.baseUrl}/v1/events`, { 'last-event-id': lastId })
          try {
            const events = await stream.events(Math.min(5, written - received.length))
            received.push(...events)
            lastId = events.at(-1)?.id as string
          } finally {
            stream.close()
          }
        }
      })()
      await Promise.all([...writers, reading])
      assert.equal(received.length, written)
      assert.equal(new Set(received.map(({ event }) => event.id)).size, written, 'no event twice')
      const versions = new Map<string, number[]>()
      for (const { event } of received)
        versions.set(event.subject, [...(versions.get(event.subject) ?? []), event.bookversion])
      assert.equal(versions.size, 4 * 6)
      for (const [subject, seen] of versions) assert.deepEqual(seen, [1, 2, 3], `book ${subject} in order`)
      // Nothing more than those: the next event is a new one.
      const tail = await openSse(`${service.baseUrl}/v1/events`, { 'last-event-id': lastId })
      try {
        const later = await create(2000)
        const [next] = await tail.events(1)
        assert.equal(next?.event.subject, later.id)
      } finally {
        tail.close()
      }
    })

    it('when nothing happens, then heartbeat comments keep the stream open past the write timeout', async () => {
      const latest = await create(3000)
      const stream = await openSse(`${service.baseUrl}/v1/events`)
      try {
        // Read up to the newest event, then wait idle.
        for (;;) {
          const frame = await stream.next(60_000)
          if (frame.data !== undefined && JSON.parse(frame.data).subject === latest.id) break
        }
        const started = Date.now()
        const heartbeats: number[] = []
        while (Date.now() - started < 3500) {
          const frame = await stream.next(2500)
          if (frame.comment === 'heartbeat') heartbeats.push(Date.now() - started)
        }
        assert.ok(heartbeats.length >= 2, `heartbeats at ${heartbeats} ms`)
        const after = await create(3001)
        const [event] = await stream.events(1)
        assert.equal(event?.event.subject, after.id, 'the stream still delivers')
      } finally {
        stream.close()
      }
    })

    it('when Last-Event-ID is not an event id, then 422 names it', async () => {
      const response = await service.fetch('/v1/events', { headers: { 'last-event-id': 'yesterday' } })
      assert.equal(response.status, 422)
      assert.ok('last-event-id' in (await bodyOf(response)).errors)
    })
  })
}

describe('the event feed with authentication', () => {
  it('when AUTH_MODE=jwt, then the stream needs a token with books:read, as its route declares', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256')
    const issuer = 'https://auth.test/'
    const service = await startService('embedded', {
      AUTH_MODE: 'jwt',
      AUTH_JWT_ISSUER: issuer,
      AUTH_JWT_AUDIENCE: 'myapp',
      AUTH_JWT_ALGORITHMS: 'ES256',
      AUTH_JWT_PUBLIC_KEY: await exportSPKI(publicKey),
    })
    const bearer = async (scope: string) => ({
      authorization: `Bearer ${await new SignJWT({ sub: 'consumer', scope })
        .setProtectedHeader({ alg: 'ES256' })
        .setIssuer(issuer)
        .setAudience('myapp')
        .setExpirationTime('5m')
        .sign(privateKey)}`,
    })
    try {
      assert.equal((await service.fetch('/v1/events')).status, 401)
      assert.equal((await service.fetch('/v1/events', { headers: await bearer('books:write') })).status, 403)
      const stream = await openSse(`${service.baseUrl}/v1/events`, await bearer('books:read'))
      assert.equal(stream.status, 200)
      stream.close()
    } finally {
      await service.close()
    }
  })
})
