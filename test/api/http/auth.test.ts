// AUTH_MODE=jwt: every books route against every kind of token, with keys from a JWKS served on 127.0.0.1.
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import { after, before, it } from 'node:test'
import { exportJWK, exportSPKI, generateKeyPair, type JWTPayload, SignJWT } from 'jose'
import { describe } from '../../helpers/describe.ts'
import { bodyOf, jsonRequest, startService, type TestService } from '../../helpers/service.ts'

const ISSUER = 'https://auth.test/'
const AUDIENCE = 'myapp'
const book = { title: 'Kindred', author: 'Octavia E. Butler', published_date: '1979-06-01' }

const { privateKey, publicKey } = await generateKeyPair('RS256')
const other = await generateKeyPair('RS256')

async function token(
  claims: JWTPayload,
  options: { key?: Parameters<SignJWT['sign']>[0]; expiresIn?: string | number; alg?: string } = {},
) {
  const jwt = new SignJWT({ sub: 'reader-1', ...claims })
    .setProtectedHeader({ alg: options.alg ?? 'RS256', kid: 'k1' })
    .setIssuer((claims.iss as string) ?? ISSUER)
    .setAudience((claims.aud as string) ?? AUDIENCE)
    .setIssuedAt()
  if (options.expiresIn !== undefined) jwt.setExpirationTime(options.expiresIn)
  else jwt.setExpirationTime('5m')
  return jwt.sign(options.key ?? privateKey)
}

const base64url = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url')
const now = () => Math.floor(Date.now() / 1000)

describe('bearer tokens (AUTH_MODE=jwt)', () => {
  let jwks: Server
  let service: TestService
  let tokens: Record<string, string | undefined>
  before(async () => {
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' }
    jwks = createServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }))
    })
    await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve))
    service = await startService('embedded', {
      AUTH_MODE: 'jwt',
      AUTH_JWT_ISSUER: ISSUER,
      AUTH_JWT_AUDIENCE: AUDIENCE,
      AUTH_JWT_JWKS_URL: `http://127.0.0.1:${(jwks.address() as { port: number }).port}/jwks.json`,
      // The matrix sends about 40 bad tokens from one address; the failure budget has its own tests (rate-limit).
      AUTH_FAILURE_LIMIT: '0',
    })
    const valid = await token({ scope: 'books:read' })
    const [header, payload] = valid.split('.')
    tokens = {
      none: undefined,
      expired: await token({ scope: 'books:read books:write' }, { expiresIn: now() - 120 }),
      'wrong audience': await token({ scope: 'books:read books:write', aud: 'someone-else' }),
      'wrong issuer': await token({ scope: 'books:read books:write', iss: 'https://evil.test/' }),
      'alg none': `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url({ sub: 'x', iss: ISSUER, aud: AUDIENCE, exp: now() + 300, scope: 'books:read books:write' })}.`,
      'tampered signature': `${header}.${payload}.${'A'.repeat(342)}`,
      'other signer': await token({ scope: 'books:read books:write' }, { key: other.privateKey }),
      'not yet valid': await token({ scope: 'books:read books:write', nbf: now() + 600 }),
      'read scope': valid,
      'write scope': await token({ sub: 'writer-1', scope: 'books:write' }),
    }
  })
  after(async () => {
    await service?.close()
    jwks?.close()
  })

  // The books the routes change are the write-scope token's subject's: the owner check has its own tests (owners).
  const full = () => token({ sub: 'writer-1', scope: 'books:read books:write' })
  const newBookId = async () => {
    const response = await service.fetch(
      '/v1/books',
      jsonRequest('POST', book, { authorization: `Bearer ${await full()}` }),
    )
    assert.equal(response.status, 201)
    return (await bodyOf(response)).id as string
  }

  const routes: { name: string; write: boolean; call: (headers: Record<string, string>) => Promise<Response> }[] = [
    { name: 'GET /v1/books', write: false, call: (headers) => service.fetch('/v1/books', { headers }) },
    {
      name: 'POST /v1/books',
      write: true,
      call: (headers) => service.fetch('/v1/books', jsonRequest('POST', book, headers)),
    },
    {
      name: 'GET /v1/books/{id}',
      write: false,
      call: async (headers) => service.fetch(`/v1/books/${await newBookId()}`, { headers }),
    },
    {
      name: 'PUT /v1/books/{id}',
      write: true,
      call: async (headers) => service.fetch(`/v1/books/${await newBookId()}`, jsonRequest('PUT', book, headers)),
    },
    {
      name: 'DELETE /v1/books/{id}',
      write: true,
      call: async (headers) => service.fetch(`/v1/books/${await newBookId()}`, { method: 'DELETE', headers }),
    },
  ]

  it('when every route meets every kind of token, then each gets the contract status and no write passes without books:write', async (t) => {
    const expected = (kind: string, write: boolean): number => {
      if (kind === 'read scope') return write ? 403 : 200
      if (kind === 'write scope') return write ? 0 : 403
      return 401
    }
    const rows: string[] = []
    for (const kind of Object.keys(tokens)) {
      for (const route of routes) {
        const value = tokens[kind]
        const response = await route.call(value === undefined ? {} : { authorization: `Bearer ${value}` })
        const want = expected(kind, route.write)
        if (want === 0)
          assert.ok(response.status >= 200 && response.status < 300, `${kind} ${route.name} → ${response.status}`)
        else assert.equal(response.status, want, `${kind} ${route.name}`)
        if (response.status === 401 || response.status === 403) {
          const challenge = response.headers.get('www-authenticate') ?? ''
          assert.match(challenge, /^Bearer realm="myapp"/)
          if (kind !== 'none' && response.status === 401) assert.match(challenge, /error="invalid_token"/)
          if (response.status === 403)
            assert.match(
              challenge,
              /error="insufficient_scope", .*scope="books:(read|write books:admin|write books:verify books:admin)"/,
            )
        }
        rows.push(`${kind} / ${route.name}: ${response.status}`)
      }
    }
    t.diagnostic(rows.join('\n'))
    const stored = await service.database.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM books WHERE title = 'Kindred'",
    )
    // Setup made one book for each GET/PUT/DELETE row; only the write-scope token then created one (its POST)
    // and removed one (its DELETE). Every other token changed nothing.
    const setupBooks = Object.keys(tokens).length * 3
    assert.equal(stored[0]?.n, setupBooks + 1 - 1)
  })

  it('when a token expired within AUTH_CLOCK_SKEW, then it is still accepted', async () => {
    const lenient = await token({ scope: 'books:read' }, { expiresIn: now() - 10 })
    assert.equal((await service.fetch('/v1/books', { headers: { authorization: `Bearer ${lenient}` } })).status, 200)
  })

  it('when health, metrics and the document are asked for, then no token is needed', async () => {
    for (const path of ['/livez', '/readyz', '/metrics', '/openapi.json']) {
      assert.equal((await service.fetch(path)).status, 200, path)
    }
  })

  it('when two subjects use the same Idempotency-Key, then each gets their own book', async () => {
    const alice = await token({ sub: 'alice', scope: 'books:write' })
    const bob = await token({ sub: 'bob', scope: 'books:write' })
    const post = (jwt: string) =>
      service.fetch(
        '/v1/books',
        jsonRequest('POST', book, { authorization: `Bearer ${jwt}`, 'idempotency-key': 'shared-key' }),
      )
    const first = await bodyOf(await post(alice))
    const second = await post(bob)
    assert.equal(second.headers.get('idempotent-replayed'), null)
    assert.notEqual((await bodyOf(second)).id, first.id)
    assert.equal((await post(alice)).headers.get('idempotent-replayed'), 'true')
  })
})

