// The gRPC port through implementations other than the server's own: @grpc/grpc-js with serializers from the
// generated schemas (no proto-loader), for the books, grpc.health.v1 and grpc.reflection.v1 (with which it decodes
// an error's details from reflection alone, as grpcurl does); and `buf curl`, which learns the schema from the
// server's reflection alone.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { after, before, it } from 'node:test'
import { promisify } from 'node:util'
import {
  create,
  createFileRegistry,
  type DescMessage,
  type DescService,
  fromBinary,
  type MessageInitShape,
  toBinary,
  toJson,
} from '@bufbuild/protobuf'
import { BinaryReader } from '@bufbuild/protobuf/wire'
import {
  type Any,
  AnySchema,
  type FileDescriptorProto,
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
} from '@bufbuild/protobuf/wkt'
import * as grpc from '@grpc/grpc-js'
import {
  BookService,
  BookStatus,
  type CreateBookResponse,
  type GetBookResponse,
} from '../../../src/gen/books/v1/books_pb.js'
import { BadRequestSchema } from '../../../src/gen/google/rpc/error_details_pb.js'
import {
  Health,
  type HealthCheckResponse,
  HealthCheckResponse_ServingStatus,
} from '../../../src/gen/grpc/health/v1/health_pb.js'
import {
  ServerReflectionRequestSchema,
  type ServerReflectionResponse,
  ServerReflectionResponseSchema,
} from '../../../src/gen/grpc/reflection/v1/reflection_pb.js'
import { describe } from '../../helpers/describe.ts'
import { quickBackend, type RpcService, restTimestamp, startRpcService } from '../../helpers/rpc-clients.ts'
import { bodyOf, type Json, jsonRequest } from '../../helpers/service.ts'

const run = promisify(execFile)
const BUF = 'node_modules/.bin/buf'
/** buf curl against the gRPC port with no schema of its own: what it knows of the service comes from reflection. */
const BUF_CURL = ['curl', '--protocol', 'grpc', '--http2-prior-knowledge', '--reflect-protocol', 'grpc-v1']

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

/** Fails every field: a blank title, digits for an author, a day that does not exist. */
const INVALID_BOOK = { title: '  ', author: '1984', publishedDate: '2023-02-30' }

/** The details of a google.rpc.Status, as grpc-status-details-bin carries it (details is its field 3). */
function statusDetails(bytes: Uint8Array): Any[] {
  const reader = new BinaryReader(bytes)
  const details: Any[] = []
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag()
    if (field === 3) details.push(fromBinary(AnySchema, reader.bytes()))
    else reader.skip(wireType)
  }
  return details
}

/** The files of a reflection answer, decoded; it must be a file_descriptor_response. */
function descriptorsOf(
  { messageResponse }: ServerReflectionResponse,
  symbol: string | undefined,
): FileDescriptorProto[] {
  assert.equal(messageResponse.case, 'fileDescriptorResponse', `${symbol}: ${JSON.stringify(messageResponse.value)}`)
  return messageResponse.value.fileDescriptorProto.map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes))
}

/** One grpc.reflection.v1 stream: asks file_containing_symbol for each symbol, answers in the same order. */
async function containingFiles(client: grpc.Client, symbols: readonly string[]): Promise<ServerReflectionResponse[]> {
  const call = client.makeBidiStreamRequest(
    '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo',
    serializer(ServerReflectionRequestSchema),
    deserializer(ServerReflectionResponseSchema),
  )
  for (const symbol of symbols) {
    call.write({ messageRequest: { case: 'fileContainingSymbol', value: symbol } })
  }
  call.end()
  const responses: ServerReflectionResponse[] = []
  for await (const response of call) responses.push(response)
  return responses
}

