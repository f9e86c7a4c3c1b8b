// The gRPC port's unary path (src/rpc/pipeline/grpc-unary.ts) against Connect's own gRPC handler: the same raw
// HTTP/2 requests, well-formed and not, reach two servers with the same methods and interceptors, one with the
// unary path in front of Connect's adapter (as the service runs) and one with the adapter alone. Every answer must
// be the same: status, content type, message bytes, grpc-status, grpc-message, the error details, the metadata an
// interceptor adds, and what the method saw of its call.
import assert from 'node:assert/strict'
import { type ClientHttp2Session, connect, constants, createServer, type Http2Server } from 'node:http2'
import type { AddressInfo } from 'node:net'
import { after, before, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { create, toBinary } from '@bufbuild/protobuf'
import {
  Code,
  ConnectError,
  createContextKey,
  createContextValues,
  type HandlerContext,
  type Interceptor,
} from '@connectrpc/connect'
import { connectNodeAdapter } from '@connectrpc/connect-node'
import {
  BookSchema,
  BookService,
  type GetBookRequest,
  GetBookRequestSchema,
  ListBooksRequestSchema,
} from '../../../src/gen/books/v1/books_pb.js'
import { ErrorInfoSchema } from '../../../src/gen/google/rpc/error_details_pb.js'
import { routeStreams } from '../../../src/rpc/pipeline/doors.ts'
import { grpcUnaryHandler } from '../../../src/rpc/pipeline/grpc-unary.ts'
import type { RpcResource } from '../../../src/rpc/toolkit/resource.ts'
import { describe } from '../../helpers/describe.ts'

const READ_MAX_BYTES = 256
const CALLER = createContextKey('', { description: 'the client address the server put in the context values' })

interface Seen {
  id: string
  caller: string
  authorization: string | null
  timeoutMs: number | undefined
  aborted: unknown
}

/** What each server's method saw of its calls, by book id. */
type SeenCalls = Map<string, Seen>

function resources(seen: SeenCalls): RpcResource[] {
  const impl = {
    async getBook(request: GetBookRequest, context: HandlerContext) {
      const record: Seen = {
        id: request.id,
        caller: context.values.get(CALLER),
        authorization: context.requestHeader.get('authorization'),
        timeoutMs: context.timeoutMs() === undefined ? undefined : Math.round((context.timeoutMs() as number) / 1000),
        aborted: undefined,
      }
      seen.set(request.id, record)
      if (request.id === 'missing') {
        throw new ConnectError('no such book', Code.NotFound, undefined, [
          { desc: ErrorInfoSchema, value: { reason: 'BOOK_NOT_FOUND', domain: 'books.example.com' } },
        ])
      }
      if (request.id === 'broken') throw new Error('a fault with a secret in it')
      if (request.id === 'slow' || request.id === 'abandoned') {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 2000)
          context.signal.addEventListener('abort', () => {
            clearTimeout(timer)
            record.aborted = context.signal.reason instanceof ConnectError ? context.signal.reason.code : 'other'
            resolve()
          })
        })
        // As the books' methods do: a call whose signal is aborted fails with its reason.
        if (context.signal.aborted) throw context.signal.reason
      }
      context.responseHeader.set('x-book', request.id)
      context.responseTrailer.set('x-book-trailer', request.id)
      return {
        book: create(BookSchema, { id: request.id, title: 'T', author: 'A', publishedDate: '2000-01-01', version: 3 }),
      }
    },
  }
  return [{ service: BookService, impl, access: {} } as unknown as RpcResource]
}

/** An interceptor that adds metadata of its own and refuses a call whose metadata says so, as the pipeline does. */
const stages: Interceptor[] = [
  (next) => async (request) => {
    if (request.header.get('x-refuse') !== null) {
      throw new ConnectError('refused by an interceptor', Code.PermissionDenied)
    }
    const response = await next(request)
    response.header.set('x-interceptor', request.method.name)
    response.trailer.set('x-interceptor-trailer', 'after')
    return response
  },
]

interface Door {
  server: Http2Server
  session: ClientHttp2Session
  seen: SeenCalls
  /** Calls the unary path took (the Connect-only door counts none). */
  taken: number
}

