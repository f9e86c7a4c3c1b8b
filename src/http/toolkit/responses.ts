// Response declarations shared by the routes: the body schema per status and the headers that come with it.
// Fastify serialises with them and @fastify/swagger turns them into the OpenAPI document.
import { STATUS_CODES } from 'node:http'
import type { TSchema } from 'typebox'
import { type KnownProblem, Problem } from './problem.ts'

type HeaderSchemas = Record<string, { type: 'string' | 'integer'; description: string; required?: boolean }>

const REQUEST_ID = {
  'x-request-id': {
    type: 'string',
    required: true,
    description: 'The id of this request: the one sent when well-formed, otherwise generated',
  },
} satisfies HeaderSchemas

/** A JSON response with its description and headers. */
export function jsonResponse(schema: TSchema, description: string, headers: HeaderSchemas = {}) {
  return { description, headers: { ...REQUEST_ID, ...headers }, content: { 'application/json': { schema } } }
}

/** A response with no body (204, 304). */
export function emptyResponse(description: string, headers: HeaderSchemas = {}) {
  return { type: 'null' as const, description, headers: { ...REQUEST_ID, ...headers } }
}

// The pipeline's own answers, the same for every route. A resource names its own (404, 412, …) with knownProblem.
const PIPELINE_DETAILS: Record<number, string> = {
  400: 'invalid path parameter',
  401: 'a bearer token is required',
  405: 'method not allowed; use GET, HEAD, POST',
  408: 'the request body was not received within SERVER_TIMEOUT_READ',
  413: 'request body is too large',
  415: 'Content-Type must be application/json',
  429: 'rate limit of 600 requests per 1 minute exceeded',
  431: 'the request headers are too large',
  422: 'request validation failed',
  500: 'internal server error',
  503: 'the database is unavailable; try again later',
}

const WWW_AUTHENTICATE = {
  'www-authenticate': { type: 'string', required: true, description: 'Bearer challenge (RFC 6750)' },
} as const

const PROBLEM_HEADERS: Record<number, HeaderSchemas> = {
  401: WWW_AUTHENTICATE,
  // Refused for the token's scope, the answer names the missing scope; refused by the record itself (another
  // caller's book), it has no challenge.
  403: {
    'www-authenticate': {
      type: 'string',
      description: 'Bearer challenge naming the missing scope (RFC 6750), when the scope is the reason',
    },
  },
  429: {
    'retry-after': { type: 'integer', required: true, description: 'Seconds until the window resets' },
    'ratelimit-limit': { type: 'integer', required: true, description: 'Requests allowed per window' },
    'ratelimit-remaining': { type: 'integer', required: true, description: 'Requests left in this window' },
    'ratelimit-reset': { type: 'integer', required: true, description: 'Seconds until the window resets' },
  },
  409: { 'retry-after': { type: 'integer', required: true, description: 'Seconds to wait before retrying' } },
  503: { 'retry-after': { type: 'integer', required: true, description: 'Seconds to wait before trying again' } },
}

/** The examples a resource's problem answers show: a path of its own, and field messages for a 422. */
export interface ProblemExamples {
  instance: string
  fieldErrors?: Readonly<Record<string, string>>
}

/**
 * Problem responses (application/problem+json) for these statuses, each with an example: a known problem of the
 * resource shows its own detail, a bare status the pipeline's. Made per resource, with its examples.
 */
export function problemDocs(examples: ProblemExamples) {
  return (...problems: (number | KnownProblem)[]) =>
    Object.fromEntries(
      problems.map((problem) => {
        const status = typeof problem === 'number' ? problem : problem.status
        const detail =
          typeof problem === 'number'
            ? (PIPELINE_DETAILS[status] ?? (STATUS_CODES[status] as string).toLowerCase())
            : problem.detail
        return [status, problemResponse(status, detail, examples)]
      }),
    )
}

/** One problem response with its example. */
export function problemResponse(status: number, detail: string, examples: ProblemExamples) {
  const example = {
    type: 'about:blank',
    title: STATUS_CODES[status],
    status,
    detail,
    instance: examples.instance,
    request_id: 'b1946ac9-2f4e-4a7b-9c3d-5e6f7a8b9c0d',
    error: detail,
    ...(status === 422 && examples.fieldErrors !== undefined ? { errors: examples.fieldErrors } : {}),
  }
  return {
    description: `${STATUS_CODES[status]}: ${detail}`,
    headers: { ...REQUEST_ID, ...PROBLEM_HEADERS[status] },
    content: { 'application/problem+json': { schema: Problem, example } },
  }
}
