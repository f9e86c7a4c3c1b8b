// The books resource, whole: its operations and events, and on the service's database its core, its REST routes,
// its RPC service and its sweep of expired idempotency keys. src/resources.ts lists it; nothing else names it.
import type { Resource } from '../resource.ts'
import { createBooks } from './books.ts'
import { BOOK_EVENTS } from './events.ts'
import { booksRoutes, PREFIX } from './http/routes.ts'
import { BOOK_OPERATIONS } from './operations.ts'
import { bookService } from './rpc/service.ts'
import { Book, BookInput, BookReplacement } from './schemas.ts'

const IDEMPOTENCY_SWEEP_MS = 10 * 60_000

export const booksResource: Resource = {
  name: 'books',
  operations: BOOK_OPERATIONS,
  events: BOOK_EVENTS,
  build({ database, writes }) {
    const books = createBooks(database)
    return {
      http: {
        prefix: PREFIX,
        tags: [{ name: 'books', description: 'The book collection' }],
        components: [Book, BookInput, BookReplacement],
        routes: async (app) => app.register(booksRoutes, { books, requireIfMatch: writes.requireIfMatch }),
      },
      rpc: [bookService(books, writes)],
      jobs: [
        {
          name: 'idempotency-sweep',
          everyMs: IDEMPOTENCY_SWEEP_MS,
          run: (tx) => books.sweepExpiredIdempotencyKeys(tx),
          counts: 'expired idempotency keys deleted',
        },
      ],
    }
  },
}
