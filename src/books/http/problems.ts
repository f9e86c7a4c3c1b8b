// The problems the books routes answer with besides the pipeline's: each thrown by a route and shown in the
// document from this one declaration.
import { HttpError, knownProblem } from '../../http/toolkit/problem.ts'
import { problemDocs } from '../../http/toolkit/responses.ts'

export const bookNotFound = knownProblem(404, 'book not found')
export const keyInFlight = knownProblem(
  409,
  'a request with this Idempotency-Key is still being processed; retry shortly',
  { 'retry-after': '1' },
)
export const preconditionFailed = knownProblem(412, 'the book has changed since the ETag in If-Match; read it again')
export const ifMatchRequired = knownProblem(428, 'this request needs an If-Match header with the ETag of the book')

/** A 422 with a message per field, as schema validation gives it. */
export const invalidFields = (errors: Record<string, string>) =>
  new HttpError(422, 'request validation failed', { errors })

/**
 * A 403 for a write the caller's scope allows but this book does not (another's book, or setting it verified):
 * why, and per field when a field is the reason.
 */
export const writeForbidden = ({ reason, errors }: { reason: string; errors?: Record<string, string> | undefined }) =>
  new HttpError(403, reason, errors === undefined ? undefined : { errors })

/** The documented problem responses of a books operation, with examples from this resource. */
export const problemResponses = problemDocs({
  instance: '/v1/books/019a7c1e-5b3a-7cc1-9a4e-3f1d2b6c8e90',
  fieldErrors: { title: 'This field is required', published_date: 'Must be a valid date' },
})
