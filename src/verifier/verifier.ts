// What the verifier does with one book event, wherever it came from (JetStream or the books service's feed): a
// pending book with an image_url whose bytes are an image is set verified, at the version the event names. The
// expected version makes the handling idempotent: a redelivered or duplicate event finds the book moved on and
// changes nothing.
import type { BooksClient, StatusChange } from './books-client.ts'
import type { ImageChecker, ImageVerdict } from './image-check.ts'

/** A book event as the feed and the stream carry it (CloudEvents, structured JSON). */
export interface BookEventEnvelope {
  id: string
  type: string
  bookversion?: number
  data?: { id?: string; status?: string; image_url?: string | null }
}

const CREATED = 'dev.myapp.book.created.v1'
const UPDATED = 'dev.myapp.book.updated.v1'

/** How one event ended: each counted by outcome, the skips by reason. */
export type Verification =
  | { outcome: 'verified'; kind: string }
  | { outcome: 'skipped'; reason: 'not_a_change' | 'not_pending' | 'no_image_url' }
  /** The image check said no: the book stays pending. */
  | { outcome: 'rejected'; verdict: Exclude<ImageVerdict, { outcome: 'image' }> }
  /** The book changed or went away since the event: its newer event decides. */
  | { outcome: 'superseded'; change: Exclude<StatusChange, 'changed'> }

export function createVerifier({ images, books }: { images: ImageChecker; books: BooksClient }) {
  return {
    /** Handles one event; throws only when the books service could not be reached (the event is to be retried). */
    async handle(event: BookEventEnvelope): Promise<Verification> {
      if (event.type !== CREATED && event.type !== UPDATED) return { outcome: 'skipped', reason: 'not_a_change' }
      const book = event.data
      if (book?.id === undefined || event.bookversion === undefined)
        return { outcome: 'skipped', reason: 'not_a_change' }
      if (book.status !== 'pending') return { outcome: 'skipped', reason: 'not_pending' }
      if (typeof book.image_url !== 'string') return { outcome: 'skipped', reason: 'no_image_url' }
      const verdict = await images.check(book.image_url)
      if (verdict.outcome !== 'image') return { outcome: 'rejected', verdict }
      const change = await books.setStatus(book.id, 'verified', event.bookversion)
      return change === 'changed' ? { outcome: 'verified', kind: verdict.kind } : { outcome: 'superseded', change }
    },
  }
}
export type Verifier = ReturnType<typeof createVerifier>
