// The doors the RPC services are served through: Connect and gRPC-Web on the HTTP port (through Fastify), and
// native gRPC, HTTP/2 cleartext, on GRPC_PORT with reflection and health. Both run the same interceptors.
import {
  createServer,
  type Http2Server,
  Http2ServerRequest,
  Http2ServerResponse,
  type Http2Session,
  type IncomingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2'
import type { AddressInfo } from 'node:net'
import { type ConnectRouter, createContextValues } from '@connectrpc/connect'
import { fastifyConnectPlugin } from '@connectrpc/connect-fastify'
import { connectNodeAdapter } from '@connectrpc/connect-node'
import type { FastifyInstance } from 'fastify'
import { clientAddress, type Trust } from '../../admission/client-address.ts'
import type { Operation } from '../../admission/operation.ts'
import { CLIENT_ADDRESS } from '../toolkit/calls.ts'
import type { RpcResource } from '../toolkit/resource.ts'
import { grpcUnaryHandler } from './grpc-unary.ts'
import { interceptors, type RpcPipeline } from './interceptors.ts'

/** Every method's declared operation, by procedure path; a method without one stops the app from starting. */
export function declaredOperations(resources: readonly RpcResource[]): Map<string, Operation> {
  const operations = new Map<string, Operation>()
  for (const { service, operations: declared } of resources) {
    for (const method of service.methods) {
      const operation = declared[method.localName]
      if (operation === undefined) {
        throw new Error(`${service.typeName}.${method.name} serves no declared operation (src/admission/operation.ts)`)
      }
      operations.set(`/${service.typeName}/${method.name}`, operation)
    }
  }
  return operations
}

const routesOf = (resources: readonly RpcResource[]) => (router: ConnectRouter) => {
  for (const { service, impl } of resources) router.service(service, impl as never)
}

/** Connect (JSON and binary) and gRPC-Web on the HTTP port, as Fastify routes under /<package>.<Service>/. */
export async function registerConnect(
  app: FastifyInstance,
  resources: readonly RpcResource[],
  pipeline: RpcPipeline,
): Promise<void> {
  await app.register(async (scope) => {
    // The plugin adds its routes bare: they stay out of the OpenAPI document (they are the .proto's), and their
    // one log line is the interceptor's, which knows the RPC method and status code.
    scope.addHook('onRoute', (route) => {
      route.schema = { ...route.schema, hide: true }
    })
    await scope.register(fastifyConnectPlugin, {
      routes: routesOf(resources),
      interceptors: interceptors(pipeline),
      // Native gRPC needs HTTP/2 trailers: it has its own port.
      grpc: false,
      contextValues: (request) => createContextValues().set(CLIENT_ADDRESS, request.ip),
    })
  })
}

export interface GrpcServer {
  port: number
  close(): Promise<void>
}

/** Native gRPC (and Connect and gRPC-Web, which cost nothing more) on a listener of its own. */
export async function startGrpcServer(options: {
  host: string
  port: number
  resources: readonly RpcResource[]
  pipeline: RpcPipeline
  /** The largest request message in bytes: SERVER_BODY_LIMIT, as on the HTTP port. */
  readMaxBytes: number
  /** SERVER_TRUST_PROXY: whose x-forwarded-for metadata names the client, as on the HTTP port. */
  trust: Trust
}): Promise<GrpcServer> {
  // A client's address, read once per connection (on 'session', below): a stream's session reaches its socket
  // through a proxy.
  const addresses = new WeakMap<Http2Session, string>()
  const addressOf = (session: Http2Session | undefined) => (session === undefined ? '' : (addresses.get(session) ?? ''))
  const stages = interceptors(options.pipeline)
  const unary = grpcUnaryHandler({
    resources: options.resources,
    interceptors: stages,
    readMaxBytes: options.readMaxBytes,
    contextValues: (stream, headers) =>
      createContextValues().set(
        CLIENT_ADDRESS,
        clientAddress(addressOf(stream.session), headers['x-forwarded-for'], options.trust),
      ),
  })
  const connect = connectNodeAdapter({
    routes: routesOf(options.resources),
    interceptors: stages,
    readMaxBytes: options.readMaxBytes,
    contextValues: (request) =>
      createContextValues().set(
        CLIENT_ADDRESS,
        clientAddress(request.socket.remoteAddress ?? '', request.headers['x-forwarded-for'], options.trust),
      ),
  })
  // No 'request' listener: Node would then wrap every stream in a request and a response object, the unary path's
  // included.
  const server: Http2Server = createServer()
  server.on('stream', routeStreams(unary, connect))
  const sessions = new Set<ServerHttp2Session>()
  server.on('session', (session) => {
    addresses.set(session, session.socket.remoteAddress ?? '')
    sessions.add(session)
    session.once('close', () => sessions.delete(session))
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port, options.host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        // GOAWAY to every client: streams in flight finish, no new ones start, idle sessions go at once.
        for (const session of sessions) session.close()
      }),
  }
}

/**
 * Each stream to the unary path, or else to Connect's adapter as Node's compatibility layer hands a stream to a
 * 'request' listener (node:http2's onServerStream): a request and a response object, CONNECT refused, `expect:
 * 100-continue` answered.
 */
export function routeStreams(
  unary: (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => boolean,
  handle: (request: Http2ServerRequest, response: Http2ServerResponse) => void,
): (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, rawHeaders: string[]) => void {
  return (stream, headers, _flags, rawHeaders) => {
    if (unary(stream, headers)) return
    const request = new Http2ServerRequest(stream, headers, {}, rawHeaders)
    const response = new Http2ServerResponse(stream)
    if (headers[':method'] === 'CONNECT') {
      response.statusCode = 405
      response.end()
      return
    }
    if (headers.expect !== undefined) {
      if (headers.expect !== '100-continue') {
        response.statusCode = 417
        response.end()
        return
      }
      response.writeContinue()
    }
    handle(request, response)
  }
}
