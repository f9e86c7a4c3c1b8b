// The books' domain events as CloudEvents 1.0 in structured JSON: the schema that documents them, and the one
// mapping from an outbox row to the envelope, shared by the relay (NATS) and the feed (server-sent events). The
// schema is also what a consumer's tests can validate against; the transports add nothing to the envelope.
import { type Static, Type } from 'typebox'
import { Book } from '../books/schemas.ts'

/** Where the events come from: a URI reference that names this service's books, the same in every replica. */
export const EVENT_SOURCE = '//myapp/books'

export const BOOK_EVENT_TYPES = {
  created: 'dev.myapp.book.created.v1',
  updated: 'dev.myapp.book.updated.v1',
  deleted: 'dev.myapp.book.deleted.v1',
} as const
export type BookChange = keyof typeof BOOK_EVENT_TYPES

const TRACEPARENT_PATTERN = '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$'

/** A deleted book: what a consumer needs to drop it, and the version it was at. */
export const DeletedBook = Type.Object(
  { id: Type.String({ format: 'uuid' }), version: Type.Integer({ minimum: 1 }) },
  { title: 'DeletedBook', additionalProperties: false },
)

export const BookEvent = Type.Object(
  {
    specversion: Type.Literal('1.0'),
    id: Type.String({ format: 'uuid', description: 'UUID v7; the same event keeps its id on every delivery' }),
    source: Type.Literal(EVENT_SOURCE),
    type: Type.Enum(Object.values(BOOK_EVENT_TYPES)),
    subject: Type.String({ format: 'uuid', description: 'The book id' }),
    time: Type.String({ format: 'date-time', description: 'When the change was made (its transaction)' }),
    datacontenttype: Type.Literal('application/json'),
    bookversion: Type.Integer({
      minimum: 1,
      description:
        "Orders one book's events: the version the change left the book at (a delete: one past the last version)",
    }),
    traceparent: Type.Optional(
      Type.String({
        pattern: TRACEPARENT_PATTERN,
        description: 'W3C trace context of the request that made the change (distributed tracing extension)',
      }),
    ),
    data: Type.Union([Book, DeletedBook], {
      description: 'The book as stored (created, updated), or its id and last version (deleted)',
    }),
  },
  { title: 'BookEvent', description: 'A committed change of a book, as a CloudEvent 1.0', additionalProperties: false },
)
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
