// The AsyncAPI document of the resources' events: committed and current, valid for @asyncapi/parser, served and public,
// and describing the events the service really sends: a channel per event type whose payload schema takes the
// events of that type from the feed, and no other. The NATS messages are checked in test/system/events.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { after, before, it } from 'node:test'
import { DiagnosticSeverity } from '@asyncapi/parser'
import { exportSPKI, generateKeyPair, SignJWT } from 'jose'
import { parse } from 'yaml'
import { ASYNCAPI_YAML } from '../../../scripts/openapi.ts'
import { BOOK_EVENTS } from '../../../src/books/events.ts'
import { asyncApiOf } from '../../../src/events/http/resource.ts'
import { PREFIX } from '../../../src/events/http/routes.ts'
import { EVENTS } from '../../../src/resources.ts'
import {
  assertValid,
  channelAt,
  committed,
  document,
  parseDocument,
  schemasOf,
  writeEachChange,
} from '../../helpers/asyncapi.ts'
import { describe } from '../../helpers/describe.ts'
import { bodyOf, type Json, startService, type TestService } from '../../helpers/service.ts'
import { openSse } from '../../helpers/sse.ts'

describe('the AsyncAPI document', () => {
  let service: TestService
  before(async () => {
    service = await startService('embedded')
  })
  after(() => service?.close())

  it('when the event schemas change, then the committed asyncapi.yaml must be regenerated (npm run openapi)', () => {
    const fresh = asyncApiOf(EVENTS)
    assert.equal(readFileSync(ASYNCAPI_YAML, 'utf8'), fresh.yaml, 'asyncapi.yaml is stale: run npm run openapi')
    assert.deepEqual(parse(fresh.yaml), fresh.document)
  })

  it('when @asyncapi/parser reads it, then it is an AsyncAPI 3.0.0 document with no error and no warning', async () => {
    assert.deepEqual(
      committed.problems.map(({ code, message, path }) => `${code}: ${message} at ${path.join('.')}`),
      [],
    )
    assert.ok(committed.document, 'the committed document parses')
    assert.equal(document.version(), '3.0.0')
    assert.equal(document.info().version(), JSON.parse(readFileSync('package.json', 'utf8')).version)
    // What is left is information, such as that a newer AsyncAPI version exists.
    assert.ok(committed.diagnostics.every(({ severity }) => severity >= DiagnosticSeverity.Information))
  })

  it('when @asyncapi/parser reads a document that breaks the spec, then it reports an error', async () => {
    const broken = structuredClone(asyncApiOf(EVENTS).document) as Json
    broken.operations.publishBookCreated.action = 'publish'
    const { problems } = await parseDocument(JSON.stringify(broken))
    assert.ok(problems.length > 0, 'the parser validates, so a clean result above means something')
  })

  it('when /asyncapi.json and /asyncapi.yaml are fetched, then each is the committed document', async () => {
    // Plain fetch: service.fetch checks answers against the OpenAPI document, which leaves these out.
    const json = await fetch(`${service.baseUrl}/asyncapi.json`)
    assert.equal(json.status, 200)
    assert.match(json.headers.get('content-type') ?? '', /^application\/json/)
    assert.deepEqual(await json.json(), parse(readFileSync(ASYNCAPI_YAML, 'utf8')))
    const yaml = await fetch(`${service.baseUrl}/asyncapi.yaml`)
    assert.equal(yaml.status, 200)
    assert.match(yaml.headers.get('content-type') ?? '', /^application\/yaml/)
    assert.equal(await yaml.text(), readFileSync(ASYNCAPI_YAML, 'utf8'))
    const openapi = await bodyOf(await service.fetch('/openapi.json'))
    assert.equal(openapi.paths['/asyncapi.json'], undefined, 'the OpenAPI document leaves it out, as its own')
  })

  it('when each event type is looked up, then its NATS subject is a channel the service sends it on', () => {
    const sent = document
      .operations()
      .all()
      .filter((operation) => operation.action() === 'send')
    for (const type of Object.values(BOOK_EVENTS.changes).map(({ type }) => type)) {
      const channel = channelAt(document, EVENTS.subjectOf(type))
      assert.deepEqual(
        channel
          .servers()
          .all()
          .map((server) => server.protocol()),
        ['nats'],
      )
      assert.deepEqual([...schemasOf(channel).keys()], [type])
      const message = channel.messages().all()[0]
      assert.equal(message?.contentType(), 'application/cloudevents+json')
      assert.deepEqual(message?.headers()?.required(), ['Nats-Msg-Id', 'content-type'])
      assert.ok(
        sent.some((operation) =>
          operation
            .channels()
            .all()
            .some((on) => on.id() === channel.id()),
        ),
        `an operation sends on ${channel.address()}`,
      )
    }
    const feed = channelAt(document, PREFIX)
    assert.deepEqual(
      feed
        .servers()
        .all()
        .map((server) => server.protocol()),
      ['http'],
    )
    assert.deepEqual(
      [...schemasOf(feed).keys()],
      Object.values(BOOK_EVENTS.changes).map(({ type }) => type),
    )
  })

  it('when a book is created, replaced and deleted, then each event on the feed matches its channel and no other', async () => {
    const bookId = await writeEachChange(service)
    const stream = await openSse(`${service.baseUrl}${PREFIX}`)
    let events: { event: Json }[]
    try {
      events = (await stream.events(3)).filter(({ event }) => event.subject === bookId)
    } finally {
      stream.close()
    }
    assert.deepEqual(
      events.map(({ event }) => event.type),
      Object.values(BOOK_EVENTS.changes).map(({ type }) => type),
    )
    const feed = schemasOf(channelAt(document, PREFIX))
    for (const { event } of events) {
      assertValid(feed.get(event.type)?.payload, event, `${event.type} on the feed`)
      const nats = schemasOf(channelAt(document, EVENTS.subjectOf(event.type)))
      assertValid(nats.get(event.type)?.payload, event, `${event.type} as its NATS channel's payload`)
      for (const [type, { payload }] of feed) {
        if (type !== event.type) assert.equal(payload(event), false, `a ${event.type} event is no ${type}`)
      }
    }
    // A deleted event's data is the id and version, not a book: the created schema refuses the swap.
    const [created, , deleted] = events.map(({ event }) => event)
    assert.equal(feed.get(BOOK_EVENTS.changes.created.type)?.payload({ ...created, data: deleted.data }), false)
  })

  it('when AUTH_MODE=jwt, then the document needs no token and the feed needs the scope the document names', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256')
    const issuer = 'https://auth.test/'
    const secured = await startService('embedded', {
      AUTH_MODE: 'jwt',
      AUTH_JWT_ISSUER: issuer,
      AUTH_JWT_AUDIENCE: 'myapp',
      AUTH_JWT_ALGORITHMS: 'ES256',
      AUTH_JWT_PUBLIC_KEY: await exportSPKI(publicKey),
    })
    try {
      assert.equal((await fetch(`${secured.baseUrl}/asyncapi.json`)).status, 200)
      assert.equal((await fetch(`${secured.baseUrl}/asyncapi.yaml`)).status, 200)
      const scheme = document.operations().get('streamEvents')?.security()[0]?.all()[0]?.scheme()
      assert.equal(scheme?.type(), 'http')
      const scope = /scope (\S+);/.exec(scheme?.description() ?? '')?.[1] as string
      assert.equal((await secured.fetch(PREFIX)).status, 401)
      const token = await new SignJWT({ sub: 'consumer', scope })
        .setProtectedHeader({ alg: 'ES256' })
        .setIssuer(issuer)
        .setAudience('myapp')
        .setExpirationTime('5m')
        .sign(privateKey)
      const stream = await openSse(`${secured.baseUrl}${PREFIX}`, { authorization: `Bearer ${token}` })
      assert.equal(stream.status, 200, `the scope named, ${scope}, opens the feed`)
      stream.close()
    } finally {
      await secured.close()
    }
  })
})
