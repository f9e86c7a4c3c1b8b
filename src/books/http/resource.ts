// The books resource as the app registers it: the REST routes on the core, its part of the document, and the
// sweep of expired idempotency keys.
import type { FastifyInstance } from 'fastify'
import type { Database } from '../../db/database.ts'
import type { Resource } from '../../http/toolkit/resource.ts'
import { createBooks } from '../books.ts'
import { bookService } from '../rpc/service.ts'
import { Book, BookInput, BookReplacement } from '../schemas.ts'
import { booksRoutes, PREFIX } from './routes.ts'

const IDEMPOTENCY_SWEEP_MS = 10 * 60_000

export function booksResource({ database, requireIfMatch }: { database: Database; requireIfMatch: boolean }): Resource {
  const books = createBooks(database)
  return {
    prefix: PREFIX,
    tags: [{ name: 'books', description: 'The book collection' }],
    components: [Book, BookInput, BookReplacement],
    rpc: [bookService(books, { requireIfMatch })],
    routes: async (app: FastifyInstance) => {
      await app.register(booksRoutes, { books, requireIfMatch })
      // Every replica schedules the sweep; the database lets one at a time run it (an advisory lock).
      let sweep: NodeJS.Timeout | undefined
      app.addHook('onReady', async () => {
        sweep = setInterval(() => {
          books.sweepExpiredIdempotencyKeys().then(
            (deleted) => {
              if (deleted !== undefined && deleted > 0) app.log.info({ deleted }, 'expired idempotency keys deleted')
            },
            (error: unknown) => app.log.warn({ err: error }, 'could not delete expired idempotency keys'),
          )
        }, IDEMPOTENCY_SWEEP_MS).unref()
      })
      app.addHook('onClose', async () => clearInterval(sweep))
    },
  }
}
