// Each operation is declared once (src/admission/operation.ts) and the route names it: a route without one cannot
// be added, whatever its path; admission enforces the declared scope whatever the method; and the OpenAPI document
// shows what the resources declare.
import assert from 'node:assert/strict'
import { after, before, it } from 'node:test'
import Fastify, { type FastifyInstance } from 'fastify'
import { exportSPKI, generateKeyPair, SignJWT } from 'jose'
import { createAdmission } from '../../../src/admission/admission.ts'
import { createTokenVerifier, missingScope } from '../../../src/auth/tokens.ts'
import { parseConfig } from '../../../src/config/config.ts'
import { registerAdmission } from '../../../src/http/pipeline/admission.ts'
import { registerErrorHandling } from '../../../src/http/pipeline/errors.ts'
import { requireDeclaredOperations, routesServing } from '../../../src/http/pipeline/operations.ts'
import {
  type Access,
  declareOperations,
  type Operation,
  PUBLIC,
  requiresScope,
} from '../../../src/http/toolkit/operation.ts'
import { RESOURCES } from '../../../src/resources.ts'
import { describe } from '../../helpers/describe.ts'
import { bodyOf, type Json, jsonRequest, startService, type TestService } from '../../helpers/service.ts'

const ISSUER = 'https://auth.test/'
const AUDIENCE = 'myapp'
const book = { title: 'Kindred', author: 'Octavia E. Butler', published_date: '1979-06-01' }
const { privateKey, publicKey } = await generateKeyPair('ES256')
const JWT_ENV = {
  AUTH_MODE: 'jwt',
  AUTH_JWT_ISSUER: ISSUER,
  AUTH_JWT_AUDIENCE: AUDIENCE,
  AUTH_JWT_ALGORITHMS: 'ES256',
  AUTH_JWT_PUBLIC_KEY: await exportSPKI(publicKey),
}

const tokenWith = (scope: string) =>
  new SignJWT({ sub: 'caller', scope })
    .setProtectedHeader({ alg: 'ES256' })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setExpirationTime('5m')
    .sign(privateKey)
const bearer = async (scope: string) => ({ authorization: `Bearer ${await tokenWith(scope)}` })

/** An app that checks declarations, with `add` adding its routes; resolves once every route has been added. */
async function appWith(add: (app: FastifyInstance) => void): Promise<FastifyInstance> {
  const app = Fastify()
  requireDeclaredOperations(app)
  try {
    add(app)
    await app.ready()
    return app
  } catch (error) {
    await app.close()
    throw error
  }
}

const ok = async () => ({ ok: true })
const operationWith = (access: Access): Operation =>
  declareOperations({ listAuthors: { summary: 'List authors', access, effect: 'read' } }).listAuthors

describe('a route that names no operation', () => {
  it('when GET /v1/authors names none, then adding it fails, naming the method, the path and what to declare', async () => {
    await assert.rejects(
      appWith((app) => app.get('/v1/authors', ok)),
      (error: Error) => {
        assert.match(error.message, /^GET \/v1\/authors serves no declared operation/)
        assert.match(error.message, /config\.operation/)
        return true
      },
    )
  })

  it('when a resource adds it under a prefix, or outside /v1, then it fails the same way: no path is exempt', async () => {
    for (const [add, expected] of [
      [
        (app: FastifyInstance) => app.register(async (v1) => v1.post('/authors', ok), { prefix: '/v1' }),
        /^POST \/v1\/authors/,
      ],
      [(app: FastifyInstance) => app.get('/docs/static/logo.svg', ok), /^GET \/docs\/static\/logo\.svg/],
      [(app: FastifyInstance) => app.get('/livez', ok), /^GET \/livez/],
    ] as const) {
      await assert.rejects(appWith(add), (error: Error) => {
        assert.match(error.message, expected)
        assert.match(error.message, /serves no declared operation/)
        return true
      })
    }
  })

  for (const [name, access] of [
    ['PUBLIC', PUBLIC],
    ["requiresScope('authors:read')", requiresScope('authors:read')],
  ] as [string, Access][]) {
    it(`when GET /v1/authors declares ${name}, then it is added and served`, async () => {
      const app = await appWith((app) => app.get('/v1/authors', { config: { operation: operationWith(access) } }, ok))
      try {
        assert.equal((await app.inject({ url: '/v1/authors' })).statusCode, 200)
      } finally {
        await app.close()
      }
    })
  }

  it('when a plugin adds routes of its own while registered with routesServing, then they serve its operation', async () => {
    const page = operationWith(PUBLIC)
    let served: Operation | undefined
    const app = await appWith((app) => {
      void routesServing(app, page, () =>
        app.register(async (plugin) => {
          plugin.get('/docs/static/logo.svg', async (request) => {
            served = request.routeOptions.config.operation
            return { ok: true }
          })
        }),
      )
    })
    try {
      assert.equal((await app.inject({ url: '/docs/static/logo.svg' })).statusCode, 200)
      assert.equal(served, page)
    } finally {
      await app.close()
    }
  })
})