async function openDoor(withUnaryPath: boolean): Promise<Door> {
  const seen: SeenCalls = new Map()
  const routes = resources(seen)
  const adapter = connectNodeAdapter({
    routes: (router) => {
      for (const { service, impl } of routes) router.service(service, impl as never)
    },
    interceptors: stages,
    readMaxBytes: READ_MAX_BYTES,
    contextValues: (request) => createContextValues().set(CALLER, request.socket.remoteAddress ?? ''),
  })
  const unary = grpcUnaryHandler({
    resources: routes,
    interceptors: stages,
    readMaxBytes: READ_MAX_BYTES,
    contextValues: (stream) => createContextValues().set(CALLER, stream.session?.socket?.remoteAddress ?? ''),
  })
  const door: Door = { seen, taken: 0, server: undefined as never, session: undefined as never }
  if (withUnaryPath) {
    // As the gRPC port routes its streams (src/rpc/pipeline/doors.ts).
    door.server = createServer()
    door.server.on(
      'stream',
      routeStreams((stream, headers) => {
        const taken = unary(stream, headers)
        if (taken) door.taken++
        return taken
      }, adapter),
    )
  } else {
    door.server = createServer(adapter)
  }
  await new Promise<void>((resolve) => door.server.listen(0, '127.0.0.1', resolve))
  door.session = connect(`http://127.0.0.1:${(door.server.address() as AddressInfo).port}`)
  return door
}

interface Answer {
  status: number | undefined
  contentType: string | undefined
  /** grpc-status, grpc-message, the details and the x- metadata, from the headers or the trailers. */
  metadata: Record<string, string>
  body: string
}

const COMPARED = /^(grpc-status|grpc-message|grpc-status-details-bin|x-.*)$/

function send(
  door: Door,
  body: Uint8Array,
  headers: Record<string, string> = {},
  options: { path?: string; resetAfterMs?: number } = {},
): Promise<Answer | 'reset'> {
  return new Promise((resolve, reject) => {
    const stream = door.session.request({
      ':method': 'POST',
      ':path': options.path ?? '/books.v1.BookService/GetBook',
      'content-type': 'application/grpc',
      te: 'trailers',
      ...headers,
    })
    const answer: Answer = { status: undefined, contentType: undefined, metadata: {}, body: '' }
    const chunks: Buffer[] = []
    const keep = (from: Record<string, unknown>) => {
      for (const [name, value] of Object.entries(from)) if (COMPARED.test(name)) answer.metadata[name] = String(value)
    }
    stream.on('response', (head) => {
      answer.status = head[':status']
      answer.contentType = head['content-type']
      keep(head)
    })
    stream.on('trailers', keep)
    stream.on('data', (chunk: Buffer) => chunks.push(chunk))
    stream.on('end', () => {
      answer.body = Buffer.concat(chunks).toString('hex')
      resolve(answer)
    })
    stream.on('error', reject)
    stream.end(body)
    if (options.resetAfterMs !== undefined) {
      setTimeout(() => {
        // As gRPC clients cancel a call.
        stream.close(constants.NGHTTP2_CANCEL)
        resolve('reset')
      }, options.resetAfterMs)
    }
  })
}

const frame = (message: Uint8Array, flags = 0) => {
  const envelope = Buffer.alloc(5 + message.byteLength)
  envelope.writeUInt8(flags, 0)
  envelope.writeUInt32BE(message.byteLength, 1)
  envelope.set(message, 5)
  return envelope
}
const getBook = (id: string) => toBinary(GetBookRequestSchema, create(GetBookRequestSchema, { id }))

