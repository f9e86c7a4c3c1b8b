// HTTP-level limits enforced before a request reaches a route: read timeout, header size, broken framing.
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { connect } from 'node:net'
import { after, before, it } from 'node:test'
import { describe } from '../helpers/describe.ts'
import { startService, type TestService } from '../helpers/service.ts'

/** Writes raw bytes to the service and returns everything it answers until it closes the connection. */
async function exchange(service: TestService, raw: string): Promise<{ text: string; elapsed: number }> {
  const socket = connect(Number(new URL(service.baseUrl).port), '127.0.0.1')
  await once(socket, 'connect')
  const started = performance.now()
  let text = ''
  socket.on('data', (chunk: Buffer) => {
    text += chunk.toString()
  })
  socket.write(raw)
  await Promise.race([
    once(socket, 'close'),
    new Promise((_, reject) => setTimeout(() => reject(new Error('no answer within 10 s')), 10_000)),
  ])
  return { text, elapsed: performance.now() - started }
}

function problemIn(text: string) {
  const [head = '', body = ''] = text.split('\r\n\r\n')
  assert.match(head, /\r\ncontent-type: application\/problem\+json; charset=utf-8\r\n/i)
  return { head, problem: JSON.parse(body) }
}

describe('protocol limits', () => {
  let service: TestService
  before(async () => {
    service = await startService('embedded', { SERVER_TIMEOUT_READ: '1s' })
  })
  after(() => service?.close())

  it('when a client sends a body slower than SERVER_TIMEOUT_READ, then 408 problem and the connection closes', async () => {
    const { text, elapsed } = await exchange(
      service,
      'POST /v1/books HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"ti',
    )
    assert.match(text, /^HTTP\/1\.1 408 Request Timeout\r\n/)
    const { head, problem } = problemIn(text)
    assert.equal(problem.status, 408)
    assert.equal(problem.instance, '/v1/books')
    assert.match(head, /\r\nconnection: close\r\n/i)
    assert.ok(elapsed >= 900 && elapsed < 5000, `answered after ${elapsed.toFixed(0)} ms`)
  })

  it('when requests are refused before their body is read, then the service keeps serving past the read timeout', async () => {
    for (const [init, status] of [
      [{ method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'not json' }, 415],
      [{ method: 'POST', headers: { 'content-type': 'application/json' }, body: `"${'x'.repeat(70_000)}"` }, 413],
      [{ method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"__proto__": 1}' }, 400],
    ] as const) {
      assert.equal((await service.fetch(`/v1/books${init.method === 'PUT' ? '/x' : ''}`, init)).status, status)
    }
    // Past SERVER_TIMEOUT_READ: a leftover timer would now destroy the stream with nobody listening.
    await new Promise((resolve) => setTimeout(resolve, 1500))
    assert.equal((await service.fetch('/livez')).status, 200)
  })

  it('when the headers are too large, then 431 problem', async () => {
    const { text } = await exchange(service, `GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)
    assert.match(text, /^HTTP\/1\.1 431 /)
    const { problem } = problemIn(text)
    assert.equal(problem.status, 431)
    assert.equal(problem.detail, 'the request headers are too large')
  })

  it('when the request line is not HTTP, then 400 problem', async () => {
    const { text } = await exchange(service, 'HELLO THERE\r\n\r\n')
    assert.match(text, /^HTTP\/1\.1 400 Bad Request\r\n/)
    assert.equal(problemIn(text).problem.detail, 'the request is malformed')
  })

  it('when the URL is malformed, then 400 problem from the router', async () => {
    const response = await service.fetch('/v1/books/%E0%A4%A')
    assert.equal(response.status, 400)
    assert.match(response.headers.get('content-type') ?? '', /^application\/problem\+json/)
    assert.equal(((await response.json()) as { detail: string }).detail, 'the URL is malformed')
  })

  it('when a body arrives in time, then the read timeout does not interfere', async () => {
    const book = JSON.stringify({ title: 'Dune', author: 'Frank Herbert', published_date: '1965-08-01' })
    const { text } = await exchange(
      service,
      `POST /v1/books HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: ${book.length}\r\n\r\n${book}`,
    )
    assert.match(text, /^HTTP\/1\.1 201 Created\r\n/)
  })
})