describe('requiresScope', () => {
  for (const scope of ['reports:read reports:write', 'reports"read', 'reports\\read', '']) {
    it(`when given ${JSON.stringify(scope)}, then it refuses it: it is no OAuth scope token`, () => {
      assert.throws(() => requiresScope(scope), /not an OAuth scope token/)
    })
  }
})

describe('the scope enforced is the one the route declares (AUTH_MODE=jwt)', () => {
  let app: FastifyInstance
  before(async () => {
    // The service's own jwt configuration, as parsed from the environment.
    const { auth } = parseConfig({ DB_EMBEDDED_PATH: 'memory://', ...JWT_ENV })
    assert.equal(auth.mode, 'jwt')
    if (auth.mode !== 'jwt') return
    app = Fastify()
    registerErrorHandling(app)
    requireDeclaredOperations(app)
    const budgets = { requests: undefined, failures: undefined, close: async () => {} }
    registerAdmission(app, createAdmission({ tokens: await createTokenVerifier(auth), publicReads: false, budgets }))
    // Each declares the scope a method-based rule would not give it.
    const operations = declareOperations({
      fileReport: { summary: 'File a report', access: requiresScope('reports:read'), effect: 'write' },
      listDrafts: { summary: 'List drafts', access: requiresScope('reports:write'), effect: 'read' },
      status: { summary: 'Status', access: PUBLIC, effect: 'read' },
    })
    app.post('/v1/reports', { config: { operation: operations.fileReport } }, ok)
    app.get('/v1/reports/drafts', { config: { operation: operations.listDrafts } }, ok)
    app.get('/v1/status', { config: { operation: operations.status } }, ok)
    await app.ready()
  })
  after(() => app?.close())

  const call = async (method: 'GET' | 'POST', url: string, scope?: string) =>
    app.inject({ method, url, headers: scope === undefined ? {} : await bearer(scope) })

  it('when a POST route declares reports:read, then a reports:read token is served', async () => {
    assert.equal((await call('POST', '/v1/reports', 'reports:read')).statusCode, 200)
  })

  it('when a POST route declares reports:read, then a token with only write scopes gets 403 naming reports:read', async () => {
    for (const scope of ['books:write', 'reports:write books:read books:write']) {
      const refused = await call('POST', '/v1/reports', scope)
      assert.equal(refused.statusCode, 403, scope)
      assert.equal(refused.json().detail, missingScope(['reports:read']))
      assert.match(refused.json().detail, /reports:read/)
      assert.match(String(refused.headers['www-authenticate']), /error="insufficient_scope".*scope="reports:read"/)
    }
  })

  it('when a GET route declares reports:write, then only a reports:write token is served', async () => {
    const refused = await call('GET', '/v1/reports/drafts', 'reports:read books:read')
    assert.equal(refused.statusCode, 403)
    assert.equal(refused.json().detail, missingScope(['reports:write']))
    assert.equal((await call('GET', '/v1/reports/drafts', 'reports:write')).statusCode, 200)
  })

  it('when a declared route gets no token, then 401 whatever its method', async () => {
    assert.equal((await call('POST', '/v1/reports')).statusCode, 401)
    assert.equal((await call('GET', '/v1/reports/drafts')).statusCode, 401)
  })

  it('when a /v1 route declares PUBLIC, then it needs no token even in jwt mode', async () => {
    assert.equal((await call('GET', '/v1/status')).statusCode, 200)
    assert.equal((await call('GET', '/v1/status', 'unrelated:scope')).statusCode, 200, 'nor any scope')
  })
})

