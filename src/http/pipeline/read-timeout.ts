// SERVER_TIMEOUT_READ for the body: Node's requestTimeout stops at the headers, so a client that trickles
// its body would otherwise hold a connection until the inactivity timeout.
import { PassThrough } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { RPC_CALL } from '../../admission/operation.ts'
import { HttpError } from '../toolkit/problem.ts'

export function registerBodyReadTimeout(app: FastifyInstance, timeoutMs: number): void {
  app.addHook('preParsing', (request, reply, payload, done) => {
    if (request.headers['content-length'] === undefined && request.headers['transfer-encoding'] === undefined) {
      return done(null, payload)
    }
    // An RPC handler reads the request itself, from the socket: a stream in between would take its bytes. Its
    // connection keeps SERVER_TIMEOUT_WRITE, the limit on a connection where no byte moves.
    if (request.routeOptions.config?.operation === RPC_CALL) return done(null, payload)
    const guarded = new PassThrough()
    const timer = setTimeout(() => {
      payload.unpipe(guarded)
      guarded.destroy(
        new HttpError(408, 'the request body was not received within SERVER_TIMEOUT_READ', {
          headers: { connection: 'close' },
        }),
      )
    }, timeoutMs)
    const clear = () => clearTimeout(timer)
    payload.once('end', clear)
    // A request answered before its body was read (415, 413, …) must not leave the timer behind: destroying
    // the stream later, with nobody listening, would be an uncaught error.
    reply.raw.once('close', clear)
    done(null, payload.pipe(guarded))
  })
}
