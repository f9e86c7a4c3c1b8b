// A second resource plugs in whole: the test-only widgets (test/helpers/widgets.ts), registered beside the books,
// are admitted, limited and documented by their declarations alone on both doors, and their events reach the outbox
// and the feed, without a line of the shared layers changed for them.
import assert from 'node:assert/strict'
import { after, before, it } from 'node:test'
import { Code, ConnectError, createClient } from '@connectrpc/connect'
import { createConnectTransport, createGrpcTransport } from '@connectrpc/connect-node'
import { exportSPKI, generateKeyPair, SignJWT } from 'jose'
import { missingScope } from '../../../src/auth/tokens.ts'
import { runOnce } from '../../../src/jobs/jobs.ts'
import { RESOURCES } from '../../../src/resources.ts'
import { describe } from '../../helpers/describe.ts'
import { freshAddress } from '../../helpers/rate-limit.ts'
import { type Json, startService, type TestService } from '../../helpers/service.ts'
import { openSse } from '../../helpers/sse.ts'
import { freePort } from '../../helpers/tools.ts'
import { WIDGET_OPERATIONS, WIDGET_RPC, WIDGETS_TABLE, widgetsResource } from '../../helpers/widgets.ts'

type JsonResponse = Omit<Response, 'json'> & { json(): Promise<Json> }

const LIMIT = 6
const { privateKey, publicKey } = await generateKeyPair('ES256')
let subjects = 0
/** A token for a subject of its own, so that each test has its own request budget. */
const tokenWith = (scope: string) =>
  new SignJWT({ sub: `widget-tester-${++subjects}`, scope })
    .setProtectedHeader({ alg: 'ES256' })
    .setIssuer('https://auth.test/')
    .setAudience('myapp')
    .setExpirationTime('5m')
    .sign(privateKey)

