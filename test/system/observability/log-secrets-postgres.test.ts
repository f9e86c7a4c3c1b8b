// No credential in any log line: a jwt-mode service on PostgreSQL, reached with a password in DATABASE_URL, gets
// tokens in the Authorization header, in the query string under many names, in a cookie, in failed logins and in a
// body; then every log record the run wrote, and every span it exported, is searched for each secret.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import { after, before, it } from 'node:test'
import { exportSPKI, generateKeyPair, SignJWT } from 'jose'
import postgres from 'postgres'
import { describeConfig, parseConfig } from '../../../src/config/config.ts'
import { REDACTED } from '../../../src/logger.ts'
import { describe } from '../../helpers/describe.ts'
import { ADMIN_URL, createServerDatabase, type ServerDatabase } from '../../helpers/postgres-server.ts'
import { jsonRequest, skipReason, startService, type TestService } from '../../helpers/service.ts'

const ISSUER = 'https://auth.test/'
const AUDIENCE = 'myapp'
const book = { title: 'Kindred', author: 'Octavia E. Butler', published_date: '1979-06-01' }

const { privateKey, publicKey } = await generateKeyPair('RS256')
const stranger = await generateKeyPair('RS256')

function token(options: { key?: Parameters<SignJWT['sign']>[0]; expiresIn?: string | number; sub?: string } = {}) {
  return new SignJWT({ sub: options.sub ?? 'reader-1', scope: 'books:read books:write' })
    .setProtectedHeader({ alg: 'RS256' })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? '5m')
    .sign(options.key ?? privateKey)
}

