// Problem details (RFC 9457) plus the `error` / `errors` members the Go service's clients read.
import { STATUS_CODES } from 'node:http'
import { Type } from 'typebox'

export const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8'

export const Problem = Type.Object(
  {
    type: Type.String({ examples: ['about:blank'] }),
    title: Type.String({ examples: ['Not Found'] }),
    status: Type.Integer({ minimum: 400, maximum: 599 }),
    detail: Type.String({ examples: ['book not found'] }),
    instance: Type.String({ examples: ['/v1/books/019a7c1e-0000-7000-8000-000000000000'] }),
    request_id: Type.String(),
    error: Type.String({ description: 'Same as detail; kept for clients of the Go service' }),
    errors: Type.Optional(
      Type.Record(Type.String(), Type.String(), { description: 'Validation message per field (422)' }),
    ),
  },
  { title: 'Problem', description: 'RFC 9457 problem details', additionalProperties: false },
)

/** An error that leaves the service as a problem response with this status; detail is shown to the client. */
export class HttpError extends Error {
  readonly statusCode: number
  readonly headers: Readonly<Record<string, string>>
  readonly errors: Readonly<Record<string, string>> | undefined

  constructor(
    statusCode: number,
    detail: string,
    options: { headers?: Record<string, string>; errors?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(detail, { cause: options.cause })
    this.name = 'HttpError'
    this.statusCode = statusCode
    this.headers = options.headers ?? {}
    this.errors = options.errors
  }
}

export function problemBody(
  status: number,
  detail: string,
  context: { url: string; requestId: string },
  errors?: Readonly<Record<string, string>>,
) {
  return {
    type: 'about:blank',
    title: STATUS_CODES[status] ?? 'Error',
    status,
    detail,
    instance: context.url.split('?', 1)[0] as string,
    request_id: context.requestId,
    error: detail,
    ...(errors === undefined ? {} : { errors }),
  }
}

/**
 * A problem a resource answers with, declared once: its handlers throw it (`throw bookNotFound()`) and its
 * document shows it (`problemResponses(bookNotFound)`), so the two cannot drift apart.
 */
export interface KnownProblem {
  readonly status: number
  readonly detail: string
  (): HttpError
}

export function knownProblem(status: number, detail: string, headers?: Record<string, string>): KnownProblem {
  const make = () => new HttpError(status, detail, headers === undefined ? {} : { headers })
  return Object.assign(make, { status, detail })
}
