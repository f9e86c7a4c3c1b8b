// A client still sending a body the service has already refused (413, 415, 401) reads its answer: the service
// discards the rest of the body before it closes the connection, and cuts a client past the bytes or time allowed.
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { connect } from 'node:net'
import { after, before, it } from 'node:test'
import { Worker } from 'node:worker_threads'
import { exportSPKI, generateKeyPair } from 'jose'
import { DISCARD_MAX_BYTES, DISCARD_MAX_MS } from '../../../src/http/pipeline/connection-limits.ts'
import { describe } from '../../helpers/describe.ts'
import { answersIn } from '../../helpers/raw-http.ts'
import { startService, type TestService } from '../../helpers/service.ts'

const MiB = 1024 * 1024
const TRIES = 20
// The size reported, and one past what Linux lets a client's kernel hold unsent (tcp_wmem's default maximum,
// 4 MiB): a body the kernel has taken whole keeps its answer through a reset, a larger one lost it about half the time.
const SIZES = [2 * MiB, 6 * MiB]
// Both within the bound, or the test would measure the cut.
assert.ok(Math.max(...SIZES) < DISCARD_MAX_BYTES)

interface Outcome {
  status?: number
  contentType?: string | null
  detail?: string
  error?: string
}

/**
 * `tries` sequential POSTs of `bytes` with Node's default fetch, from a worker thread: a client on the service's
 * own event loop reads each answer before the reset of the close can reach it, which hides the loss.
 */
async function fetchFromWorker(
  url: string,
  bytes: number,
  tries: number,
  headers: Record<string, string>,
): Promise<Outcome[]> {
  const worker = new Worker(
    `
    const { parentPort, workerData } = require('node:worker_threads')
    const { url, bytes, tries, headers } = workerData
    const body = JSON.stringify({ title: 'x'.repeat(bytes), author: 'a' })
    ;(async () => {
      const outcomes = []
      for (let i = 0; i < tries; i++) {
        try {
          const response = await fetch(url, { method: 'POST', headers, body })
          const contentType = response.headers.get('content-type')
          outcomes.push({ status: response.status, contentType, detail: (await response.json()).detail })
        } catch (error) {
          outcomes.push({ error: String(error.cause?.code ?? error.cause?.message ?? error) })
        }
      }
      parentPort.postMessage(outcomes)
    })()
    `,
    { eval: true, workerData: { url, bytes, tries, headers } },
  )
  const [outcomes] = await once(worker, 'message')
  await worker.terminate()
  return outcomes
}

/** Every try read its problem answer, of `status` and `detail`. */
function assertAllAnswered(outcomes: Outcome[], status: number, detail: string): void {
  const answered = outcomes.filter(
    (outcome) =>
      outcome.status === status &&
      outcome.contentType === 'application/problem+json; charset=utf-8' &&
      outcome.detail === detail,
  )
  assert.equal(
    answered.length,
    outcomes.length,
    `answered ${answered.length}/${outcomes.length}: ${JSON.stringify(outcomes.filter((o) => !answered.includes(o)))}`,
  )
}

/** A raw connection that has sent the head of a POST declaring a `contentLength` body, and what it received. */
async function openUpload(service: TestService, contentLength: number) {
  // Half-open: it goes on sending after the service has ended its side, as a client that does not read would.
  const socket = connect({ port: Number(new URL(service.baseUrl).port), host: '127.0.0.1', allowHalfOpen: true })
  socket.on('error', () => {})
  await once(socket, 'connect')
  const started = performance.now()
  const state = { text: '', answeredAt: Number.NaN, closedAt: Number.NaN }
  socket.on('data', (chunk: Buffer) => {
    if (state.text === '') state.answeredAt = performance.now() - started
    state.text += chunk.toString('latin1')
  })
  const closed = new Promise<void>((resolve) =>
    socket.once('close', () => {
      state.closedAt = performance.now() - started
      resolve()
    }),
  )
  socket.write(
    `POST /v1/books HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${contentLength}\r\n\r\n`,
  )
  return { socket, state, closed, started }
}

