// Answers Node would give on its own before any route sees the request (a missing Host, an Expect it cannot meet),
// given as the same problem answers as every other error. A CONNECT request is served like any other method.
import { type IncomingMessage, type RequestListener, type Server, ServerResponse } from 'node:http'
import { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { Logger } from '../../logger.ts'
import { protocolProblem } from './errors.ts'
import { requestIdFor } from './request-id.ts'

function answer(logger: Logger, request: IncomingMessage, response: ServerResponse, status: number, detail: string) {
  const requestId = requestIdFor(request)
  logger.debug({ request_id: requestId, method: request.method, url: request.url }, `protocol error ${status}`)
  const problem = protocolProblem(status, detail, { url: request.url ?? '', requestId })
  response.writeHead(status, problem.headers)
  response.end(problem.body)
}

/** Answers an HTTP/1.1 request without Host (RFC 9112 §3.2: 400) and returns true; false for any other. */
export function refuseWithoutHost(logger: Logger, request: IncomingMessage, response: ServerResponse): boolean {
  if (request.httpVersion !== '1.1' || request.headers.host !== undefined) return false
  answer(logger, request, response, 400, 'an HTTP/1.1 request needs a Host header')
  return true
}

/**
 * Node's own answers replaced on `server`; it must be created with `requireHostHeader: false`, and `serve` must
 * call refuseWithoutHost. A CONNECT is handed to `serve` with a response on its socket, which closes after it.
 */
export function answerProtocolErrors(server: Server, logger: Logger, serve: RequestListener): void {
  server.on('checkExpectation', (request: IncomingMessage, response: ServerResponse) =>
    answer(logger, request, response, 417, 'the only expectation this service meets is Expect: 100-continue'),
  )
  server.on('connect', (request: IncomingMessage, socket: Duplex) => {
    // A CONNECT whose body has not arrived comes with a stand-in stream; there is no request to answer yet.
    if (!(socket instanceof Socket)) {
      socket.destroy()
      return
    }
    const response = new ServerResponse(request)
    response.shouldKeepAlive = false
    response.assignSocket(socket)
    response.once('finish', () => {
      response.detachSocket(socket)
      socket.destroySoon()
    })
    serve(request, response)
  })
}
