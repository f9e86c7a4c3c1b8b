// The books' events: what each committed create, replace and delete publishes (to NATS as books.created, …) and
// the feed streams, declared once. The writes record them in the outbox (repository.ts).
import { Type } from 'typebox'
import { type CloudEvent, declareEvents } from '../events/cloudevents.ts'
import { BOOK_OPERATIONS } from './operations.ts'
import { Book } from './schemas.ts'

/** A deleted book: what a consumer needs to drop it, and the version it was at. */
export const DeletedBook = Type.Object(
  { id: Type.String({ format: 'uuid' }), version: Type.Integer({ minimum: 1 }) },
  { title: 'DeletedBook', additionalProperties: false },
)

export const BOOK_EVENTS = declareEvents({
  aggregate: 'book',
  source: '//myapp/books',
  versionAttribute: 'bookversion',
  stream: { name: 'BOOKS', subjectPrefix: 'books' },
  // Whoever may list the books may follow their changes.
  read: BOOK_OPERATIONS.listBooks.access,
  changes: {
    created: {
      type: 'dev.myapp.book.created.v1',
      data: Book,
      title: 'BookCreatedEvent',
      description: 'A book was created: `data` is the book as stored, as the create answered it',
    },
    updated: {
      type: 'dev.myapp.book.updated.v1',
      data: Book,
      title: 'BookUpdatedEvent',
      description: 'A book was replaced or changed: `data` is the book as stored after the change',
    },
    deleted: {
      type: 'dev.myapp.book.deleted.v1',
      data: DeletedBook,
      title: 'BookDeletedEvent',
      description: 'A book was deleted: `data` is its id and the version it was at',
    },
  },
})

/** A book event as a consumer receives it. */
export type BookEvent = CloudEvent & { bookversion: number }
