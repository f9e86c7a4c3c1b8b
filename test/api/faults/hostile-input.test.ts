// Hostile input, bounded: thousands of malformed, oversized, deeply nested, badly encoded and injection-laden
// requests over raw sockets and fetch. Zero 5xx, zero hangs, and memory that stays bounded.
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { connect } from 'node:net'
import { after, before, it } from 'node:test'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { describe } from '../../helpers/describe.ts'
import { assertProblemAnswer, onlyAnswer } from '../../helpers/raw-http.ts'
import { startService, type TestService } from '../../helpers/service.ts'

const INJECTIONS = [
  "' OR 1=1 --",
  "'; DROP TABLE books; --",
  '{"$ne": null}',
  '{"$where": "sleep(1000)"}',
  '../../../../etc/passwd',
  '%00',
  '<script>alert(1)</script>',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a log4shell probe string, sent as data
  '${jndi:ldap://x/a}',
  '\\u0000',
]

// A full garbage collection before each memory reading, so that growth means retained objects, not garbage.
setFlagsFromString('--expose-gc')
const collectGarbage = runInNewContext('gc') as () => void
const heapAfterGc = () => {
  collectGarbage()
  return process.memoryUsage().heapUsed
}

/** Sends raw bytes and returns the status line's code, or 0 if the connection closed without one; bounded at 5 s. */
async function raw(port: number, bytes: Buffer | string): Promise<number> {
  const socket = connect(port, '127.0.0.1')
  await once(socket, 'connect')
  let text = ''
  socket.on('data', (chunk: Buffer) => {
    text += chunk.toString('latin1')
  })
  socket.on('error', () => {})
  socket.end(bytes)
  await Promise.race([once(socket, 'close'), new Promise((resolve) => setTimeout(resolve, 5000))])
  socket.destroy()
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0)
}

function request(method: string, path: string, body: Buffer | string, headers: Record<string, string> = {}) {
  const payload = typeof body === 'string' ? Buffer.from(body) : body
  const head = [
    `${method} ${path} HTTP/1.1`,
    'Host: 127.0.0.1',
    'Connection: close',
    ...Object.entries({ 'content-type': 'application/json', ...headers }).map(([name, value]) => `${name}: ${value}`),
    `Content-Length: ${payload.length}`,
  ].join('\r\n')
  return Buffer.concat([Buffer.from(`${head}\r\n\r\n`, 'latin1'), payload])
}

