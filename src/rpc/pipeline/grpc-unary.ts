// Unary calls of native gRPC without Connect's streaming machinery. Connect's gRPC handler runs every call, unary
// included, through a pipeline of async iterables (split, decompress, parse, invoke, serialize, join), and that
// plumbing, not the method, is most of a call's cost on the gRPC port (README, "Performance"). A unary call is one
// framed message each way: this reads it whole, then invokes the method through Connect's own unary invocation with
// the same interceptors, handler context and serialization, and writes its answer with Connect's trailer status.
// Whatever this path does not take (streaming methods, compression, gRPC with JSON, not POST) goes to Connect's
// adapter, unchanged.
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2'
import type { DescMessage, MessageShape } from '@bufbuild/protobuf'
import {
  Code,
  ConnectError,
  type ContextValues,
  createHandlerContext,
  createServiceImplSpec,
  type Interceptor,
  type MethodImplSpec,
} from '@connectrpc/connect'
import { createMethodSerializationLookup, invokeUnaryImplementation } from '@connectrpc/connect/protocol'
import {
  contentTypeProto,
  grpcStatusOk,
  headerContentType,
  headerGrpcStatus,
  parseTimeout,
  setTrailerStatus,
} from '@connectrpc/connect/protocol-grpc'
import type { RpcResource } from '../toolkit/resource.ts'

type UnarySpec = Extract<MethodImplSpec, { kind: 'unary' }>

interface UnaryMethod {
  spec: UnarySpec
  serialization: ReturnType<typeof createMethodSerializationLookup>
}

export interface GrpcUnaryOptions {
  resources: readonly RpcResource[]
  interceptors: Interceptor[]
  /** The largest request message, as Connect's `readMaxBytes`. */
  readMaxBytes: number
  contextValues(request: Http2ServerRequest): ContextValues
}

/** The envelope's flags byte and 4-byte length, before the message. */
const ENVELOPE_HEADER = 5
/** Ends the handler context of a finished call: a reason of its own spares a DOMException per call. */
const CALL_ENDED = new ConnectError('the call has ended', Code.Canceled)

/** Takes the request when it is a unary gRPC call it serves (and answers it), or returns false for Connect. */
export function grpcUnaryHandler(
  options: GrpcUnaryOptions,
): (request: Http2ServerRequest, response: Http2ServerResponse) => boolean {
  const methods = new Map<string, UnaryMethod>()
  for (const { service, impl } of options.resources) {
    for (const spec of Object.values(createServiceImplSpec(service, impl as never).methods)) {
      if (spec.kind !== 'unary') continue
      methods.set(`/${service.typeName}/${spec.method.name}`, {
        spec,
        serialization: createMethodSerializationLookup(spec.method, undefined, undefined, {
          readMaxBytes: options.readMaxBytes,
          writeMaxBytes: 0xffffffff,
        }),
      })
    }
  }
  return (request, response) => {
    const method = methods.get(request.url)
    if (method === undefined || request.method !== 'POST') return false
    const contentType = request.headers['content-type']
    if (contentType !== 'application/grpc' && contentType !== contentTypeProto) return false
    const encoding = request.headers['grpc-encoding']
    if (encoding !== undefined && encoding !== 'identity') return false
    void call(method, request, response, options)
    return true
  }
}

async function call(
  { spec, serialization }: UnaryMethod,
  request: Http2ServerRequest,
  response: Http2ServerResponse,
  options: GrpcUnaryOptions,
): Promise<void> {
  // The call's signal: aborted when the stream closes before the answer is written (a client's RST_STREAM, or its
  // connection gone). The response cannot tell: on a reset it counts itself finished.
  const cancelled = new AbortController()
  let answered = false
  request.stream.once('close', () => {
    if (!answered) cancelled.abort(new ConnectError('the client cancelled the call', Code.Canceled))
  })
  const timeout = parseTimeout(headerValue(request, 'grpc-timeout'), Number.MAX_SAFE_INTEGER)
  const context = createHandlerContext({
    ...spec,
    service: spec.method.parent,
    requestMethod: 'POST',
    protocolName: 'grpc',
    timeoutMs: timeout.timeoutMs,
    requestSignal: cancelled.signal,
    requestHeader: requestHeaders(request),
    url: `http://${request.authority}${request.url}`,
    responseHeader: { [headerContentType]: contentTypeProto },
    responseTrailer: { [headerGrpcStatus]: grpcStatusOk },
    contextValues: options.contextValues(request),
  })
  let answer: Uint8Array | undefined
  try {
    if (timeout.error !== undefined) throw timeout.error
    const input = decodeEnvelope(await readBody(request, options.readMaxBytes), serialization.getI(true).parse)
    const output = await invokeUnaryImplementation(spec, context, input as never, options.interceptors)
    answer = encodeEnvelope(serialization.getO(true).serialize(output as MessageShape<DescMessage>))
  } catch (error) {
    setTrailerStatus(
      context.responseTrailer,
      error instanceof ConnectError
        ? error
        : new ConnectError('internal error', Code.Internal, undefined, undefined, error),
    )
  } finally {
    context.abort(CALL_ENDED)
  }
  answered = true
  if (response.destroyed || response.stream.closed) return
  response.writeHead(200, toNodeHeaders(context.responseHeader))
  if (answer !== undefined) response.write(answer)
  response.addTrailers(toNodeHeaders(context.responseTrailer))
  response.end()
}