describe('the gRPC port through grpc-js and buf curl', () => {
  let service: RpcService
  let books: grpc.Client
  let health: grpc.Client
  let reflection: grpc.Client
  let stored: Json
  before(async () => {
    service = await startRpcService(await quickBackend())
    const address = `127.0.0.1:${service.grpcPort}`
    const credentials = grpc.credentials.createInsecure()
    books = new (grpc.makeGenericClientConstructor(grpcJsDefinition(BookService), 'BookService'))(address, credentials)
    health = new (grpc.makeGenericClientConstructor(grpcJsDefinition(Health), 'Health'))(address, credentials)
    reflection = new grpc.Client(address, credentials)
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
    reflection?.close()
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
      ...BUF_CURL,
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
        created_at: restTimestamp(book.createdAt),
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
    const { stdout } = await run(BUF, [...BUF_CURL, '--list-methods', service.grpcUrl])
    const methods = stdout.split('\n').filter(Boolean)
    for (const method of BookService.methods) assert.ok(methods.includes(`books.v1.BookService/${method.name}`), stdout)
    assert.ok(methods.includes('grpc.health.v1.Health/Check'), stdout)
  })

  it('when reflection is asked for the error details, then it answers with google/rpc/error_details.proto', async () => {
    const symbols = ['google.rpc.BadRequest', 'google.rpc.RetryInfo']
    const responses = await containingFiles(reflection, symbols)
    assert.equal(responses.length, symbols.length)
    for (const [index, response] of responses.entries()) {
      const files = descriptorsOf(response, symbols[index])
      const details = files.find((file) => file.name === 'google/rpc/error_details.proto')
      assert.ok(details, `${symbols[index]}: ${files.map((file) => file.name).join(', ')}`)
      assert.ok(details.messageType.some((message) => `${details.package}.${message.name}` === symbols[index]))
      for (const dependency of details.dependency) {
        assert.ok(
          files.some((file) => file.name === dependency),
          `${dependency} comes with it`,
        )
      }
    }
  })

  it('when a client with no schema but reflection gets INVALID_ARGUMENT, then it decodes the BadRequest, as grpcurl does', async () => {
    const failure = await serviceError(unary(books, 'createBook', { book: INVALID_BOOK }))
    assert.equal(failure.code, grpc.status.INVALID_ARGUMENT)
    const [status] = failure.metadata.get('grpc-status-details-bin')
    assert.ok(Buffer.isBuffer(status), 'the status details are sent')
    const details = statusDetails(status)
    assert.deepEqual(
      details.map(({ typeUrl }) => typeUrl),
      ['type.googleapis.com/google.rpc.BadRequest'],
    )
    // What grpcurl does with a detail: ask reflection for the file of its type, then print the Any as JSON.
    const names = details.map(({ typeUrl }) => typeUrl.slice(typeUrl.lastIndexOf('/') + 1))
    const responses = await containingFiles(reflection, names)
    const files = new Map(
      responses.flatMap((response, index) => descriptorsOf(response, names[index])).map((file) => [file.name, file]),
    )
    const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: [...files.values()] }))
    const [printed] = details.map((detail) => toJson(AnySchema, detail, { registry }))
    const sent = fromBinary(BadRequestSchema, details[0]?.value ?? new Uint8Array())
    assert.deepEqual(printed, {
      '@type': 'type.googleapis.com/google.rpc.BadRequest',
      ...(toJson(BadRequestSchema, sent) as object),
    })
    assert.deepEqual(
      sent.fieldViolations.map(({ field }) => field),
      ['book.title', 'book.author', 'book.published_date'],
    )
    for (const { description } of sent.fieldViolations) assert.ok(description.length > 0)
  })

  it('when buf curl creates an invalid book, then it prints INVALID_ARGUMENT with the BadRequest detail', async () => {
    const failed = await run(BUF, [
      ...BUF_CURL,
      `${service.grpcUrl}/books.v1.BookService/CreateBook`,
      '-d',
      JSON.stringify({ book: INVALID_BOOK }),
    ]).then(
      () => assert.fail('buf curl succeeded'),
      (error: { code: number; stderr: string }) => error,
    )
    assert.notEqual(failed.code, 0)
    const printed = JSON.parse(failed.stderr)
    assert.equal(printed.code, 'invalid_argument')
    assert.equal(printed.message, 'request validation failed')
    assert.equal(printed.details.length, 1, failed.stderr)
    const [detail] = printed.details
    assert.equal(detail.type, 'google.rpc.BadRequest')
    // buf curl decodes a detail only with the types built into it, never through reflection, and google.rpc's
    // are not among them: it prints the bytes (and `debug` only where it knows the type).
    const sent = fromBinary(BadRequestSchema, Buffer.from(detail.value, 'base64'))
    assert.deepEqual(
      sent.fieldViolations.map(({ field }) => field),
      ['book.title', 'book.author', 'book.published_date'],
    )
    if (detail.debug !== undefined) assert.deepEqual(detail.debug, toJson(BadRequestSchema, sent))
  })
})
