// The AsyncAPI 3.0 document of every resource's events: the NATS subjects the relay publishes to and the
// server-sent feed, made from the events each resource declares (cloudevents.ts), so that the two cannot drift.
// `npm run openapi` commits it as asyncapi.yaml; the service serves it (http/asyncapi.ts).
import { type TSchema, Type } from 'typebox'
import { stringify } from 'yaml'
import packageJson from '../../package.json' with { type: 'json' }
import type { Access } from '../auth/access.ts'
import {
  CLOUDEVENTS_JSON,
  capitalized,
  type EventCatalog,
  type ResourceEvents,
  TRACEPARENT_PATTERN,
} from './cloudevents.ts'
import { DUPLICATE_WINDOW_MS } from './stream.ts'

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

export interface AsyncApiOptions {
  /** Every resource's events. */
  catalog: EventCatalog
  /** The server-sent feed of the same events: where it is served and the access its route declares. */
  feed: { path: string; access: Access }
}

const DUPLICATE_WINDOW = `${DUPLICATE_WINDOW_MS / 60_000} minutes`
const CLOUDEVENTS_SPEC = 'https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md'

/** One change of one resource, as the document names it. */
interface Change {
  events: ResourceEvents
  change: string
}
const changesOf = (catalog: EventCatalog): Change[] =>
  catalog.resources.flatMap((events) => Object.keys(events.changes).map((change) => ({ events, change })))

/** What the relay sets on each message besides the payload. Open: JetStream's own headers come with them. */
const NatsEventHeaders = Type.Object(
  {
    'Nats-Msg-Id': Type.String({
      format: 'uuid',
      description: `The event id: JetStream drops a message whose id it has stored within the last ${DUPLICATE_WINDOW}`,
    }),
    'content-type': Type.Literal(CLOUDEVENTS_JSON),
    traceparent: Type.Optional(
      Type.String({
        pattern: TRACEPARENT_PATTERN,
        description:
          "W3C trace context a consumer continues: with tracing on, the relay's publish span (a child of the " +
          "request's span, in the same trace); otherwise the request's, as in the envelope",
      }),
    ),
  },
  { title: 'NatsEventHeaders', description: 'The headers of an event on NATS' },
)

function description({ catalog, feed }: AsyncApiOptions): string {
  const resources = catalog.resources.map(
    (events) =>
      `- ${events.aggregate}: \`source\` \`${events.source}\`, \`subject\` the ${events.aggregate} id, stream ` +
      `${events.stream.name} (subjects ${Object.values<string>(events.subjects)
        .map((subject) => `\`${subject}\``)
        .join(', ')}), ordered by \`${events.versionAttribute}\``,
  )
  return [
    'Every committed create, update and delete of a resource, as a CloudEvent 1.0 in structured mode ' +
      `(\`${CLOUDEVENTS_JSON}\`). A change and its event are written in one transaction (an outbox), so an event ` +
      'exists exactly when its change committed; it then leaves by two doors: the relay publishes it to NATS ' +
      `JetStream, into its resource's stream, and GET ${feed.path} streams it as server-sent events.`,
    resources.join('\n'),
    'Delivery is at least once. A relay that fails over, or an acknowledgement that is lost, sends an event ' +
      `again with the same \`id\` (a UUID v7). JetStream drops such a re-send within its duplicate window ` +
      `(${DUPLICATE_WINDOW}) by the Nats-Msg-Id header; beyond it, a consumer de-duplicates by \`source\` and ` +
      "`id`, which CloudEvents makes an event's identity.",
    'Order: one relay publishes at a time across replicas, in the order the events were written, and a failed ' +
      "publish stops its stream's batch, so nothing overtakes an event: one resource's events arrive in the order " +
      'of its version attribute (e.g. `bookversion`), while the events of two written at the same moment may ' +
      "arrive in either order. The version attribute is the version the change left the resource at (a delete's " +
      'is one past the last version): a consumer that has applied a higher one for a `subject` can drop a lower one.',
  ].join('\n\n')
}

const title = ({ events, change }: Change) => `${capitalized(events.aggregate)} ${change}`
/** What an event of this type reports: its envelope schema's description. */
const summary = ({ events, change }: Change) => (events.envelopes[change] as { description?: string }).description ?? ''
const channelId = ({ events, change }: Change) => `${events.aggregate}${capitalized(change)}`
const feedMessageId = (change: Change) => `feed${capitalized(channelId(change))}`
const subjectOf = ({ events, change }: Change) => events.subjects[change] as string

function servers(): Record<string, Json> {
  return {
    nats: {
      host: '{host}',
      protocol: 'nats',
      title: 'NATS JetStream',
      description:
        "The NATS servers of NATS_URL, where the relay publishes into each resource's stream. A consumer reads " +
        'through a JetStream consumer of that stream: a plain subscription sees only what is published while it listens.',
      variables: { host: { default: 'localhost:4222', description: 'host:port of a server of NATS_URL' } },
    },
    http: {
      host: '{host}',
      protocol: 'http',
      title: 'The books service',
      description: 'The service itself: the host and port of its REST API (/openapi.json)',
      variables: { host: { default: 'localhost:8080', description: 'host:port the service is reached at' } },
    },
  }
}

