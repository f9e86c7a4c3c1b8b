// The verifier on JetStream with a real nats-server -js: the books service relays its events, the verifier
// consumes them through its durable consumer and calls back over native gRPC. A message that keeps failing ends in
// the dead-letter subject after max_deliver, and one that is no event goes there at once.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, it } from 'node:test'
import { jetstreamManager } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'
import { createLogger } from '../../../src/logger.ts'
import { parseVerifierConfig } from '../../../src/verifier/config.ts'
import { createVerifierService } from '../../../src/verifier/service.ts'
import { describe } from '../../helpers/describe.ts'
import { natsMissing, startNats, type TestNats } from '../../helpers/nats.ts'
import { quickBackend } from '../../helpers/rpc-clients.ts'
import { bodyOf, jsonRequest, startService, type TestService } from '../../helpers/service.ts'
import { freePort, until } from '../../helpers/tools.ts'

const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13])
const logger = createLogger(process.env.VERIFIER_TEST_LOG ?? 'silent')

describe('the verifier on JetStream', { skip: natsMissing() }, () => {
  let nats: TestNats
  let service: TestService & { grpcUrl: string }
  let images: Server
  let imageBase: string
  let folder: string
  before(async () => {
    nats = await startNats()
    const grpcPort = await freePort()
    const started = await startService(
      await quickBackend(),
      { NATS_URL: nats.url, GRPC_PORT: String(grpcPort) },
      { events: true },
    )
    service = Object.assign(started, { grpcUrl: `http://127.0.0.1:${grpcPort}` })
    images = createServer((request, response) => {
      if (request.url === '/cover.png') response.writeHead(200, { 'content-type': 'image/png' }).end(PNG)
      else response.writeHead(404).end()
    })
    await new Promise<void>((resolve) => images.listen(0, '127.0.0.1', resolve))
    imageBase = `http://127.0.0.1:${(images.address() as AddressInfo).port}`
    folder = mkdtempSync(join(tmpdir(), 'verifier-'))
  })
  after(async () => {
    await service?.close()
    await nats?.remove()
    images?.close()
    rmSync(folder, { recursive: true, force: true })
  })

  const verifierWith = (env: Record<string, string> = {}) =>
    createVerifierService({
      config: parseVerifierConfig({
        NATS_URL: nats.url,
        VERIFIER_BOOKS_URL: service.grpcUrl,
        VERIFIER_BOOKS_PROTOCOL: 'grpc',
        VERIFIER_ALLOW_HOSTS: '127.0.0.1',
        SERVER_HOST: '127.0.0.1',
        SERVER_PORT: '0',
        ...env,
      }),
      logger,
    })
  const create = async (title: string, image: string) =>
    bodyOf(
      await service.fetch(
        '/v1/books',
        jsonRequest('POST', { title, published_date: '1969-03-01', image_url: `${imageBase}${image}` }),
      ),
    )
  const statusOf = async (id: string) => (await bodyOf(await service.fetch(`/v1/books/${id}`))).status

  it('when a book with an image is created, then the event reaches the verifier and the book is verified over gRPC', async (t) => {
    const verifier = verifierWith()
    try {
      const { port } = await verifier.start()
      const startedAt = performance.now()
      const book = await create('The Left Hand of Darkness', '/cover.png')
      await until('the book is verified', 15_000, async () =>
        (await statusOf(book.id)) === 'verified' ? true : undefined,
      )
      t.diagnostic(`created to verified through JetStream: ${(performance.now() - startedAt).toFixed(0)} ms`)
      assert.equal((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 200)
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
      assert.match(metrics, /verifier_event_to_verified_seconds_count 1/)
      assert.match(metrics, /verifier_books_calls_total\{method="UpdateBook",code="OK"\} 1/)
      assert.match(metrics, /verifier_consumer_messages\{state="pending"\} 0/)
    } finally {
      await verifier.close()
    }
  })

  it('when calls keep failing, then the event ends in the dead-letter subject after max_deliver; garbage at once', async () => {
    // A verifier whose books service is nowhere: every delivery fails.
    const failing = verifierWith({
      VERIFIER_BOOKS_URL: `http://127.0.0.1:${await freePort()}`,
      VERIFIER_MAX_DELIVER: '2',
      VERIFIER_REDELIVERY_DELAY: '100ms',
      VERIFIER_CALL_TIMEOUT: '200ms',
    })
    const nc = await connect({ servers: nats.url })
    try {
      const { port } = await failing.start()
      const book = await create('The Tombs of Atuan', '/cover.png')
      await nc.publish('books.created', 'not json at all')
      const jsm = await jetstreamManager(nc)
      const dead = await until('both messages are dead-lettered', 20_000, async () => {
        const info = await jsm.streams.info('VERIFIER_DEAD_LETTERS')
        return info.state.messages >= 2 ? info : undefined
      })
      assert.equal(dead.state.messages, 2)
      const reasons = []
      for (let sequence = dead.state.first_seq; sequence <= dead.state.last_seq; sequence++) {
        const message = await jsm.streams.getMessage('VERIFIER_DEAD_LETTERS', { seq: sequence })
        reasons.push(message?.header.get('myapp-dead-letter-reason'))
      }
      assert.deepEqual(reasons.sort(), ['kept_failing', 'not_an_event'])
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
      assert.match(metrics, /verifier_dead_letters_total\{reason="kept_failing"\} 1/)
      assert.match(metrics, /verifier_dead_letters_total\{reason="not_an_event"\} 1/)
      assert.equal(await statusOf(book.id), 'pending')
    } finally {
      await nc.close()
      await failing.close()
    }
  })
})
