// The one error path: every failure leaves as problem+json; 5xx details stay in the log.
import { randomUUID } from 'node:crypto'
import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { isDatabaseUnavailable } from '../db/errors.ts'
import { HttpError, PROBLEM_CONTENT_TYPE, problemBody } from './problem.ts'
import { fieldErrors } from './validation.ts'

const RETRY_AFTER_SECONDS = '5'

// Messages for Fastify's own client errors, worded for API users.
const FASTIFY_CLIENT_ERRORS: Record<string, string> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'Content-Type must be application/json',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'Content-Length does not match the body',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'request body is empty; expected a JSON object',
  FST_ERR_CTP_BODY_TOO_LARGE: 'request body is too large',
  FST_ERR_BAD_URL: 'the URL is malformed',
  FST_ERR_ASYNC_CONSTRAINT: 'the request is malformed',
  FST_ERR_MAX_PARAM_LENGTH: 'a path parameter is too long',
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
}

/** Errors Fastify meets while routing (a URL that does not decode, a parameter over the length limit). */
export function frameworkErrors(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  return sendProblem(request, reply, toHttpError(error))
}

/**
 * Errors Node's HTTP parser meets before there is a request (timeouts, broken framing, huge headers):
 * answered as problem+json too, then the connection is closed.
 */
export function clientErrorHandler(this: FastifyInstance, error: NodeJS.ErrnoException, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return
  const [status, detail] = CLIENT_ERRORS[error.code ?? ''] ?? [400, 'the request is malformed']
  const requestId = randomUUID()
  this.log.debug({ err: error, request_id: requestId }, `client error ${status}`)
  if (socket.writable) {
    const body = JSON.stringify(problemBody(status, detail, { url: '', requestId }))
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: ${PROBLEM_CONTENT_TYPE}\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nX-Request-ID: ${requestId}\r\nConnection: close\r\n\r\n${body}`,
    )
  }
  socket.destroy()
}