/** The messages; the schemas they name go into `schemas`. */
function messages(changes: Change[], schemas: Record<string, Json>): Record<string, Json> {
  const schema = (typebox: TSchema) => referenceSchemas(typebox as never, schemas)
  const nats = changes.map((change) => [
    channelId(change),
    {
      name: channelId(change),
      title: title(change),
      summary: summary(change),
      contentType: CLOUDEVENTS_JSON,
      headers: schema(NatsEventHeaders),
      payload: schema(change.events.envelopes[change.change] as TSchema),
    },
  ])
  const feed = changes.map((change) => [
    feedMessageId(change),
    {
      name: channelId(change),
      title: title(change),
      summary: summary(change),
      description:
        "One server-sent event: its `id:` line is the event's position in the feed (the Last-Event-ID to resume " +
        'from), its `data:` line this CloudEvent as one line of JSON.',
      contentType: CLOUDEVENTS_JSON,
      payload: schema(change.events.envelopes[change.change] as TSchema),
    },
  ])
  return Object.fromEntries([...nats, ...feed])
}

function channels(changes: Change[], feedPath: string): Record<string, Json> {
  const nats = changes.map((change) => [
    channelId(change),
    {
      address: subjectOf(change),
      title: subjectOf(change),
      description:
        `Every committed ${change.change.replace(/d$/, '')} of a ${change.events.aggregate}, kept in the JetStream ` +
        `stream ${change.events.stream.name} (subjects ${change.events.streamSubjects.join(', ')}) in the order ` +
        'the relay published them.',
      servers: [{ $ref: '#/servers/nats' }],
      messages: { [channelId(change)]: { $ref: `#/components/messages/${channelId(change)}` } },
    },
  ])
  const feed = {
    address: feedPath,
    title: `GET ${feedPath}`,
    description:
      'The same events as server-sent events (text/event-stream), for consumers without a broker. An event ' +
      'appears once its transaction and every older one have ended, so a stream resumed with Last-Event-ID ' +
      'goes on right after that event with no gap and no repeat; without it, the stream starts at the oldest ' +
      'event kept (EVENTS_RETENTION). A comment line keeps an idle stream open. The HTTP side of this route ' +
      '(its headers and errors) is in /openapi.json.',
    servers: [{ $ref: '#/servers/http' }],
    messages: Object.fromEntries(
      changes.map((change) => [channelId(change), { $ref: `#/components/messages/${feedMessageId(change)}` }]),
    ),
  }
  return Object.fromEntries([...nats, ['eventFeed', feed]])
}

function operations(changes: Change[], feed: AsyncApiOptions['feed']): Record<string, Json> {
  const publish = changes.map((change) => [
    `publish${capitalized(channelId(change))}`,
    {
      action: 'send',
      channel: { $ref: `#/channels/${channelId(change)}` },
      title: `Publish ${title(change).toLowerCase()}`,
      summary: `The outbox relay publishes each ${change.events.changes[change.change]?.type} event once its change has committed.`,
      description:
        'At least once, with the event id as Nats-Msg-Id; the relay goes on after a NATS outage with what waited ' +
        'in the outbox, in order.',
      messages: [{ $ref: `#/channels/${channelId(change)}/messages/${channelId(change)}` }],
      // The NATS binding has one field, queue, and it is a subscriber's: a publisher has nothing more to declare.
      bindings: { nats: { bindingVersion: '0.1.0' } },
    },
  ])
  const stream = {
    action: 'send',
    channel: { $ref: '#/channels/eventFeed' },
    title: 'Stream the events',
    summary: `GET ${feed.path} sends every event the caller may read, then each new one as it commits.`,
    messages: changes.map((change) => ({ $ref: `#/channels/eventFeed/messages/${channelId(change)}` })),
    bindings: { http: { method: 'GET', bindingVersion: '0.3.0' } },
    ...(feed.access.kind === 'scope' ? { security: [{ $ref: '#/components/securitySchemes/bearerAuth' }] } : {}),
  }
  return Object.fromEntries([...publish, ['streamEvents', stream]])
}

function securitySchemes(access: Access): Record<string, Json> {
  if (access.kind !== 'scope') return {}
  return {
    bearerAuth: {
      type: 'http',
      scheme: 'bearer',
      bearerFormat: 'JWT',
      description: `With AUTH_MODE=jwt: a token from the configured issuer with the scope ${access.scopes.join(' or ')}; the feed sends each resource's events to a token with that resource's read scope. With AUTH_MODE=none, no token`,
    },
  }
}

/**
 * Moves each schema with a title into components.schemas (its first occurrence) and puts a $ref where it stood,
 * so that the book and each envelope are written once.
 */
function referenceSchemas(node: Json, schemas: Record<string, Json>): Json {
  if (Array.isArray(node)) return node.map((item) => referenceSchemas(item, schemas))
  if (node === null || typeof node !== 'object') return node
  const walked = Object.fromEntries(Object.entries(node).map(([key, value]) => [key, referenceSchemas(value, schemas)]))
  if (typeof node.title !== 'string') return walked
  schemas[node.title] ??= walked
  return { $ref: `#/components/schemas/${node.title}` }
}

/** The document, and its YAML as served and committed. */
export function buildAsyncApi(options: AsyncApiOptions): { document: Record<string, Json>; yaml: string } {
  const { catalog, feed } = options
  const changes = changesOf(catalog)
  const schemas: Record<string, Json> = {}
  const componentMessages = messages(changes, schemas)
  const document: Record<string, Json> = {
    asyncapi: '3.0.0',
    info: {
      title: 'myapp events',
      version: packageJson.version,
      description: description(options),
      license: { name: packageJson.license },
      externalDocs: { description: 'CloudEvents 1.0', url: CLOUDEVENTS_SPEC },
    },
    defaultContentType: CLOUDEVENTS_JSON,
    servers: servers(),
    channels: channels(changes, feed.path),
    operations: operations(changes, feed),
    components: {
      schemas,
      messages: componentMessages,
      securitySchemes: securitySchemes(feed.access),
    },
  }
  return { document, yaml: stringify(document, { aliasDuplicateObjects: false }) }
}
