// A resource's events as CloudEvents 1.0 in structured JSON, declared once in the resource's folder with
// declareEvents(): the aggregate they are about, their source, the NATS subjects and stream they go to, who may
// read them, and one data schema per change. From that follow the envelope schemas (which the AsyncAPI document
// publishes, and a consumer's tests can validate against) and the mapping from an outbox row to the envelope that
// both the relay (NATS) and the feed (server-sent events) send. The transports add nothing to the envelope.
import { type TSchema, Type } from 'typebox'
import type { Access } from '../auth/access.ts'

/** The media type of an event in structured mode: the whole CloudEvent, attributes and data, as one JSON object. */
export const CLOUDEVENTS_JSON = 'application/cloudevents+json'

export const TRACEPARENT_PATTERN = '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$'

/** W3C trace context of the request that made the change. */
export const Traceparent = Type.String({
  pattern: TRACEPARENT_PATTERN,
  description: 'W3C trace context of the request that made the change (distributed tracing extension)',
})

/** One kind of change: its CloudEvents type, its data schema, and its envelope's title and description. */
export interface ChangeDeclaration {
  type: string
  data: TSchema
  title: string
  description: string
}

export interface EventsDeclaration<Change extends string> {
  /** The aggregate the events are about, as the outbox names it (aggregate_type), e.g. `book`. */
  aggregate: string
  /** The CloudEvents source: a URI reference that names this service's collection, the same in every replica. */
  source: string
  /** The extension attribute that orders one aggregate's events, e.g. `bookversion`. */
  versionAttribute: string
  /** The JetStream stream the relay publishes into, and the subjects' first token (`books` → books.created). */
  stream: { name: string; subjectPrefix: string }
  /** Who may read these events on the feed: the resource's read access. */
  read: Access
  changes: Record<Change, ChangeDeclaration>
}

/** A resource's events as the shared layer uses them: the declaration, its envelopes and its subjects. */
export interface ResourceEvents<Change extends string = string> extends EventsDeclaration<Change> {
  /** The envelope schema of each change, and their union. */
  envelopes: Record<Change, TSchema>
  envelope: TSchema
  /** The NATS subject of each change: `${subjectPrefix}.${change}`. */
  subjects: Record<Change, string>
  /** What the stream holds: `${subjectPrefix}.>`. */
  streamSubjects: string[]
}

/** A committed change as a CloudEvent; the version attribute is the resource's (e.g. bookversion). */
export interface CloudEvent {
  specversion: '1.0'
  id: string
  source: string
  type: string
  subject: string
  time: string
  datacontenttype: 'application/json'
  traceparent?: string
  data: Record<string, unknown>
  [versionAttribute: string]: unknown
}

export function declareEvents<const Change extends string>(
  declaration: EventsDeclaration<Change>,
): ResourceEvents<Change> {
  const changes = Object.keys(declaration.changes) as Change[]
  const envelopes = Object.fromEntries(
    changes.map((change) => [change, envelopeOf(declaration, declaration.changes[change])]),
  ) as unknown as Record<Change, TSchema>
  const noun = declaration.aggregate
  return {
    ...declaration,
    envelopes,
    envelope: Type.Union(
      changes.map((change) => envelopes[change]),
      {
        title: `${capitalized(noun)}Event`,
        description: `A committed change of a ${noun}, as a CloudEvent 1.0`,
      },
    ),
    subjects: Object.fromEntries(
      changes.map((change) => [change, `${declaration.stream.subjectPrefix}.${change}`]),
    ) as Record<Change, string>,
    streamSubjects: [`${declaration.stream.subjectPrefix}.>`],
  }
}

export const capitalized = (name: string) => `${name[0]?.toUpperCase()}${name.slice(1)}`

/** The envelope of one change: the attributes every event of the resource has, its `type` fixed, its `data` given. */
function envelopeOf(declaration: EventsDeclaration<string>, change: ChangeDeclaration) {
  const noun = declaration.aggregate
  return Type.Object(
    {
      specversion: Type.Literal('1.0'),
      id: Type.String({ format: 'uuid', description: 'UUID v7; the same event keeps its id on every delivery' }),
      source: Type.Literal(declaration.source),
      type: Type.Literal(change.type),
      subject: Type.String({ format: 'uuid', description: `The ${noun} id` }),
      time: Type.String({ format: 'date-time', description: 'When the change was made (its transaction)' }),
      datacontenttype: Type.Literal('application/json'),
      [declaration.versionAttribute]: Type.Integer({
        minimum: 1,
        description: `Orders one ${noun}'s events: the version the change left the ${noun} at (a delete: one past the last version)`,
      }),
      traceparent: Type.Optional(Traceparent),
      data: change.data,
    },
    { title: change.title, description: change.description, additionalProperties: false },
  )
}

/** An outbox row as the drivers return it (src/events/outbox.ts selects these columns). */
export interface EventRow {
  position: string
  xid: string
  id: string
  type: string
  aggregate_type: string
  aggregate_id: string
  aggregate_version: number
  /** RFC 3339, UTC, to the microsecond. */
  occurred_at: string
  traceparent: string | null
  data: Record<string, unknown> | string
}

/** Every resource's events, looked up by what an outbox row names. */
export interface EventCatalog {
  readonly resources: readonly ResourceEvents[]
  /** The resource whose events have this CloudEvents type. */
  byType(type: string): { events: ResourceEvents; change: string } | undefined
  toCloudEvent(row: EventRow): CloudEvent
  /** The NATS subject an event of this type goes to. */
  subjectOf(type: string): string
}

export function eventCatalog(resources: readonly ResourceEvents[]): EventCatalog {
  const types = new Map<string, { events: ResourceEvents; change: string }>()
  const aggregates = new Map<string, ResourceEvents>()
  for (const events of resources) {
    if (aggregates.has(events.aggregate)) throw new Error(`two resources declare events of ${events.aggregate}`)
    aggregates.set(events.aggregate, events)
    for (const [change, { type }] of Object.entries(events.changes)) {
      if (types.has(type)) throw new Error(`two resources declare the event type ${type}`)
      types.set(type, { events, change })
    }
  }
  const byType = (type: string) => types.get(type)
  return {
    resources,
    byType,
    toCloudEvent(row) {
      const events = aggregates.get(row.aggregate_type)
      if (events === undefined) throw new Error(`no resource declares events of ${row.aggregate_type}`)
      return {
        specversion: '1.0',
        id: row.id,
        source: events.source,
        type: row.type,
        subject: row.aggregate_id,
        time: row.occurred_at,
        datacontenttype: 'application/json',
        [events.versionAttribute]: row.aggregate_version,
        ...(row.traceparent === null ? {} : { traceparent: row.traceparent }),
        // Both drivers parse jsonb; a string would mean one of them was set up otherwise.
        data: typeof row.data === 'string' ? (JSON.parse(row.data) as Record<string, unknown>) : row.data,
      }
    },
    subjectOf(type) {
      const found = byType(type)
      if (found === undefined) throw new Error(`no resource declares the event type ${type}`)
      return found.events.subjects[found.change] as string
    },
  }
}