describe('other jwt configurations', () => {
  /** A service verifying tokens with the test key given as PEM, plus `env`. */
  const withPublicKey = async (env: Record<string, string>) =>
    startService('embedded', {
      AUTH_MODE: 'jwt',
      AUTH_JWT_ISSUER: ISSUER,
      AUTH_JWT_AUDIENCE: AUDIENCE,
      AUTH_JWT_PUBLIC_KEY: await exportSPKI(publicKey),
      ...env,
    })

  it('when an accepted token expires, then its next request is refused although it was verified before', async () => {
    const service = await withPublicKey({ AUTH_CLOCK_SKEW: '0s' })
    try {
      const shortLived = await token({ scope: 'books:read' }, { expiresIn: now() + 2 })
      const read = () => service.fetch('/v1/books', { headers: { authorization: `Bearer ${shortLived}` } })
      assert.equal((await read()).status, 200)
      assert.equal((await read()).status, 200, 'accepted again while valid')
      // exp has second resolution: wait until the clock is past it.
      await new Promise((resolve) => setTimeout(resolve, 3000))
      const refused = await read()
      assert.equal(refused.status, 401)
      assert.match(refused.headers.get('www-authenticate') ?? '', /invalid_token/)
    } finally {
      await service.close()
    }
  })

  it('when AUTH_PUBLIC_READS is on, then reads need no token but writes still do', async () => {
    const service = await withPublicKey({ AUTH_PUBLIC_READS: 'true' })
    try {
      assert.equal((await service.fetch('/v1/books')).status, 200)
      assert.equal((await service.fetch('/v1/books', jsonRequest('POST', book))).status, 401)
      const writer = await token({ scope: 'books:write' })
      const created = await service.fetch('/v1/books', jsonRequest('POST', book, { authorization: `Bearer ${writer}` }))
      assert.equal(created.status, 201, 'a PEM public key verifies the token')
    } finally {
      await service.close()
    }
  })
})
