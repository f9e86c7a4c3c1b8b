// The verifier with a real books service (embedded database) and a real image server on loopback: it follows the
// feed, verifies a book whose image is one, leaves the others pending with their outcome counted, resumes where it
// stopped, and talks to a books service in jwt mode with a books:verify token. Its books client's policies against
// a service that is down: retries, then the breaker.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, it } from 'node:test'
import { Code, ConnectError } from '@connectrpc/connect'
import { createLogger } from '../../../src/logger.ts'
import { createBooksClient, isBreakerOpen } from '../../../src/verifier/books-client.ts'
import { parseVerifierConfig } from '../../../src/verifier/config.ts'
import { createVerifierService } from '../../../src/verifier/service.ts'
import { describe } from '../../helpers/describe.ts'
import { CLIENT_KIND, otlpReceiver, SERVER_KIND } from '../../helpers/otlp-receiver.ts'
import { JWT_ENV, type RpcService, signedToken, startRpcService } from '../../helpers/rpc-clients.ts'
import { bodyOf, jsonRequest } from '../../helpers/service.ts'
import { freePort, until } from '../../helpers/tools.ts'

const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52])

async function imageServer() {
  const seen: string[] = []
  const server: Server = createServer((request, response) => {
    seen.push(request.url ?? '')
    if (request.url === '/cover.png') response.writeHead(200, { 'content-type': 'image/png' }).end(PNG)
    else response.writeHead(404).end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { server, seen, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }
}

const silent = createLogger(process.env.VERIFIER_TEST_LOG ?? 'silent')
const book = (title: string, image_url?: string) => ({
  title,
  author: 'Ursula K. Le Guin',
  published_date: '1974-05-01',
  ...(image_url === undefined ? {} : { image_url }),
})

function startVerifier(service: RpcService, folder: string, env: Record<string, string> = {}) {
  const config = parseVerifierConfig({
    VERIFIER_BOOKS_URL: service.baseUrl,
    VERIFIER_ALLOW_HOSTS: '127.0.0.1',
    VERIFIER_FEED_POSITION_FILE: join(folder, 'position'),
    SERVER_HOST: '127.0.0.1',
    SERVER_PORT: '0',
    ...env,
  })
  const verifier = createVerifierService({ config, logger: silent })
  return { verifier, started: verifier.start() }
}

describe('the verifier on the event feed', () => {
  let service: RpcService
  let images: Awaited<ReturnType<typeof imageServer>>
  let folder: string
  before(async () => {
    service = await startRpcService('embedded')
    images = await imageServer()
    folder = mkdtempSync(join(tmpdir(), 'verifier-'))
  })
  after(async () => {
    await service?.close()
    images?.server.close()
    rmSync(folder, { recursive: true, force: true })
  })

  const create = async (input: object) => bodyOf(await service.fetch('/v1/books', jsonRequest('POST', input)))
  const read = async (id: string) => bodyOf(await service.fetch(`/v1/books/${id}`))

  it('when books are created, then the one with an image is verified and the others stay pending, counted', async (t) => {
    const { verifier, started } = startVerifier(service, folder)
    try {
      const { port } = await started
      const createdAt = performance.now()
      const good = await create(book('The Dispossessed', `${images.base}/cover.png`))
      const missing = await create(book('The Lathe of Heaven', `${images.base}/missing.png`))
      const none = await create(book('The Word for World Is Forest'))
      const verified = await until('the book is verified', 10_000, async () => {
        const current = await read(good.id)
        return current.status === 'verified' ? current : undefined
      })
      const latencyMs = performance.now() - createdAt
      assert.equal(verified.updated_at > good.updated_at, true)
      const metrics = await until('every event is counted', 10_000, async () => {
        const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
        return text.includes('reason="no_image_url"') ? text : undefined
      })
      assert.match(metrics, /verifier_verifications_total\{outcome="verified",reason="png"\} 1/)
      assert.match(metrics, /verifier_verifications_total\{outcome="rejected",reason="http_status"\} 1/)
      assert.match(metrics, /verifier_verifications_total\{outcome="skipped",reason="no_image_url"\} 1/)
      assert.equal((await read(missing.id)).status, 'pending')
      assert.equal((await read(none.id)).status, 'pending')
      assert.equal((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 200)
      t.diagnostic(`created to verified: ${latencyMs.toFixed(0)} ms`)
    } finally {
      await verifier.close()
    }
  })

  it('when the verifier starts again, then it resumes after the last event it handled and changes nothing twice', async () => {
    const before = images.seen.length
    const { verifier, started } = startVerifier(service, folder)
    try {
      await started
      const later = await create(book('Always Coming Home', `${images.base}/cover.png`))
      await until('the new book is verified', 10_000, async () =>
        (await read(later.id)).status === 'verified' ? true : undefined,
      )
      // Only the new book's image was fetched again: the first run's events were not handled twice.
      assert.deepEqual(images.seen.slice(before), ['/cover.png'])
    } finally {
      await verifier.close()
    }
  })
})

describe('the verifier with a books service in jwt mode', () => {
  let service: RpcService
  let images: Awaited<ReturnType<typeof imageServer>>
  let folder: string
  before(async () => {
    service = await startRpcService('embedded', JWT_ENV)
    images = await imageServer()
    folder = mkdtempSync(join(tmpdir(), 'verifier-'))
  })
  after(async () => {
    await service?.close()
    images?.server.close()
    rmSync(folder, { recursive: true, force: true })
  })

  it('when it holds a books:verify token, then it verifies another writer’s book, which stays hers', async () => {
    const writer = await signedToken('books:read books:write', { subject: 'alice' })
    const created = await bodyOf(
      await service.fetch(
        '/v1/books',
        jsonRequest('POST', book('Lavinia', `${images.base}/cover.png`), { authorization: `Bearer ${writer}` }),
      ),
    )
    const { verifier, started } = startVerifier(service, folder, {
      VERIFIER_TOKEN: await signedToken('books:read books:verify', { subject: 'verifier' }),
    })
    try {
      await started
      const verified = await until('the book is verified', 10_000, async () => {
        const response = await service.fetch(`/v1/books/${created.id}`, {
          headers: { authorization: `Bearer ${writer}` },
        })
        const current = await bodyOf(response)
        return current.status === 'verified' ? current : undefined
      })
      assert.equal(verified.created_by, 'alice')
    } finally {
      await verifier.close()
    }
  })
})

describe('the verifier on the feed, with an event that keeps failing', () => {
  it('when a call is refused every time, then the event is given up after VERIFIER_MAX_DELIVER and the feed moves on', async () => {
    const service = await startRpcService('embedded', JWT_ENV)
    const images = await imageServer()
    const folder = mkdtempSync(join(tmpdir(), 'verifier-'))
    const writer = await signedToken('books:read books:write', { subject: 'alice' })
    const post = async (input: object) =>
      bodyOf(await service.fetch('/v1/books', jsonRequest('POST', input, { authorization: `Bearer ${writer}` })))
    // A token that may read the feed but not verify: every UpdateBook is PERMISSION_DENIED.
    const { verifier, started } = startVerifier(service, folder, {
      VERIFIER_TOKEN: await signedToken('books:read', { subject: 'verifier' }),
      VERIFIER_MAX_DELIVER: '2',
    })
    try {
      const { port } = await started
      await post(book('Voices', `${images.base}/cover.png`))
      await post(book('Powers'))
      const metrics = await until('the feed moved past the failing event', 20_000, async () => {
        const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
        return text.includes('reason="no_image_url"') ? text : undefined
      })
      assert.match(metrics, /verifier_dead_letters_total\{reason="kept_failing"\} 1/)
      assert.match(metrics, /verifier_books_calls_total\{method="UpdateBook",code="PERMISSION_DENIED"\} 2/)
    } finally {
      await verifier.close()
      await service.close()
      images.server.close()
      rmSync(folder, { recursive: true, force: true })
    }
  })
})

describe('the verifier, traced', () => {
  it('when a traced POST creates a book, then one trace runs from the POST through the verifier to UpdateBook', async () => {
    const receiver = await otlpReceiver()
    const images = await imageServer()
    const folder = mkdtempSync(join(tmpdir(), 'verifier-'))
    const service = await startRpcService('embedded', { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url })
    const { verifier, started } = startVerifier(service, folder)
    try {
      await started
      const traceId = '5bf92f3577b34da6a3ce929d0e0e4736'
      const response = await service.fetch(
        '/v1/books',
        jsonRequest('POST', book('Tehanu', `${images.base}/cover.png`), {
          traceparent: `00-${traceId}-00f067aa0ba902b7-01`,
        }),
      )
      const created = await bodyOf(response)
      await until('the book is verified', 10_000, async () =>
        (await bodyOf(await service.fetch(`/v1/books/${created.id}`))).status === 'verified' ? true : undefined,
      )
      const inTrace = await until('the verifier’s spans are exported', 10_000, async () => {
        await service.tracing?.forceFlush()
        const spans = receiver.spans.filter((span) => span.traceId === traceId)
        return spans.some((span) => span.name.endsWith('/UpdateBook') && span.kind === SERVER_KIND) ? spans : undefined
      })
      const consumer = inTrace.find((span) => span.name === 'process dev.myapp.book.created.v1')
      assert.ok(consumer, `a consumer span in the trace: ${inTrace.map((span) => span.name).join(', ')}`)
      const call = inTrace.find((span) => span.name === 'books.v1.BookService/UpdateBook' && span.kind === CLIENT_KIND)
      assert.equal(call?.parentSpanId, consumer.spanId, 'the call is the consumer span’s child')
      const served = inTrace.filter((span) => span.kind === SERVER_KIND && span.parentSpanId === call?.spanId)
      assert.equal(served.length, 1, 'the books service served the call as the call span’s child, in the same trace')
    } finally {
      await verifier.close()
      await service.close()
      images.server.close()
      receiver.server.close()
      rmSync(folder, { recursive: true, force: true })
    }
  })
})

describe('the books client against a service that is down', () => {
  it('when every call fails UNAVAILABLE, then it retries, the breaker opens, and calls fail fast until it half-opens', async () => {
    const port = await freePort()
    const retries: number[] = []
    const client = createBooksClient({
      baseUrl: `http://127.0.0.1:${port}`,
      protocol: 'grpc',
      token: undefined,
      callTimeoutMs: 500,
      retry: { maxAttempts: 2, initialDelayMs: 10, maxDelayMs: 50 },
      breaker: { consecutiveFailures: 3, halfOpenAfterMs: 300 },
      resolveEveryMs: 60_000,
    })
    client.onRetry((delay) => retries.push(delay))
    const first = await client.setStatus('01900000-0000-7000-8000-000000000000', 'verified', 1).catch((e) => e)
    assert.ok(first instanceof ConnectError && first.code === Code.Unavailable, String(first))
    assert.equal(client.breakerState(), 'open', 'three failed attempts (one call and its two retries) opened it')
    assert.equal(retries.length, 2)
    for (const delay of retries) assert.ok(delay >= 0 && delay <= 50, `delay ${delay}`)
    const started = performance.now()
    const refused = await client.setStatus('01900000-0000-7000-8000-000000000000', 'verified', 1).catch((e) => e)
    assert.ok(isBreakerOpen(refused), String(refused))
    assert.ok(performance.now() - started < 100, 'an open breaker fails at once')
    await new Promise((resolve) => setTimeout(resolve, 350))
    const trial = await client.setStatus('01900000-0000-7000-8000-000000000000', 'verified', 1).catch((e) => e)
    // The trial attempt went out (and failed, so it was retried), which opened the breaker again.
    assert.equal(retries.length, 3, 'after the pause a trial call went out again')
    assert.ok(isBreakerOpen(trial), String(trial))
  })
})