describe('unary gRPC calls: the gRPC port’s own path against Connect’s handler', () => {
  let fast: Door
  let reference: Door
  before(async () => {
    fast = await openDoor(true)
    reference = await openDoor(false)
  })
  after(async () => {
    for (const door of [fast, reference]) {
      door?.session.close()
      await new Promise((resolve) => door?.server.close(resolve))
    }
  })

  /** Sends the same request to both doors; their answers must be equal. */
  async function same(body: Uint8Array, headers: Record<string, string> = {}, path?: string) {
    const [mine, theirs] = await Promise.all([
      send(fast, body, headers, { path }),
      send(reference, body, headers, { path }),
    ])
    assert.deepEqual(mine, theirs)
    return mine as Answer
  }

  const cases: [string, Uint8Array, Record<string, string>, number][] = [
    ['a well-formed call', frame(getBook('b1')), { authorization: 'Bearer t' }, 0],
    ['application/grpc+proto', frame(getBook('b2')), { 'content-type': 'application/grpc+proto' }, 0],
    ['grpc-timeout of 1 minute', frame(getBook('b3')), { 'grpc-timeout': '1M' }, 0],
    ['a missing book, with error details', frame(getBook('missing')), {}, Code.NotFound],
    ['a fault in the method', frame(getBook('broken')), {}, Code.Internal],
    ['a call an interceptor refuses', frame(getBook('b4')), { 'x-refuse': '1' }, Code.PermissionDenied],
    ['no message', new Uint8Array(0), {}, Code.Unimplemented],
    ['a cut envelope', frame(getBook('b5')).subarray(0, 8), {}, Code.InvalidArgument],
    ['two messages', Buffer.concat([frame(getBook('b6')), frame(getBook('b7'))]), {}, Code.Unimplemented],
    ['a compressed flag without grpc-encoding', frame(getBook('b8'), 1), {}, Code.Internal],
    ['bytes that are no GetBookRequest', frame(Buffer.from([0x0a, 0xff, 0xff])), {}, Code.Internal],
    ['a message over readMaxBytes', frame(getBook('x'.repeat(READ_MAX_BYTES))), {}, Code.ResourceExhausted],
    ['an unreadable grpc-timeout', frame(getBook('b9')), { 'grpc-timeout': 'soon' }, Code.InvalidArgument],
    ['a deadline the method outlives', frame(getBook('slow')), { 'grpc-timeout': '50m' }, Code.DeadlineExceeded],
  ]
  for (const [name, body, headers, code] of cases) {
    it(`when ${name}, then both answer alike, with grpc-status ${code} (${Code[code] ?? 'OK'})`, async () => {
      const before = fast.taken
      const answer = await same(body, headers)
      assert.equal(answer.metadata['grpc-status'], String(code))
      assert.equal(fast.taken, before + 1, 'the unary path took the call')
      assert.ok(!JSON.stringify(answer).includes('secret'), 'no fault detail reaches the client')
    })
  }

  it('when a call succeeds, then the method saw the same caller, metadata and deadline on both doors', async () => {
    await same(frame(getBook('seen')), { authorization: 'Bearer seen', 'grpc-timeout': '30S' })
    const mine = fast.seen.get('seen')
    assert.deepEqual(mine, reference.seen.get('seen'))
    assert.deepEqual(mine, {
      id: 'seen',
      caller: '127.0.0.1',
      authorization: 'Bearer seen',
      timeoutMs: 30,
      aborted: undefined,
    })
  })

  it('when a call is not unary gRPC with protobuf, then Connect answers it, as the reference does', async () => {
    const before = fast.taken
    const json = await same(frame(Buffer.from(JSON.stringify({ id: 'j1' }))), {
      'content-type': 'application/grpc+json',
    })
    assert.equal(json.metadata['grpc-status'], '0')
    const list = await same(
      frame(toBinary(ListBooksRequestSchema, create(ListBooksRequestSchema))),
      {},
      '/books.v1.BookService/Nope',
    )
    assert.equal(list.status, 404)
    const gzip = await same(frame(getBook('g1')), { 'grpc-encoding': 'gzip' })
    assert.equal(gzip.metadata['grpc-status'], '0', 'an uncompressed message under grpc-encoding gzip is valid')
    assert.equal(fast.taken, before, 'the unary path took none of them')
  })

  it('when the client resets the stream mid-call, then the method’s signal says CANCELLED on both doors', async () => {
    for (const door of [fast, reference]) {
      assert.equal(await send(door, frame(getBook('abandoned')), {}, { resetAfterMs: 100 }), 'reset')
    }
    for (
      let i = 0;
      i < 50 && (fast.seen.get('abandoned')?.aborted ?? reference.seen.get('abandoned')?.aborted) === undefined;
      i++
    ) {
      await sleep(20)
    }
    await sleep(50)
    assert.equal(fast.seen.get('abandoned')?.aborted, reference.seen.get('abandoned')?.aborted)
    assert.equal(fast.seen.get('abandoned')?.aborted, Code.Canceled)
  })
})
