// The books' domain events as CloudEvents 1.0 in structured JSON: the schemas that document them (one per event
// type, which the AsyncAPI document publishes, and their union), and the one mapping from an outbox row to the
// envelope, shared by the relay (NATS) and the feed (server-sent events). The schemas are also what a consumer's
// tests can validate against; the transports add nothing to the envelope.
import { type Static, type TSchema, Type } from 'typebox'
import { Book } from '../books/schemas.ts'

/** Where the events come from: a URI reference that names this service's books, the same in every replica. */
export const EVENT_SOURCE = '//myapp/books'

export const BOOK_EVENT_TYPES = {
  created: 'dev.myapp.book.created.v1',
  updated: 'dev.myapp.book.updated.v1',
  deleted: 'dev.myapp.book.deleted.v1',
} as const
export type BookChange = keyof typeof BOOK_EVENT_TYPES

/** The media type of an event in structured mode: the whole CloudEvent, attributes and data, as one JSON object. */
export const CLOUDEVENTS_JSON = 'application/cloudevents+json'

export const TRACEPARENT_PATTERN = '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$'

/** W3C trace context of the request that made the change. */
export const Traceparent = Type.String({
  pattern: TRACEPARENT_PATTERN,
  description: 'W3C trace context of the request that made the change (distributed tracing extension)',
})

/** A deleted book: what a consumer needs to drop it, and the version it was at. */
export const DeletedBook = Type.Object(
  { id: Type.String({ format: 'uuid' }), version: Type.Integer({ minimum: 1 }) },
  { title: 'DeletedBook', additionalProperties: false },
)

/** The envelope of one event type: the attributes every book event has, its `type` fixed, its `data` given. */
function bookEvent<EventType extends string, Data extends TSchema>(
  type: EventType,
  data: Data,
  { title, description }: { title: string; description: string },
) {
  return Type.Object(
    {
      specversion: Type.Literal('1.0'),
      id: Type.String({ format: 'uuid', description: 'UUID v7; the same event keeps its id on every delivery' }),
      source: Type.Literal(EVENT_SOURCE),
      type: Type.Literal(type),
      subject: Type.String({ format: 'uuid', description: 'The book id' }),
      time: Type.String({ format: 'date-time', description: 'When the change was made (its transaction)' }),
      datacontenttype: Type.Literal('application/json'),
      bookversion: Type.Integer({
        minimum: 1,
        description:
          "Orders one book's events: the version the change left the book at (a delete: one past the last version)",
      }),
      traceparent: Type.Optional(Traceparent),
      data,
    },
    { title, description, additionalProperties: false },
  )
}

/** Each event type's envelope, by the change it reports. */
export const BOOK_EVENTS = {
  created: bookEvent(BOOK_EVENT_TYPES.created, Book, {
    title: 'BookCreatedEvent',
    description: 'A book was created: `data` is the book as stored, as the create answered it',
  }),
  updated: bookEvent(BOOK_EVENT_TYPES.updated, Book, {
    title: 'BookUpdatedEvent',
    description: 'A book was replaced or changed: `data` is the book as stored after the change',
  }),
  deleted: bookEvent(BOOK_EVENT_TYPES.deleted, DeletedBook, {
    title: 'BookDeletedEvent',
    description: 'A book was deleted: `data` is its id and the version it was at',
  }),
} as const satisfies Record<BookChange, TSchema>

export const BookEvent = Type.Union([BOOK_EVENTS.created, BOOK_EVENTS.updated, BOOK_EVENTS.deleted], {
  title: 'BookEvent',
  description: 'A committed change of a book, as a CloudEvent 1.0',
})
export type BookEvent = Omit<Static<typeof BookEvent>, 'data'> & { data: Record<string, unknown> }

/** An outbox row as the drivers return it (src/events/outbox.ts selects these columns). */
export interface EventRow {
  position: string
  xid: string
  id: string
  type: string
  book_id: string
  book_version: number
  occurred_at: Date
  traceparent: string | null
  data: Record<string, unknown> | string
}

export function toCloudEvent(row: EventRow): BookEvent {
  return {
    specversion: '1.0',
    id: row.id,
    source: EVENT_SOURCE,
    type: row.type as BookEvent['type'],
    subject: row.book_id,
    time: row.occurred_at.toISOString(),
    datacontenttype: 'application/json',
    bookversion: row.book_version,
    ...(row.traceparent === null ? {} : { traceparent: row.traceparent }),
    // Both drivers parse jsonb; a string would mean one of them was set up otherwise.
    data: typeof row.data === 'string' ? (JSON.parse(row.data) as Record<string, unknown>) : row.data,
  }
}

/** The NATS subject of an event type: books.created, books.updated, books.deleted. */
export function subjectOf(type: string): string {
  const change = (Object.keys(BOOK_EVENT_TYPES) as BookChange[]).find((name) => BOOK_EVENT_TYPES[name] === type)
  if (change === undefined) throw new Error(`not a book event type: ${type}`)
  return `books.${change}`
}
