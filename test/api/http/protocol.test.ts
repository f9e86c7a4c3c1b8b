// HTTP-level limits enforced before a request reaches a route: read timeout, header size, broken framing.
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { METHODS } from 'node:http'
import { connect } from 'node:net'
import { after, before, it } from 'node:test'
import { describe } from '../../helpers/describe.ts'
import { assertProblemAnswer, exchange as exchangeRaw, onlyAnswer, type RawAnswer } from '../../helpers/raw-http.ts'
import { startService, type TestService } from '../../helpers/service.ts'

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

/** The one answer a connection got, checked for what every error answer carries. */
async function onlyProblem(service: TestService, raw: string, status: number): Promise<RawAnswer> {
  const answer = await onlyAnswer(Number(new URL(service.baseUrl).port), raw)
  assertProblemAnswer(answer, status)
  return answer
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

  it('when the headers are too large, then one 431 problem', async () => {
    const raw = `GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`
    const answer = await onlyProblem(service, raw, 431)
    assert.equal(JSON.parse(answer.body).detail, 'the request headers are too large')
  })

  it('when the request line is not HTTP, then one 400 problem', async () => {
    const answer = await onlyProblem(service, 'HELLO THERE\r\n\r\n', 400)
    assert.equal(JSON.parse(answer.body).detail, 'the request is malformed')
  })

  it('when an HTTP/1.1 request has no Host, then one 400 problem that says so, with the request id sent', async () => {
    const answer = await onlyProblem(service, 'GET /v1/books HTTP/1.1\r\nX-Request-ID: no-host-1\r\n\r\n', 400)
    assert.equal(answer.headers['x-request-id'], 'no-host-1')
    assert.equal(JSON.parse(answer.body).detail, 'an HTTP/1.1 request needs a Host header')
  })

  it('when an HTTP/1.0 request has no Host, then it is served', async () => {
    const { answers } = await exchangeRaw(Number(new URL(service.baseUrl).port), 'GET /livez HTTP/1.0\r\n\r\n')
    assert.deepEqual(
      answers.map(({ status }) => status),
      [200],
    )
  })

  it('when Expect asks for anything but 100-continue, then one 417 problem, and its body is not read as a request', async () => {
    const raw =
      'POST /v1/books HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\nContent-Type: application/json\r\n' +
      'Content-Length: 20\r\n\r\nGET /livez HTTP/1.1\r\n'
    const answer = await onlyProblem(service, raw, 417)
    assert.equal(JSON.parse(answer.body).detail, 'the only expectation this service meets is Expect: 100-continue')
  })

  it('when Expect is 100-continue, then the interim answer comes and then the request is served', async () => {
    const book = JSON.stringify({ title: 'Dune', author: 'Frank Herbert', published_date: '1965-08-01' })
    const { answers, text } = await exchangeRaw(
      Number(new URL(service.baseUrl).port),
      `POST /v1/books HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: ${book.length}\r\n\r\n${book}`,
    )
    assert.match(text, /^HTTP\/1\.1 100 Continue\r\n/)
    assert.deepEqual(
      answers.map(({ status }) => status),
      [201],
    )
  })

  it('when a request refused before its body is read has a malformed chunked body, then it gets its one answer and the connection closes', async () => {
    const raw =
      'POST /v1/books HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'
    await onlyProblem(service, raw, 415)
  })

  it('when a request it reads has a malformed chunked body, then one 400 problem', async () => {
    const raw =
      'POST /v1/books HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'
    const answer = await onlyProblem(service, raw, 400)
    assert.equal(JSON.parse(answer.body).instance, '/v1/books')
  })

  it('when chunk extensions overflow, then one 413 problem', async () => {
    const raw =
      'POST /v1/books HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n' +
      `1;${'a'.repeat(20_000)}\r\n`
    await onlyProblem(service, raw, 413)
  })

  it('when pipelined requests are followed by garbage, then each gets its answer in order, then one 400, then the connection closes', async () => {
    const { answers, closed } = await exchangeRaw(
      Number(new URL(service.baseUrl).port),
      'GET /v1/books HTTP/1.1\r\nHost: x\r\n\r\nGET /livez HTTP/1.1\r\nHost: x\r\n\r\nHELLO THERE\r\n\r\n',
    )
    assert.deepEqual(
      answers.map(({ status }) => status),
      [200, 200, 400],
    )
    assertProblemAnswer(answers[2] as RawAnswer, 400)
    assert.ok(closed)
  })

  it('when pipelined requests are followed by one whose chunked body is malformed, then the earlier ones are answered first', async () => {
    const { answers, closed } = await exchangeRaw(
      Number(new URL(service.baseUrl).port),
      'GET /v1/books HTTP/1.1\r\nHost: x\r\n\r\nPOST /v1/books HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
        'Transfer-Encoding: chunked\r\n\r\nzz\r\n',
    )
    assert.deepEqual(
      answers.map(({ status }) => status),
      [200, 400],
    )
    assertProblemAnswer(answers[1] as RawAnswer, 400)
    assert.ok(closed)
  })

  for (const [path, served] of [
    ['/v1/books', ['GET', 'HEAD', 'POST']],
    ['/v1/books/019a7c1e-5b3a-7cc1-9a4e-3f1d2b6c8e90', ['DELETE', 'GET', 'HEAD', 'PATCH', 'PUT']],
  ] as const) {
    it(`when any other method Node accepts is sent to ${path.replace(/[0-9a-f-]{36}/, '{id}')}, then one 405 problem with Allow`, async () => {
      const others = METHODS.filter((method) => !(served as readonly string[]).includes(method) && method !== 'OPTIONS')
      assert.ok(others.includes('QUERY') && others.includes('PROPFIND') && others.includes('CONNECT'))
      for (const method of others) {
        const answer = await onlyProblem(
          service,
          `${method} ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
          405,
        ).catch((error: Error) => assert.fail(`${method}: ${error.message}`))
        assert.equal(answer.headers.allow, served.join(', '), method)
      }
    })
  }

  it('when {id} is longer than the router allows, then the documented 400 for an invalid path parameter', async () => {
    for (const method of ['GET', 'PUT', 'DELETE']) {
      const response = await service.fetch(`/v1/books/${'a'.repeat(101)}`, {
        method,
        ...(method === 'PUT' ? { headers: { 'content-type': 'application/json' }, body: '{}' } : {}),
      })
      assert.equal(response.status, 400, method)
      assert.equal(response.headers.get('x-content-type-options'), 'nosniff')
    }
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
