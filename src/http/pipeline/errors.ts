// The one error path: every failure leaves as problem+json; 5xx details stay in the log.
import { randomUUID } from 'node:crypto'
import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { DATABASE_RETRY_AFTER_SECONDS, isDatabaseUnavailable } from '../../db/errors.ts'
import { fieldErrors } from '../../schema/validation.ts'
import { HttpError, PROBLEM_CONTENT_TYPE, problemBody } from '../toolkit/problem.ts'
import { afterParseError, isReceivingBody } from './connection-limits.ts'
import { requestIdFor } from './request-id.ts'
import { SECURITY_HEADERS } from './security.ts'

const RETRY_AFTER_SECONDS = String(DATABASE_RETRY_AFTER_SECONDS)

// Messages for Fastify's own client errors, worded for API users.
const FASTIFY_CLIENT_ERRORS: Record<string, string> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'Content-Type must be application/json',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'Content-Length does not match the body',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'request body is empty; expected a JSON object',
  FST_ERR_CTP_BODY_TOO_LARGE: 'request body is too large',
  FST_ERR_BAD_URL: 'the URL is malformed',
  FST_ERR_ASYNC_CONSTRAINT: 'the request is malformed',
}

function toHttpError(error: FastifyError | HttpError | Error): HttpError {
  if (error instanceof HttpError) return error
  const fastifyError = error as FastifyError
  if (fastifyError.validation !== undefined) {
    const inPath = fastifyError.validationContext === 'params'
    return new HttpError(inPath ? 400 : 422, inPath ? 'invalid path parameter' : 'request validation failed', {
      errors: fieldErrors(fastifyError.validation as never, fastifyError.validationContext ?? 'request'),
    })
  }
  // The router refuses a path parameter over its length limit before any schema sees it: for a client it is a
  // malformed parameter like any other, so it gets the 400 the routes document rather than the router's 414.
  if (fastifyError.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    return new HttpError(400, 'invalid path parameter: too long', { cause: error })
  }
  if (isDatabaseUnavailable(error)) {
    return new HttpError(503, 'the database is unavailable; try again later', {
      headers: { 'retry-after': RETRY_AFTER_SECONDS },
      cause: error,
    })
  }
  const status = fastifyError.statusCode
  if (status !== undefined && status >= 400 && status < 500) {
    if (error instanceof SyntaxError || fastifyError.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
      return new HttpError(400, 'request body is not valid JSON', { cause: error })
    }
    return new HttpError(status, FASTIFY_CLIENT_ERRORS[fastifyError.code] ?? 'bad request', { cause: error })
  }
  return new HttpError(500, 'internal server error', { cause: error })
}

export function sendProblem(request: FastifyRequest, reply: FastifyReply, problem: HttpError) {
  // A body refused before it was read is not parsed as the next request: after a refusal its framing cannot
  // be trusted (it may be broken, or huge), so the connection ends with this one answer.
  if (isReceivingBody(request.raw)) reply.header('connection', 'close')
  return (
    reply
      .code(problem.statusCode)
      // Set here too: routing errors leave before the onRequest hook that normally sets it.
      .header('x-request-id', request.id)
      .headers(problem.headers)
      .type(PROBLEM_CONTENT_TYPE)
      .send(
        problemBody(problem.statusCode, problem.message, { url: request.url, requestId: request.id }, problem.errors),
      )
  )
}

export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const problem = toHttpError(error)
    if (problem.statusCode === 500) {
      request.log.error({ err: error }, `${problem.statusCode} ${problem.message}`)
    } else if (problem.statusCode > 500) {
      request.log.warn({ err: error }, `${problem.statusCode} ${problem.message}`)
    } else {
      request.log.debug({ err: error }, `${problem.statusCode} ${problem.message}`)
    }
    return sendProblem(request, reply, problem)
  })

  app.setNotFoundHandler((request, reply) =>
    sendProblem(request, reply, new HttpError(404, `no route for ${request.method} ${request.url.split('?', 1)[0]}`)),
  )
}

const CLIENT_ERRORS: Record<string, [status: number, detail: string]> = {
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'the request was not received within SERVER_TIMEOUT_READ'],
  HPE_HEADER_OVERFLOW: [431, 'the request headers are too large'],
  HPE_CHUNK_EXTENSIONS_OVERFLOW: [413, 'the chunk extensions of the request body are too large'],
}

/**
 * Errors Fastify meets while routing (a URL that does not decode, a parameter over the length limit). They leave
 * before any hook runs, so the headers every answer carries are set here.
 */
export function frameworkErrors(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  reply.headers(SECURITY_HEADERS).header('cache-control', 'no-store')
  return sendProblem(request, reply, toHttpError(error))
}

/**
 * A problem answer made outside Fastify, for what Node refuses before a route sees the request: the same body,
 * request id and security headers as every other error, and the connection closes after it.
 */
export function protocolProblem(status: number, detail: string, context: { url: string; requestId: string }) {
  const body = JSON.stringify(problemBody(status, detail, context))
  const headers: Record<string, string> = {
    'content-type': PROBLEM_CONTENT_TYPE,
    'content-length': String(Buffer.byteLength(body)),
    'x-request-id': context.requestId,
    ...SECURITY_HEADERS,
    'cache-control': 'no-store',
    connection: 'close',
  }
  return { status, headers, body }
}

/**
 * Errors Node's HTTP parser meets (timeouts, broken framing, huge headers): answered as problem+json too, then
 * the connection is closed. Requests parsed before the error keep their answers, in order, and the error is
 * answered after them; an error in the body of a request that already has its answer gets no second one.
 */
export function clientErrorHandler(this: FastifyInstance, error: NodeJS.ErrnoException, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return
  const [status, detail] = CLIENT_ERRORS[error.code ?? ''] ?? [400, 'the request is malformed']
  afterParseError(
    socket,
    (response, request) => {
      const requestId = requestIdFor(request)
      this.log.debug({ err: error, request_id: requestId }, `client error ${status}`)
      const problem = protocolProblem(status, detail, { url: request.url ?? '', requestId })
      response.writeHead(status, problem.headers)
      response.end(problem.body)
    },
    () => {
      const requestId = randomUUID()
      this.log.debug({ err: error, request_id: requestId }, `client error ${status}`)
      if (socket.writable) {
        const problem = protocolProblem(status, detail, { url: '', requestId })
        const head = Object.entries(problem.headers).map(([name, value]) => `${name}: ${value}\r\n`)
        socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${head.join('')}\r\n${problem.body}`)
      }
      socket.destroySoon()
    },
  )
}
