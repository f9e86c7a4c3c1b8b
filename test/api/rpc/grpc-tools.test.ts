// The gRPC port through implementations other than the server's own: @grpc/grpc-js with serializers from the
// generated schemas (no proto-loader), for the books and for grpc.health.v1; and `buf curl`, which learns the
// schema from the server's reflection alone.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { after, before, it } from 'node:test'
import { promisify } from 'node:util'
import {
  create,
  type DescMessage,
  type DescService,
  fromBinary,
  type MessageInitShape,
  toBinary,
} from '@bufbuild/protobuf'
import * as grpc from '@grpc/grpc-js'
import {
  BookService,
  BookStatus,
  type CreateBookResponse,
  type GetBookResponse,
} from '../../../src/gen/books/v1/books_pb.js'
import {
  Health,
  type HealthCheckResponse,
  HealthCheckResponse_ServingStatus,
} from '../../../src/gen/grpc/health/v1/health_pb.js'
import { describe } from '../../helpers/describe.ts'
import { quickBackend, type RpcService, startRpcService } from '../../helpers/rpc-clients.ts'
import { bodyOf, type Json, jsonRequest } from '../../helpers/service.ts'

const run = promisify(execFile)
const BUF = 'node_modules/.bin/buf'

// A request is given as a plain object (what a grpc-js caller passes); create() makes it a message of the schema.
const serializer =
  <Desc extends DescMessage>(schema: Desc) =>
  (message: MessageInitShape<Desc>) =>
    Buffer.from(toBinary(schema, create(schema, message)))
const deserializer =
  <Desc extends DescMessage>(schema: Desc) =>
  (bytes: Buffer) =>
    fromBinary(schema, bytes)

/** A grpc-js service definition for the unary methods of `service`, with @bufbuild/protobuf doing the bytes. */
function grpcJsDefinition(service: DescService): grpc.ServiceDefinition {
  return Object.fromEntries(
    service.methods
      .filter((method) => method.methodKind === 'unary')
      .map((method) => [
        method.localName,
        {
          path: `/${service.typeName}/${method.name}`,
          requestStream: false,
          responseStream: false,
          requestSerialize: serializer(method.input),
          requestDeserialize: deserializer(method.input),
          responseSerialize: serializer(method.output),
          responseDeserialize: deserializer(method.output),
        },
      ]),
  )
}

type UnaryCall = (
  request: unknown,
  metadata: grpc.Metadata,
  callback: (error: grpc.ServiceError | null, response?: unknown) => void,
) => grpc.ClientUnaryCall

/** Calls a unary method by its local name; resolves with the response, rejects with grpc-js's ServiceError. */
function unary<T>(client: grpc.Client, method: string, request: object): Promise<T> {
  const call = (client as unknown as Record<string, UnaryCall>)[method]
  assert.ok(call, `the client has ${method}`)
  return new Promise((resolve, reject) => {
    call.call(client, request, new grpc.Metadata(), (error, response) =>
      error === null ? resolve(response as T) : reject(error),
    )
  })
}

async function serviceError(call: Promise<unknown>): Promise<grpc.ServiceError> {
  const outcome = await call.then(
    () => undefined,
    (error: grpc.ServiceError) => error,
  )
  assert.ok(outcome, 'the call failed')
  return outcome
}