/** An OTLP/HTTP receiver keeping every export as text, to be searched like the log. */
async function otlpReceiver(): Promise<{ url: string; exports: string[]; server: Server }> {
  const exports: string[] = []
  const server = createServer((request, response) => {
    let body = ''
    request.on('data', (chunk) => {
      body += chunk
    })
    request.on('end', () => {
      exports.push(body)
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, exports, server }
}

describe('credentials in logs (AUTH_MODE=jwt on PostgreSQL)', { skip: await skipReason('postgres') }, () => {
  const role = `myapp_secrets_${randomBytes(4).toString('hex')}`
  const password = `pw-${randomBytes(12).toString('hex')}`
  let database: ServerDatabase
  let receiver: Awaited<ReturnType<typeof otlpReceiver>>
  let service: TestService
  let env: Record<string, string>
  /** Every secret sent or configured, by what it was. */
  const secrets = new Map<string, string>([['database password', password]])
  let requests = 0

  const send = async (path: string, init: RequestInit = {}) => {
    requests++
    return service.fetch(path, init)
  }

  before(async () => {
    // A role of its own with a password, owning the database the service uses: the password is in DATABASE_URL
    // and is sent at login wherever the server asks for one.
    database = await createServerDatabase()
    const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {} })
    try {
      await admin.unsafe(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'`)
      await admin.unsafe(`ALTER DATABASE ${database.name} OWNER TO ${role}`)
    } finally {
      await admin.end()
    }
    const url = new URL(database.url)
    url.username = role
    url.password = password
    receiver = await otlpReceiver()
    env = {
      DATABASE_URL: url.toString(),
      AUTH_MODE: 'jwt',
      AUTH_JWT_ISSUER: ISSUER,
      AUTH_JWT_AUDIENCE: AUDIENCE,
      AUTH_JWT_PUBLIC_KEY: await exportSPKI(publicKey),
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_TRACES_SAMPLER: 'always_on',
    }
    service = await startService('postgres', env)
    // What server.ts writes at start-up, through the same logger.
    service.app.log.info({ config: describeConfig(parseConfig({ SERVER_PORT: '0', ...env })) }, 'starting')
  })
  after(async () => {
    await service?.close()
    receiver?.server.close()
    await database?.drop()
    const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {} })
    try {
      await admin.unsafe(`DROP ROLE IF EXISTS ${role}`)
    } finally {
      await admin.end()
    }
  })

  it('when a valid token is sent in the Authorization header, then it is served and not logged', async () => {
    const valid = await token()
    secrets.set('bearer token', valid)
    const authorization = { authorization: `Bearer ${valid}` }
    assert.equal((await send('/v1/books', { headers: authorization })).status, 200)
    assert.equal((await send('/v1/books', jsonRequest('POST', book, authorization))).status, 201)
  })

  const QUERY_NAMES = ['access_token', 'token', 'api_key', 'password', 'Access_Token', 'ID_TOKEN', 'client_secret']

  it('when a token is sent in the query string under any secret name, then it is refused', async () => {
    for (const name of QUERY_NAMES) {
      const secret = await token({ sub: `query-${name}` })
      secrets.set(`?${name}=`, secret)
      const response = await send(`/v1/books?pageSize=5&${name}=${secret}`)
      assert.ok([401, 429].includes(response.status), `${name}: ${response.status}`)
    }
    // An escaped name is the same name to the query parser, and so to the redaction.
    const escaped = await token({ sub: 'query-escaped' })
    secrets.set('?access%5Ftoken=', escaped)
    assert.ok([401, 429].includes((await send(`/v1/books?access%5Ftoken=${escaped}`)).status))
  })

  it('when a query token rides along with a valid header, an unknown route or a bad URL, then nothing shows it', async () => {
    const authorization = { authorization: `Bearer ${secrets.get('bearer token')}` }
    const alongside = `along-${randomBytes(16).toString('hex')}`
    secrets.set('query token beside a header', alongside)
    assert.equal((await send(`/v1/books?q=Kindred&api_key=${alongside}`, { headers: authorization })).status, 200)
    const unrouted = `unrouted-${randomBytes(16).toString('hex')}`
    secrets.set('query token on an unknown route', unrouted)
    assert.equal((await send(`/v1/nothing?token=${unrouted}`)).status, 404)
    const badUrl = `bad-url-${randomBytes(16).toString('hex')}`
    secrets.set('query token on a malformed URL', badUrl)
    assert.equal((await send(`/v1/books/%zz?access_token=${badUrl}`)).status, 400)
  })

  it('when a cookie carries a session, then it is not logged', async () => {
    const session = `session-${randomBytes(16).toString('hex')}`
    secrets.set('cookie', session)
    const response = await send('/v1/books', {
      headers: { authorization: `Bearer ${secrets.get('bearer token')}`, cookie: `session=${session}; theme=dark` },
    })
    assert.equal(response.status, 200)
  })

  it('when logins fail (foreign signer, expired, Basic, not a JWT), then they are refused and not logged', async () => {
    const basicPassword = `basic-${randomBytes(12).toString('hex')}`
    const failed = {
      'token of another signer': await token({ key: stranger.privateKey }),
      'expired token': await token({ expiresIn: Math.floor(Date.now() / 1000) - 3600 }),
      'not a JWT': `opaque-${randomBytes(16).toString('hex')}`,
    }
    for (const [what, secret] of Object.entries(failed)) {
      secrets.set(what, secret)
      const response = await send('/v1/books', { headers: { authorization: `Bearer ${secret}` } })
      assert.ok([401, 429].includes(response.status), `${what}: ${response.status}`)
    }
    secrets.set('Basic password', basicPassword)
    secrets.set('Basic credentials', Buffer.from(`reader:${basicPassword}`).toString('base64'))
    const basic = await send('/v1/books', {
      headers: { authorization: `Basic ${secrets.get('Basic credentials')}` },
    })
    assert.ok([401, 429].includes(basic.status), `Basic: ${basic.status}`)
  })

  it('when a body carries a password as an unknown member, then the 422 is logged without it', async () => {
    const bodyPassword = `body-${randomBytes(12).toString('hex')}`
    secrets.set('password in a body', bodyPassword)
    const response = await send(
      '/v1/books',
      jsonRequest(
        'POST',
        { ...book, password: bodyPassword },
        { authorization: `Bearer ${secrets.get('bearer token')}` },
      ),
    )
    assert.equal(response.status, 422)
  })

  it('when every log line and span of the run is searched, then no secret is found, and the lines are there', async (t) => {
    await service.tracing?.forceFlush()
    const lines = service.logs.map((record) => JSON.stringify(record))
    const spans = receiver.exports.join('\n')
    for (const [what, secret] of secrets) {
      // A JWT's signature alone is enough to recognise it; a password is matched whole.
      const needles = secret.split('.').length === 3 ? [secret, secret.split('.')[2] as string] : [secret]
      for (const needle of needles) {
        const line = lines.find((text) => text.includes(needle))
        assert.equal(line, undefined, `${what} in a log line: ${line?.slice(0, 300)}`)
        assert.ok(!spans.includes(needle), `${what} in an exported span`)
      }
    }

    // The search found nothing because the lines hold the requests, with the secret values replaced.
    const requestLines = service.logs.filter((record) => record.message === 'request')
    // Less one: Fastify answers a URL it cannot decode before the request lifecycle starts, so it gets no line.
    assert.ok(requestLines.length >= requests - 1, `${requestLines.length} request lines for ${requests} requests`)
    const urls = requestLines.map((record) => String(record.url))
    for (const name of QUERY_NAMES) {
      assert.ok(
        urls.some((url) => url.includes(`${name}=${REDACTED}`)),
        `no request line shows ${name}=${REDACTED}: ${urls.join(' ')}`,
      )
    }
    assert.ok(urls.some((url) => url.includes(`access%5Ftoken=${REDACTED}`)))
    assert.ok(urls.some((url) => url.includes('q=Kindred') && url.includes(`api_key=${REDACTED}`)))
    assert.ok(
      lines.some((text) => text.includes('"message":"starting"')),
      'the start-up line',
    )
    assert.ok(spans.includes('/v1/books'), 'spans were exported')
    t.diagnostic(
      `${lines.length} log lines, ${requestLines.length} request lines for ${requests} requests, ${secrets.size} secrets`,
    )
  })
})
