// The committed AsyncAPI document as a consumer's tooling reads it, and checks of real events against its channels'
// schemas: shared by the tests of the feed (test/api/events) and of the NATS messages (test/system/events).
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { type AsyncAPIDocumentInterface, type ChannelInterface, DiagnosticSeverity, Parser } from '@asyncapi/parser'
import { Ajv, type ValidateFunction } from 'ajv'
import addFormats from 'ajv-formats'
import { ASYNCAPI_YAML } from '../../scripts/openapi.ts'
import { bodyOf, jsonRequest, type TestService } from './service.ts'

const book = { title: 'The Left Hand of Darkness', author: 'Ursula K. Le Guin', published_date: '1969-03-01' }

// The AsyncAPI schema format is a superset of JSON Schema draft-07, which is Ajv's default.
const ajv = new Ajv({ strict: false, allErrors: true })
addFormats.default(ajv)

export async function parseDocument(text: string) {
  const { document, diagnostics } = await new Parser().parse(text)
  const problems = diagnostics.filter(
    ({ severity }) => severity === DiagnosticSeverity.Error || severity === DiagnosticSeverity.Warning,
  )
  return { document, diagnostics, problems }
}

// Parsed once, as a consumer's tooling would read the committed file.
export const committed = await parseDocument(readFileSync(ASYNCAPI_YAML, 'utf8'))
export const document = committed.document as AsyncAPIDocumentInterface

/** The payload (and headers) schemas of each message of a channel, keyed by the event type the payload fixes. */
export function schemasOf(channel: ChannelInterface) {
  const byType = new Map<string, { payload: ValidateFunction; headers: ValidateFunction | undefined }>()
  for (const message of channel.messages().all()) {
    const payload = message.payload()?.json() as { properties: { type: { const: string } } }
    const headers = message.headers()?.json()
    byType.set(payload.properties.type.const, {
      payload: ajv.compile(payload),
      headers: headers === undefined ? undefined : ajv.compile(headers),
    })
  }
  return byType
}

/** The one channel at `address`. */
export function channelAt(document: AsyncAPIDocumentInterface, address: string): ChannelInterface {
  const channels = document
    .channels()
    .all()
    .filter((channel) => channel.address() === address)
  assert.equal(channels.length, 1, `one channel at ${address}`)
  return channels[0] as ChannelInterface
}

export function assertValid(check: ValidateFunction | undefined, value: unknown, what: string) {
  assert.ok(check, `a schema for ${what}`)
  assert.ok(check(value), `${what}: ${ajv.errorsText(check.errors)}\n${JSON.stringify(value)}`)
}

/** A create, a replace and a delete of one book: one event of each type. */
export async function writeEachChange(service: TestService) {
  const created = await bodyOf(await service.fetch('/v1/books', jsonRequest('POST', book)))
  const replaced = await service.fetch(
    `/v1/books/${created.id}`,
    jsonRequest('PUT', { ...book, status: 'verified' }, { 'if-match': '"1"' }),
  )
  assert.equal(replaced.status, 200)
  const deleted = await service.fetch(`/v1/books/${created.id}`, { method: 'DELETE' })
  assert.equal(deleted.status, 204)
  return created.id as string
}
