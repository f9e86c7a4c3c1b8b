// Unary calls of native gRPC on HTTP/2's stream API, without Connect's streaming machinery or Node's HTTP/1-style
// compatibility layer. Connect's gRPC handler runs every call, unary included, through a pipeline of async
// iterables (split, decompress, parse, invoke, serialize, join) over a request and response object per stream, and
// that plumbing, not the method, is most of a call's cost on the gRPC port (README, "Performance"). A unary call is
// one framed message each way: this reads it whole from the stream, then invokes the method through Connect's own
// unary invocation with the same interceptors and serialization, in a handler context with the fields that
// invocation reads, and writes its answer with Connect's trailer status. Whatever this path does not take
// (streaming methods, compression, gRPC with JSON, not POST) goes to Connect's adapter, unchanged.
import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerHttp2Stream } from 'node:http2'
import type { DescMessage, MessageShape } from '@bufbuild/protobuf'
import {
  Code,
  ConnectError,
  type ContextValues,
  createServiceImplSpec,
  type HandlerContext,
  type Interceptor,
  type MethodImplSpec,
} from '@connectrpc/connect'
import { createMethodSerializationLookup, invokeUnaryImplementation } from '@connectrpc/connect/protocol'
import { contentTypeProto, grpcStatusOk, parseTimeout, setTrailerStatus } from '@connectrpc/connect/protocol-grpc'
import type { RpcResource } from '../toolkit/resource.ts'
import { Metadata } from './metadata.ts'

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
  contextValues(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): ContextValues
}

/** The envelope's flags byte and 4-byte length, before the message. */
const ENVELOPE_HEADER = 5

/** Takes the stream when it is a unary gRPC call it serves (and answers it), or returns false for Connect. */
export function grpcUnaryHandler(
  options: GrpcUnaryOptions,
): (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => boolean {
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
  return (stream, headers) => {
    const method = methods.get(headers[':path'] ?? '')
    if (method === undefined || headers[':method'] !== 'POST') return false
    const contentType = headers['content-type']
    if (contentType !== 'application/grpc' && contentType !== contentTypeProto) return false
    const encoding = headers['grpc-encoding']
    if (encoding !== undefined && encoding !== 'identity') return false
    void call(method, stream, headers, options)
    return true
  }
}

async function call(
  { spec, serialization }: UnaryMethod,
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  options: GrpcUnaryOptions,
): Promise<void> {
  // The call's signal: aborted when the stream closes before the answer is written (a client's RST_STREAM, or its
  // connection gone), or when its deadline passes, with the reasons Connect gives.
  const controller = new AbortController()
  let answered = false
  stream.once('close', () => {
    if (!answered) controller.abort(new ConnectError('the client cancelled the call', Code.Canceled))
  })
  const timeout = parseTimeout(headerValue(headers, 'grpc-timeout'), Number.MAX_SAFE_INTEGER)
  const deadline = timeout.timeoutMs === undefined ? undefined : Date.now() + timeout.timeoutMs
  const expire = () => controller.abort(new ConnectError('the operation timed out', Code.DeadlineExceeded))
  // As Connect's deadline signal: a deadline already passed ends the call at once, not a timer tick later.
  if (timeout.timeoutMs !== undefined && timeout.timeoutMs <= 0) expire()
  const timer =
    timeout.timeoutMs === undefined || controller.signal.aborted ? undefined : setTimeout(expire, timeout.timeoutMs)
  // What createHandlerContext makes, without the Headers copies and the linked signals it sets up for a streaming
  // call: Connect's unary invocation reads only these fields.
  const context: HandlerContext = {
    method: spec.method,
    service: spec.method.parent,
    requestMethod: 'POST',
    protocolName: 'grpc',
    url: `http://${headers[':authority']}${headers[':path']}`,
    signal: controller.signal,
    timeoutMs: () => (deadline === undefined ? undefined : deadline - Date.now()),
    requestHeader: new Metadata(headers),
    responseHeader: new Headers(),
    responseTrailer: new Headers(),
    values: options.contextValues(stream, headers),
  }
  let answer: Uint8Array | undefined
  try {
    if (timeout.error !== undefined) throw timeout.error
    const input = decodeEnvelope(await readBody(stream, options.readMaxBytes), serialization.getI(true).parse)
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
    clearTimeout(timer)
  }
  answered = true
  if (stream.destroyed || stream.closed) return
  // Lower-case names, as Headers gives them: Connect's constants are capitalised, and both would be sent.
  const trailers = withHeaders({ 'grpc-status': grpcStatusOk }, context.responseTrailer)
  stream.respond(withHeaders({ ':status': 200, 'content-type': contentTypeProto }, context.responseHeader), {
    waitForTrailers: true,
  })
  stream.once('wantTrailers', () => stream.sendTrailers(trailers))
  stream.end(answer)
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
function readBody(stream: ServerHttp2Stream, readMaxBytes: number): Promise<Buffer> {
  const limit = 2 * ENVELOPE_HEADER + readMaxBytes
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    let checked = false
    const refuse = (error: ConnectError) => {
      stream.off('data', onData)
      stream.resume()
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
    stream.on('data', onData)
    stream.once('end', () => {
      ended = true
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size))
    })
    // A stream reset before its end ends nothing: without these the call would wait for ever.
    stream.once('error', gone)
    stream.once('close', gone)
  })
}

const extraMessage = () =>
  new ConnectError('protocol error: received extra input message for unary method', Code.Unimplemented)

function headerValue(headers: IncomingHttpHeaders, name: string): string | null {
  const value = headers[name]
  return typeof value === 'string' ? value : null
}

/** The headers an interceptor or the method set, over the ones every answer starts with. */
function withHeaders(base: OutgoingHttpHeaders, headers: Headers): OutgoingHttpHeaders {
  headers.forEach((value, name) => {
    base[name] = value
  })
  return base
}