describe('refused bodies still arriving', () => {
  let service: TestService
  let jwtService: TestService
  before(async () => {
    // SERVER_TIMEOUT_READ past the discard's bound: what closes a slow sender here is the bound.
    service = await startService('embedded', { SERVER_TIMEOUT_READ: '10s' })
    const { publicKey } = await generateKeyPair('RS256')
    jwtService = await startService('embedded', {
      AUTH_MODE: 'jwt',
      AUTH_JWT_ISSUER: 'https://issuer.test/',
      AUTH_JWT_AUDIENCE: 'myapp',
      AUTH_JWT_PUBLIC_KEY: await exportSPKI(publicKey),
    })
  })
  after(async () => {
    await service?.close()
    await jwtService?.close()
  })

  for (const bytes of SIZES) {
    it(`when fetch POSTs ${bytes / MiB} MiB, then it reads the 413 problem, ${TRIES} times of ${TRIES}`, async () => {
      const outcomes = await fetchFromWorker(`${service.baseUrl}/v1/books`, bytes, TRIES, {
        'content-type': 'application/json',
      })
      assertAllAnswered(outcomes, 413, 'request body is too large')
    })
  }

  it('when fetch POSTs 6 MiB that is not JSON, then it reads the 415 problem every time', async () => {
    const outcomes = await fetchFromWorker(`${service.baseUrl}/v1/books`, 6 * MiB, 10, { 'content-type': 'text/plain' })
    assertAllAnswered(outcomes, 415, 'Content-Type must be application/json')
  })

  it('when fetch POSTs 6 MiB without a token in jwt mode, then it reads the 401 problem every time', async () => {
    const outcomes = await fetchFromWorker(`${jwtService.baseUrl}/v1/books`, 6 * MiB, 10, {
      'content-type': 'application/json',
    })
    assertAllAnswered(outcomes, 401, 'a bearer token is required')
  })

  it('when a client sends far past the discard bound, then it gets its 413 and is cut within the time bound', async () => {
    const { socket, state, closed, started } = await openUpload(service, 1024 * MiB)
    const chunk = Buffer.alloc(64 * 1024, 'x')
    let sent = 0
    // Bounded: 16 times the discard bound, or 10 s.
    while (!socket.destroyed && sent < 16 * DISCARD_MAX_BYTES && performance.now() - started < 10_000) {
      sent += chunk.length
      if (!socket.write(chunk)) await Promise.race([once(socket, 'drain').catch(() => {}), closed])
    }
    await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 10_000))])
    assert.ok(socket.destroyed, `the connection is still open after ${sent} bytes`)
    assert.equal(answersIn(state.text)[0]?.status, 413)
    assert.ok(sent > DISCARD_MAX_BYTES, `closed after only ${sent} bytes, not past the bound of ${DISCARD_MAX_BYTES}`)
    assert.ok(state.closedAt < DISCARD_MAX_MS, `cut after ${state.closedAt.toFixed(0)} ms`)
  })

  it('when a client sends its body slowly and never finishes, then it gets its 413 and is cut at the time bound', async () => {
    const { socket, state, closed, started } = await openUpload(service, MiB)
    // Bounded: a byte every 50 ms for 10 s at most.
    while (!socket.destroyed && performance.now() - started < 10_000) {
      socket.write('x')
      await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 50))])
    }
    assert.ok(socket.destroyed, 'the connection is still open after 10 s')
    assert.equal(answersIn(state.text)[0]?.status, 413)
    assert.ok(state.answeredAt < 1000, `answered after ${state.answeredAt.toFixed(0)} ms`)
    const lingered = state.closedAt - state.answeredAt
    assert.ok(
      lingered >= DISCARD_MAX_MS - 100 && lingered < DISCARD_MAX_MS + 1500,
      `closed ${lingered.toFixed(0)} ms after the answer`,
    )
  })

  it('when all this is done, then no error was logged and no answer was a 5xx', () => {
    const lines = [...service.logs, ...jwtService.logs]
    const errors = lines.filter((line) => line.level === 'error' || line.level === 'fatal')
    assert.deepEqual(
      errors.map((line) => line.message),
      [],
    )
    const statuses = lines.filter((line) => line.message === 'request').map((line) => Number(line.status))
    assert.ok(statuses.length >= 2 * TRIES, `${statuses.length} request lines`)
    assert.deepEqual(
      statuses.filter((status) => status >= 500),
      [],
    )
  })
})