describe('the OpenAPI document shows the declared operations', () => {
  let service: TestService
  let document: Json
  before(async () => {
    service = await startService('embedded', JWT_ENV)
    const response = await service.fetch('/openapi.json')
    assert.equal(response.status, 200)
    document = await bodyOf(response)
  })
  after(() => service?.close())

  // What the resources declare, and the feed of their events, which needs any of their read scopes.
  const DECLARED: Record<string, readonly string[]> = {
    streamEvents: ['books:read'],
    ...Object.fromEntries(
      RESOURCES.flatMap((resource) => Object.values(resource.operations)).map((operation) => [
        operation.id,
        operation.access.kind === 'scope' ? operation.access.scopes : [],
      ]),
    ),
  }
  const operations = () =>
    Object.entries(document.paths as Record<string, Record<string, Json>>).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, operation]) => ({ path, method, operation })),
    )

  it('when the /v1 operations are listed, then each requires exactly its declared scope, or nothing with auth off', () => {
    const v1 = operations().filter(({ path }) => path.startsWith('/v1/'))
    assert.deepEqual(v1.map(({ operation }) => operation.operationId).sort(), Object.keys(DECLARED).sort())
    for (const { operation } of v1) {
      // Any one of the scopes will do: one requirement each, and none at all with auth off.
      const scopes = DECLARED[operation.operationId] ?? []
      assert.deepEqual(
        operation.security,
        [...scopes.map((scope) => ({ bearerAuth: [scope] })), {}],
        operation.operationId,
      )
    }
  })

  it('when a /v1 operation documents its 403, then the example detail names its declared scope', () => {
    for (const { operation } of operations().filter(({ path }) => path.startsWith('/v1/'))) {
      const scopes = DECLARED[operation.operationId] ?? []
      const example = operation.responses['403']?.content?.['application/problem+json']?.example
      assert.ok(example, `${operation.operationId} documents a 403 with an example`)
      assert.equal(example.detail, missingScope(scopes), operation.operationId)
      assert.equal(example.error, missingScope(scopes), operation.operationId)
    }
  })

  it('when a token lacks the documented scope, then the service answers the documented 403', async () => {
    const id = '01900000-0000-7000-8000-000000000000'
    for (const { path, method, operation } of operations().filter(({ path }) => path.startsWith('/v1/'))) {
      const scopes = DECLARED[operation.operationId] ?? []
      // Every scope the service knows but those the operation takes.
      const others = Object.values(DECLARED)
        .flat()
        .filter((candidate) => !scopes.includes(candidate))
      const headers = await bearer([...new Set(others)].join(' '))
      const url = path.replace('{id}', id)
      const response = await service.fetch(
        url,
        ['post', 'put'].includes(method)
          ? jsonRequest(method.toUpperCase(), book, headers)
          : // fetch leaves a method it does not know (patch) as written: the service is sent PATCH
            { method: method.toUpperCase(), headers },
      )
      assert.equal(response.status, 403, `${method} ${path}`)
      assert.equal(
        (await bodyOf(response)).detail,
        operation.responses['403'].content['application/problem+json'].example.detail,
        `${method} ${path}`,
      )
    }
  })

  it('when an operation is listed, then its summary and description are its declaration’s', () => {
    const declared = new Map(
      RESOURCES.flatMap((resource) => Object.values(resource.operations)).map((operation) => [operation.id, operation]),
    )
    const documented = operations().filter(({ operation }) => declared.has(operation.operationId))
    assert.equal(documented.length, declared.size, 'every declared operation is in the document')
    for (const { operation } of documented) {
      const declaration = declared.get(operation.operationId) as Operation
      assert.equal(operation.summary, declaration.summary, operation.operationId)
      assert.equal(operation.description, declaration.description, operation.operationId)
    }
  })

  it('when the probes and metrics are listed, then they have security: [] (public)', () => {
    const byPath = Object.fromEntries(operations().map(({ path, operation }) => [path, operation]))
    for (const path of ['/livez', '/readyz', '/metrics']) {
      assert.ok(byPath[path], `${path} is documented`)
      assert.deepEqual(byPath[path].security, [], path)
    }
  })
})
