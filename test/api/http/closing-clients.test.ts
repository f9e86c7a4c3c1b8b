// Clients that close or reset their connection at every stage of a request: nothing they do is logged as an error
// of the service or counted as a 5xx, and the service goes on serving. A reset can reach the service before it
// has read the peer's address, which every admission stage keys on.
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { connect } from 'node:net'
import { after, before, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { exportSPKI, generateKeyPair, SignJWT } from 'jose'
import { describe } from '../../helpers/describe.ts'
import { BACKENDS, jsonRequest, skipReason, startService, type TestService } from '../../helpers/service.ts'

const ROUNDS = 6
const CONNECTIONS = 40
const BOOK = JSON.stringify({ title: 'Kindred', author: 'Octavia E. Butler', published_date: '1979-06-01' })

/** The request as a client writes it, and the stages at which it stops writing and closes. */
function stagesOf(authorization: string): Record<string, string> {
  const head = [
    'POST /v1/books HTTP/1.1',
    'host: myapp.test',
    'content-type: application/json',
    `content-length: ${BOOK.length}`,
    ...(authorization === '' ? [] : [`authorization: ${authorization}`]),
  ].join('\r\n')
  const whole = `${head}\r\n\r\n${BOOK}`
  const read = 'GET /v1/books HTTP/1.1\r\nhost: myapp.test\r\n\r\n'
  return {
    'in the request line': 'POST /v1/bo',
    'in the headers': head.slice(0, head.length - 20),
    'after the headers, before the body': `${head}\r\n\r\n`,
    'in the body': `${head}\r\n\r\n${BOOK.slice(0, 10)}`,
    'after the request, before the answer': whole,
    'with pipelined requests waiting': `${read.repeat(6)}${whole}${whole.slice(0, 40)}`,
  }
}

/** Opens `CONNECTIONS` connections at once, each writing `bytes`, then closing (FIN) or resetting (RST) it. */
async function closeAt(port: number, bytes: string): Promise<void> {
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async (_, i) => {
      const socket = connect(port, '127.0.0.1')
      socket.on('error', () => {})
      await once(socket, 'connect')
      socket.write(bytes)
      if (i % 2 === 1) await sleep(i % 5)
      if (i % 3 === 0) socket.destroy()
      else socket.resetAndDestroy()
    }),
  )
}

/** The 5xx answers the service counted, by the request duration histogram. */
async function serverErrorsCounted(service: TestService): Promise<number> {
  const text = await (await fetch(`${service.baseUrl}/metrics`)).text()
  let total = 0
  for (const [, count] of text.matchAll(
    /^http_request_duration_seconds_count\{[^}]*status_code="5\d\d"[^}]*\} (\d+)/gm,
  )) {
    total += Number(count)
  }
  return total
}

function closingClientsSuite(name: string, backend: (typeof BACKENDS)[number], jwt: boolean) {
  describe(name, () => {
    let service: TestService
    let authorization = ''
    before(async () => {
      let env: Record<string, string> = { RATE_LIMIT_MAX: '1000000' }
      if (jwt) {
        const { privateKey, publicKey } = await generateKeyPair('RS256')
        env = {
          ...env,
          AUTH_MODE: 'jwt',
          AUTH_JWT_ISSUER: 'https://issuer.test/',
          AUTH_JWT_AUDIENCE: 'myapp',
          AUTH_JWT_PUBLIC_KEY: await exportSPKI(publicKey),
        }
        const token = await new SignJWT({ sub: 'writer', scope: 'books:read books:write' })
          .setProtectedHeader({ alg: 'RS256' })
          .setIssuer('https://issuer.test/')
          .setAudience('myapp')
          .setExpirationTime('5m')
          .sign(privateKey)
        authorization = `Bearer ${token}`
      }
      service = await startService(backend, env)
    })
    after(() => service?.close())

    for (const stage of Object.keys(stagesOf(''))) {
      it(`when clients close ${stage}, then no error is logged, no 5xx counted, and the service still serves`, async () => {
        const bytes = stagesOf(authorization)[stage] as string
        const port = Number(new URL(service.baseUrl).port)
        for (let round = 0; round < ROUNDS; round++) await closeAt(port, bytes)
        // What was admitted before the close still runs to its end; give it the time to.
        await sleep(300)
        const errors = service.logs.filter((line) => line.level === 'error' || line.level === 'fatal')
        assert.deepEqual(
          errors.map((line) => line.message),
          [],
          `error lines: ${JSON.stringify(errors.slice(0, 2))}`,
        )
        assert.equal(await serverErrorsCounted(service), 0)
        const headers: Record<string, string> = authorization === '' ? {} : { authorization }
        const created = await service.fetch('/v1/books', jsonRequest('POST', BOOK, headers))
        assert.equal(created.status, 201)
      })
    }
  })
}

for (const backend of BACKENDS) {
  describe(`clients that close their connection on ${backend}`, { skip: await skipReason(backend) }, () => {
    closingClientsSuite('without authentication', backend, false)
    closingClientsSuite('in jwt mode', backend, true)
  })
}
