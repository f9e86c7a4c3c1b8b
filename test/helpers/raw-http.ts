// Raw HTTP/1.1 over node:net: bytes exactly as written, and every answer the service gives on the connection.
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { connect } from 'node:net'

export interface RawAnswer {
  status: number
  /** Lower-case names; the last value of a repeated header. */
  headers: Record<string, string>
  body: string
}

/** Splits what a connection received into its answers, by Content-Length; interim (1xx) answers are skipped. */
export function answersIn(text: string): RawAnswer[] {
  const answers: RawAnswer[] = []
  let at = 0
  while (text.startsWith('HTTP/1.1 ', at)) {
    const headEnd = text.indexOf('\r\n\r\n', at)
    if (headEnd === -1) break
    const [statusLine = '', ...lines] = text.slice(at, headEnd).split('\r\n')
    const headers: Record<string, string> = {}
    for (const line of lines) {
      const colon = line.indexOf(':')
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
    }
    const status = Number(statusLine.split(' ')[1])
    const bodyStart = headEnd + 4
    at = bodyStart + Number(headers['content-length'] ?? 0)
    if (status >= 200) answers.push({ status, headers, body: text.slice(bodyStart, at) })
  }
  return answers
}

/**
 * Writes `bytes` on a new connection and collects what comes back until the service closes it (or `timeoutMs`
 * passes: `closed` tells which).
 */
export async function exchange(
  port: number,
  bytes: Buffer | string,
  timeoutMs = 5000,
): Promise<{ answers: RawAnswer[]; text: string; closed: boolean; elapsed: number }> {
  const socket = connect(port, '127.0.0.1')
  await once(socket, 'connect')
  const started = performance.now()
  let text = ''
  socket.on('data', (chunk: Buffer) => {
    text += chunk.toString('latin1')
  })
  socket.on('error', () => {})
  socket.write(bytes)
  const closed = await Promise.race([
    once(socket, 'close').then(() => true),
    new Promise<false>((resolve) => setTimeout(() => resolve(false), timeoutMs)),
  ])
  socket.destroy()
  return { answers: answersIn(text), text, closed, elapsed: performance.now() - started }
}

/** The one answer a connection got before the service closed it; fails on none, on more than one, or on no close. */
export async function onlyAnswer(port: number, bytes: Buffer | string): Promise<RawAnswer> {
  const { answers, closed, text } = await exchange(port, bytes)
  assert.equal(answers.length, 1, `one answer on the connection, got:\n${text.slice(0, 2000)}`)
  assert.ok(closed, 'the connection was closed after the answer')
  return answers[0] as RawAnswer
}

/** What every error answer carries: the status, a problem body, the request id and the security headers. */
export function assertProblemAnswer(answer: RawAnswer, status: number): void {
  assert.equal(answer.status, status)
  assert.equal(answer.headers['content-type'], 'application/problem+json; charset=utf-8')
  assert.match(answer.headers['x-request-id'] ?? '', /^[A-Za-z0-9._:-]{1,128}$/)
  assert.equal(answer.headers['x-content-type-options'], 'nosniff')
  assert.equal(answer.headers['referrer-policy'], 'no-referrer')
  assert.equal(answer.headers['content-security-policy'], "default-src 'none'; frame-ancestors 'none'")
  assert.equal(answer.headers['cache-control'], 'no-store')
  const problem = JSON.parse(answer.body)
  assert.equal(problem.status, status)
  assert.equal(problem.request_id, answer.headers['x-request-id'])
}