/** The one message of a unary call, refused as Connect's gRPC handler refuses it. */
function decodeEnvelope(body: Buffer, parse: (data: Uint8Array) => unknown): unknown {
  if (body.byteLength === 0) {
    throw new ConnectError('protocol error: missing input message for unary method', Code.Unimplemented)
  }
  if (body.byteLength < ENVELOPE_HEADER)
    throw new ConnectError('protocol error: incomplete envelope', Code.InvalidArgument)
  const flags = body.readUInt8(0)
  const length = body.readUInt32BE(1)
  if ((flags & 0b1) === 0b1) {
    throw new ConnectError('received compressed envelope, but do not know how to decompress', Code.Internal)
  }
  const end = ENVELOPE_HEADER + length
  if (body.byteLength < end) throw new ConnectError('protocol error: incomplete envelope', Code.InvalidArgument)
  if (body.byteLength > end) throw extraMessage()
  return parse(body.subarray(ENVELOPE_HEADER, end))
}

function encodeEnvelope(message: Uint8Array): Buffer {
  const envelope = Buffer.allocUnsafe(ENVELOPE_HEADER + message.byteLength)
  envelope.writeUInt8(0, 0)
  envelope.writeUInt32BE(message.byteLength, 1)
  envelope.set(message, ENVELOPE_HEADER)
  return envelope
}

/**
 * The request body. Past the envelope's header, a message longer than readMaxBytes is refused as Connect refuses
 * it, before it is read; a body longer than one such message holds more than one, and its rest is not kept.
 */
function readBody(request: Http2ServerRequest, readMaxBytes: number): Promise<Buffer> {
  const limit = 2 * ENVELOPE_HEADER + readMaxBytes
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    let checked = false
    const refuse = (error: ConnectError) => {
      request.off('data', onData)
      request.resume()
      reject(error)
    }
    const onData = (chunk: Buffer) => {
      size += chunk.byteLength
      if (size > limit) return refuse(extraMessage())
      chunks.push(chunk)
      if (!checked && size >= ENVELOPE_HEADER) {
        checked = true
        const declared = (chunks.length === 1 ? chunk : Buffer.concat(chunks, size)).readUInt32BE(1)
        if (declared > readMaxBytes) {
          refuse(
            new ConnectError(
              `message size ${declared} is larger than configured readMaxBytes ${readMaxBytes}`,
              Code.ResourceExhausted,
            ),
          )
        }
      }
    }
    let ended = false
    const gone = () => {
      if (!ended) reject(new ConnectError('the client cancelled the call', Code.Canceled))
    }
    request.on('data', onData)
    request.once('end', () => {
      ended = true
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size))
    })
    // A stream reset before its end ends nothing: without these the call would wait for ever.
    request.once('error', gone)
    request.once('close', gone)
  })
}

const extraMessage = () =>
  new ConnectError('protocol error: received extra input message for unary method', Code.Unimplemented)

function headerValue(request: Http2ServerRequest, name: string): string | null {
  const value = request.headers[name]
  return typeof value === 'string' ? value : null
}

/** The metadata as the interceptors read it (the handler context makes its Headers of it); HTTP/2's pseudo-headers
 * are not metadata. */
function requestHeaders(request: Http2ServerRequest): [string, string][] {
  const headers: [string, string][] = []
  for (const [name, value] of Object.entries(request.headers)) {
    if (name.startsWith(':') || value === undefined) continue
    if (Array.isArray(value)) for (const item of value) headers.push([name, item])
    else headers.push([name, value])
  }
  return headers
}

function toNodeHeaders(headers: Headers): Record<string, string> {
  const object: Record<string, string> = {}
  headers.forEach((value, name) => {
    object[name] = value
  })
  return object
}