describe('the gRPC port through grpc-js and buf curl', () => {
  let service: RpcService
  let books: grpc.Client
  let health: grpc.Client
  let stored: Json
  before(async () => {
    service = await startRpcService(await quickBackend())
    const address = `127.0.0.1:${service.grpcPort}`
    const credentials = grpc.credentials.createInsecure()
    books = new (grpc.makeGenericClientConstructor(grpcJsDefinition(BookService), 'BookService'))(address, credentials)
    health = new (grpc.makeGenericClientConstructor(grpcJsDefinition(Health), 'Health'))(address, credentials)
    const posted = await service.fetch(
      '/v1/books',
      jsonRequest('POST', {
        title: 'The Left Hand of Darkness',
        author: 'Ursula K. Le Guin',
        published_date: '1969-03-01',
      }),
    )
    assert.equal(posted.status, 201)
    stored = await bodyOf(posted)
  })
  after(async () => {
    books?.close()
    health?.close()
    await service?.close()
  })

  it('when grpc-js creates a book, then the answer decodes to it and REST reads the same book', async () => {
    const { book, replayed } = await unary<CreateBookResponse>(books, 'createBook', {
      book: { title: 'The Lathe of Heaven', author: 'Ursula K. Le Guin', publishedDate: '1971-01-01' },
    })
    assert.equal(replayed, false)
    assert.ok(book)
    assert.equal(book.title, 'The Lathe of Heaven')
    assert.equal(book.status, BookStatus.PENDING)
    assert.equal(book.version, 1)
    const read = await service.fetch(`/v1/books/${book.id}`)
    assert.equal(read.status, 200)
    assert.equal((await bodyOf(read)).title, 'The Lathe of Heaven')
  })

  it('when grpc-js gets a book, then it is the stored one; a missing one is NOT_FOUND, a bad id INVALID_ARGUMENT', async () => {
    const { book } = await unary<GetBookResponse>(books, 'getBook', { id: stored.id })
    assert.equal(book?.id, stored.id)
    assert.equal(book?.title, stored.title)
    assert.equal(book?.publishedDate, stored.published_date)
    const missing = await serviceError(unary(books, 'getBook', { id: '01900000-0000-7000-8000-000000000000' }))
    assert.equal(missing.code, grpc.status.NOT_FOUND)
    assert.equal(missing.details, 'book not found')
    const malformed = await serviceError(unary(books, 'getBook', { id: 'not-a-uuid' }))
    assert.equal(malformed.code, grpc.status.INVALID_ARGUMENT)
    assert.ok(malformed.metadata.get('grpc-status-details-bin').length > 0, 'the BadRequest detail is sent')
  })

  it('when grpc-js checks health, then the server and BookService are SERVING and an unknown service NOT_FOUND', async () => {
    for (const name of ['', 'books.v1.BookService']) {
      const { status } = await unary<HealthCheckResponse>(health, 'check', { service: name })
      assert.equal(HealthCheckResponse_ServingStatus[status], 'SERVING', `"${name}"`)
    }
    const unknown = await serviceError(unary(health, 'check', { service: 'books.v1.NoSuchService' }))
    assert.equal(unknown.code, grpc.status.NOT_FOUND)
  })

  it('when buf curl calls GetBook with no schema but reflection, then it prints the book as JSON', async () => {
    const { stdout } = await run(BUF, [
      'curl',
      '--protocol',
      'grpc',
      '--http2-prior-knowledge',
      '--reflect-protocol',
      'grpc-v1',
      `${service.grpcUrl}/books.v1.BookService/GetBook`,
      '-d',
      JSON.stringify({ id: stored.id }),
    ])
    const { book } = JSON.parse(stdout)
    assert.deepEqual(
      {
        id: book.id,
        title: book.title,
        author: book.author,
        published_date: book.publishedDate,
        status: book.status,
        created_at: new Date(book.createdAt).toISOString(),
        version: book.version,
      },
      {
        id: stored.id,
        title: stored.title,
        author: stored.author,
        published_date: stored.published_date,
        status: 'BOOK_STATUS_PENDING',
        created_at: stored.created_at,
        version: 1,
      },
    )
  })

  it('when buf curl lists the methods through reflection, then every BookService method is there', async () => {
    const { stdout } = await run(BUF, [
      'curl',
      '--protocol',
      'grpc',
      '--http2-prior-knowledge',
      '--reflect-protocol',
      'grpc-v1',
      '--list-methods',
      service.grpcUrl,
    ])
    const methods = stdout.split('\n').filter(Boolean)
    for (const method of BookService.methods) assert.ok(methods.includes(`books.v1.BookService/${method.name}`), stdout)
    assert.ok(methods.includes('grpc.health.v1.Health/Check'), stdout)
  })
})