describe('a second resource, registered beside the books', () => {
  let service: TestService
  let grpcUrl: string
  before(async () => {
    const grpcPort = await freePort()
    grpcUrl = `http://127.0.0.1:${grpcPort}`
    service = await startService(
      'embedded',
      {
        AUTH_MODE: 'jwt',
        AUTH_JWT_ISSUER: 'https://auth.test/',
        AUTH_JWT_AUDIENCE: 'myapp',
        AUTH_JWT_ALGORITHMS: 'ES256',
        AUTH_JWT_PUBLIC_KEY: await exportSPKI(publicKey),
        RATE_LIMIT_MAX: String(LIMIT),
        // Each anonymous call below names an address of its own, so that anonymous calls share no budget.
        SERVER_TRUST_PROXY: '127.0.0.1',
        GRPC_PORT: String(grpcPort),
      },
      { resources: [...RESOURCES, widgetsResource] },
    )
    await service.database.query(WIDGETS_TABLE)
  })
  after(() => service?.close())

  const rest = async (method: string, path: string, token?: string, body?: unknown): Promise<JsonResponse> =>
    fetch(`${service.baseUrl}${path}`, {
      method,
      headers: {
        'x-forwarded-for': freshAddress(),
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
  const clients = (token?: string) => {
    const interceptors = [callerInterceptor(freshAddress(), token)]
    return {
      connect: createClient(
        WIDGET_RPC.service,
        createConnectTransport({ baseUrl: service.baseUrl, httpVersion: '1.1', interceptors }),
      ) as Json,
      grpc: createClient(WIDGET_RPC.service, createGrpcTransport({ baseUrl: grpcUrl, interceptors })) as Json,
    }
  }
  const codeOf = (call: Promise<unknown>) =>
    call.then(
      () => 'OK',
      (error: unknown) => Code[ConnectError.from(error).code],
    )

  it('when REST calls come with no token, the wrong scope or the declared one, then each gets what the declaration says', async () => {
    assert.equal((await rest('POST', '/v1/widgets', undefined, { name: 'sprocket' })).status, 401)
    const wrong = await rest('POST', '/v1/widgets', await tokenWith('books:write widgets:read'), { name: 'sprocket' })
    assert.equal(wrong.status, 403)
    assert.equal((await wrong.json()).detail, missingScope(['widgets:write']))
    const created = await rest('POST', '/v1/widgets', await tokenWith('widgets:write'), { name: 'sprocket' })
    assert.equal(created.status, 201)
    const widget = await created.json()
    assert.equal((await rest('GET', `/v1/widgets/${widget.id}`)).status, 401)
    const read = await rest('GET', `/v1/widgets/${widget.id}`, await tokenWith('widgets:read'))
    assert.deepEqual(await read.json(), widget)
    assert.equal((await rest('GET', '/v1/widgets/count')).status, 200, 'the public read needs no token')
  })

  it('when RPC calls on either door come with no token, the wrong scope or the declared one, then the same', async () => {
    for (const door of ['connect', 'grpc'] as const) {
      assert.equal(await codeOf(clients()[door].createWidget({ name: 'gear' })), 'Unauthenticated', door)
      const wrong = clients(await tokenWith('books:write'))[door]
      assert.equal(await codeOf(wrong.createWidget({ name: 'gear' })), 'PermissionDenied', door)
      const widget = await clients(await tokenWith('widgets:write'))[door].createWidget({ name: 'gear' })
      assert.equal(widget.name, 'gear', door)
      const read = await clients(await tokenWith('widgets:read'))[door].getWidget({ id: widget.id })
      assert.equal(read.id, widget.id, door)
      assert.ok((await clients()[door].countWidgets({})).count >= 1, `${door}: the public read needs no token`)
    }
  })

  it('when one subject calls past RATE_LIMIT_MAX across REST and both RPC doors, then the next call is refused', async () => {
    const token = await tokenWith('widgets:read widgets:write')
    const { connect, grpc } = clients(token)
    const first = await rest('POST', '/v1/widgets', token, { name: 'cog' })
    assert.equal(first.status, 201)
    assert.equal(first.headers.get('ratelimit-limit'), String(LIMIT), 'the REST answer carries the budget')
    const { id } = await first.json()
    for (let call = 2; call <= LIMIT; call++) {
      const outcome = await codeOf(call % 2 === 0 ? connect.getWidget({ id }) : grpc.getWidget({ id }))
      assert.equal(outcome, 'OK', `call ${call}`)
    }
    assert.equal((await rest('GET', `/v1/widgets/${id}`, token)).status, 429)
    assert.equal(await codeOf(grpc.createWidget({ name: 'cog' })), 'ResourceExhausted')
  })

  it('when the OpenAPI document is read, then each widget operation is there as declared', async () => {
    const document = await (await rest('GET', '/openapi.json')).json()
    const operations = new Map(
      Object.values(document.paths as Record<string, Record<string, Json>>)
        .flatMap((methods) => Object.values(methods))
        .map((operation) => [operation.operationId, operation]),
    )
    for (const declared of Object.values(WIDGET_OPERATIONS)) {
      const documented = operations.get(declared.id)
      assert.ok(documented, `${declared.id} is documented`)
      assert.equal(documented.summary, declared.summary)
      const security = declared.access.kind === 'public' ? [] : [{ bearerAuth: declared.access.scopes }, {}]
      assert.deepEqual(documented.security, security, declared.id)
    }
  })

  it('when the AsyncAPI document is read, then it has the widget events, their subject and the feed’s scopes', async () => {
    const document = await (await rest('GET', '/asyncapi.json')).json()
    assert.equal(document.channels.widgetCreated.address, 'widgets.created')
    assert.ok(document.components.schemas.WidgetCreatedEvent, 'the envelope is described')
    assert.match(document.components.securitySchemes.bearerAuth.description, /books:read or widgets:read/)
  })

  it('when books and a widget are created, then the feed sends each to a reader of its own scope only', async () => {
    const createBook = async (title: string) =>
      (
        await rest('POST', '/v1/books', await tokenWith('books:write'), {
          title,
          author: 'Edwin A. Abbott',
          published_date: '1884-01-01',
        })
      ).json()
    // A widget between two books: whichever reader is shown the other resource's events sees one before its own.
    const before = await createBook('Flatland')
    const widget = await (
      await rest('POST', '/v1/widgets', await tokenWith('widgets:write'), { name: 'flange' })
    ).json()
    const after = await createBook('Sphereland')
    /** The events a reader of `scope` gets, up to and including the one about `last`. */
    const eventsUpTo = async (scope: string, last: string) => {
      const stream = await openSse(`${service.baseUrl}/v1/events`, {
        authorization: `Bearer ${await tokenWith(scope)}`,
      })
      try {
        assert.equal(stream.status, 200, scope)
        const seen: Json[] = []
        while (seen.at(-1)?.subject !== last) seen.push(...(await stream.events(1)).map(({ event }) => event))
        return seen
      } finally {
        stream.close()
      }
    }
    const widgetReader = await eventsUpTo('widgets:read', widget.id)
    const created = widgetReader.at(-1)
    assert.equal(created.type, 'dev.myapp.widget.created.v1')
    assert.equal(created.source, '//myapp/widgets')
    assert.equal(created.widgetversion, 1)
    assert.deepEqual(created.data, widget)
    assert.ok(!widgetReader.some((event) => event.subject === before.id), 'no book event for a widget reader')
    const bookReader = await eventsUpTo('books:read', after.id)
    assert.ok(bookReader.some((event) => event.subject === before.id))
    assert.ok(!bookReader.some((event) => event.subject === widget.id), 'no widget event for a book reader')
    const both = await eventsUpTo('books:read widgets:read', after.id)
    assert.deepEqual(
      both.slice(-3).map((event) => event.subject),
      [before.id, widget.id, after.id],
      'a reader of both gets both, in order',
    )
  })

  it('when its job is run, then it runs under its own lock and reports its count', async () => {
    const [job] =
      widgetsResource.build({ database: service.database, logger: console as never, writes: { requireIfMatch: false } })
        .jobs ?? []
    assert.ok(job)
    const [{ count }] = (await service.database.query<{ count: number }>(
      'SELECT count(*)::int AS count FROM widgets',
    )) as [{ count: number }]
    assert.equal(await runOnce(service.database, job), count)
  })
})

/** Calls from `address` (through the trusted proxy), with `token` when there is one. */
function callerInterceptor(address: string, token: string | undefined) {
  return (next: (request: Json) => Promise<Json>) => async (request: Json) => {
    request.header.set('x-forwarded-for', address)
    if (token !== undefined) request.header.set('authorization', `Bearer ${token}`)
    return next(request)
  }
}