describe('hostile input', () => {
  let service: TestService
  let port: number
  before(async () => {
    service = await startService('embedded')
    port = Number(new URL(service.baseUrl).port)
  })
  after(() => service?.close())

  it('when thousands of hostile requests arrive, then none gets a 5xx or hangs, and memory stays bounded', async (t) => {
    const cases: Buffer[] = []
    const book = { title: 'T', author: 'A', published_date: '2000-01-01' }
    for (const injection of INJECTIONS) {
      cases.push(request('POST', '/v1/books', JSON.stringify({ ...book, title: injection })))
      cases.push(request('POST', '/v1/books', JSON.stringify({ ...book, author: injection })))
      cases.push(
        request('GET', `/v1/books?q=${encodeURIComponent(injection)}&author=${encodeURIComponent(injection)}`, ''),
      )
      cases.push(request('GET', `/v1/books/${encodeURIComponent(injection)}`, ''))
      cases.push(request('GET', `/v1/books/${injection.replace(/ /g, '%20')}`, ''))
    }
    cases.push(
      request(
        'POST',
        '/v1/books',
        Buffer.from([0x7b, 0x22, 0x74, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0xc3, 0x28, 0x22, 0x7d]),
      ),
    )
    cases.push(request('POST', '/v1/books', `${'['.repeat(50_000)}${']'.repeat(50_000)}`))
    cases.push(request('POST', '/v1/books', `{"title": ${'9'.repeat(5000)}}`))
    cases.push(request('POST', '/v1/books', JSON.stringify({ ...book, published_date: 1e308 })))
    cases.push(request('POST', '/v1/books', '{"__proto__": {"admin": true}, "constructor": {"prototype": {}}}'))
    cases.push(request('POST', '/v1/books', JSON.stringify({ ...book, title: { $gt: '' } })))
    cases.push(request('GET', `/v1/books?${'a=1&'.repeat(3000)}`, ''))
    cases.push(request('GET', `/${'x'.repeat(20_000)}`, ''))
    cases.push(
      request(
        'GET',
        '/v1/books',
        '',
        Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`x-h${i}`, 'v'.repeat(20)])),
      ),
    )
    cases.push(request('POST', '/v1/books', JSON.stringify(book), { 'content-length': '-1' }))
    cases.push(
      Buffer.from(
        'GET /v1/books HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n',
      ),
    )
    cases.push(
      Buffer.from(
        'POST /v1/books HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
      ),
    )
    cases.push(Buffer.from('\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03'))

    // Bounded: the cases above, 40 rounds, 16 at a time; memory is compared after 5 warm-up rounds.
    const rounds = 40
    const statuses = new Map<number, number>()
    let heapBefore = heapAfterGc()
    for (let round = 0; round < rounds; round++) {
      if (round === 5) heapBefore = heapAfterGc()
      for (let i = 0; i < cases.length; i += 16) {
        const answers = await Promise.all(cases.slice(i, i + 16).map((bytes) => raw(port, bytes)))
        for (const status of answers) statuses.set(status, (statuses.get(status) ?? 0) + 1)
      }
    }
    const grewMb = (heapAfterGc() - heapBefore) / 1e6
    t.diagnostic(
      `${rounds * cases.length} requests; statuses ${JSON.stringify(Object.fromEntries(statuses))}; heap after GC +${grewMb.toFixed(1)} MB over 35 rounds (the test keeps every log line)`,
    )
    for (const status of statuses.keys()) assert.ok(status < 500, `a ${status} answer`)
    assert.equal(statuses.get(0) ?? 0, 0, 'every connection got an HTTP answer')
    assert.ok(grewMb < 16, `the heap kept ${grewMb.toFixed(1)} MB more after 35 rounds`)
    assert.equal((await service.fetch('/livez')).status, 200)
  })

  it("when a request breaks HTTP's own rules, then its one answer is the documented problem with a request id and the security headers", async () => {
    const chunked = (type: string, body: string) =>
      `POST /v1/books HTTP/1.1\r\nHost: x\r\nContent-Type: ${type}\r\nTransfer-Encoding: chunked\r\n\r\n${body}`
    const cases: [name: string, bytes: string, status: number][] = [
      ['HTTP/1.1 without Host', 'GET /v1/books HTTP/1.1\r\n\r\n', 400],
      ['a request line that is not HTTP', 'HELLO THERE\r\n\r\n', 400],
      ['Expect: teapot', 'GET /v1/books HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\n\r\n', 417],
      ['headers over 16 KiB', `GET /v1/books HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431],
      ['a malformed chunked JSON body', chunked('application/json', 'zz\r\n'), 400],
      ['a malformed chunked text/plain body', chunked('text/plain', 'zz\r\n'), 415],
      ['chunk extensions over 16 KiB', chunked('application/json', `1;${'e'.repeat(20_000)}\r\n`), 413],
      [
        'a 101-character {id}',
        `GET /v1/books/${'a'.repeat(101)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
        400,
      ],
      ...['TRACE', 'PROPFIND', 'SEARCH', 'LINK', 'PURGE', 'QUERY', 'CONNECT'].map(
        (method) =>
          [`${method} /v1/books`, `${method} /v1/books HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, 405] as [
            string,
            string,
            number,
          ],
      ),
    ]
    for (const [name, bytes, status] of cases) {
      const answer = await onlyAnswer(port, bytes).catch((error: Error) => assert.fail(`${name}: ${error.message}`))
      try {
        assertProblemAnswer(answer, status)
      } catch (error) {
        assert.fail(`${name}: ${(error as Error).message}`)
      }
      if (status === 405) assert.equal(answer.headers.allow, 'GET, HEAD, POST', name)
    }
  })
})
