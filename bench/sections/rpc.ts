// GetBook over native gRPC (h2load, from a prepared frame) and over Connect binary (wrk, posting the message)
// against the REST read by id (wrk), on the service in production mode with GRPC_PORT set, alternating in every
// round. h2load sends one body every time, so every run asks for the same seeded book, the REST read included (a
// random-id read runs beside it for reference): PostgreSQL answers all of them from its cache, and what differs is
// the door. h2load takes a gRPC error for a success (the status is in the trailers), so one call over each RPC door
// must return the book before the runs, and the service's own count of calls by status code is read from /metrics
// around every RPC run.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { create, toBinary } from '@bufbuild/protobuf'
import { Code, ConnectError, createClient } from '@connectrpc/connect'
import { createConnectTransport, createGrpcTransport, Http2SessionManager } from '@connectrpc/connect-node'
import { BookService, GetBookRequestSchema } from '../../src/gen/books/v1/books_pb.js'
import { type Context, rotated, roundsOf, SERVICE, type Section } from '../context.ts'
import { measureH2load } from '../h2load.ts'
import { freePort } from '../ports.ts'
import type { Server } from '../processes.ts'
import { RPC_RUNS, type RpcRun, type RpcRunName } from './rpc-result.ts'

const GET_BOOK = 'books.v1.BookService/GetBook'

/** Book n of bench/seed.sql. */
const seededId = (n: number) => `00000000-0000-7000-8000-${n.toString(16).padStart(12, '0')}`

export const rpc: Section = {
  name: 'rpc',
  about: 'GetBook over gRPC and Connect binary against the REST read by id, one book for all',
  tools: [['h2load', 'apt-get install nghttp2-client']],
  async run(context: Context) {
    const { settings } = context
    const database = await context.database()
    const bookId = seededId(Math.ceil(settings.books / 2))
    const bodies = writeBodies(context.workDir, bookId)
    const authorization = `Bearer ${context.jwt.token}`
    const runs = roundsOf<RpcRun>((result) => result.requestsPerSecond)
    const names = Object.keys(RPC_RUNS) as RpcRunName[]
    for (let round = 1; round <= settings.rounds; round++) {
      context.say(`  round ${round} of ${settings.rounds}`)
      const grpcPort = await freePort()
      const service = await context.start(
        'service-rpc',
        SERVICE,
        context.productionEnv(database.url, { GRPC_PORT: String(grpcPort) }),
      )
      const grpcUrl = `http://127.0.0.1:${grpcPort}`
      await expectTheBook(service.url, grpcUrl, authorization, bookId)
      await database.reset()
      const h2load = (options: {
        url: string
        bodyFile?: string
        headers: Record<string, string>
        h1?: boolean
        multiplexed?: boolean
      }) =>
        measureH2load(service.pid, {
          ...options,
          // As many calls in flight either way: one per connection, or all of them on one, as gRPC clients call.
          connections: options.multiplexed ? 1 : settings.connections,
          streams: options.multiplexed ? settings.connections : 1,
          seconds: settings.seconds,
          warmupSeconds: settings.warmupSeconds,
          logFile: join(context.workDir, 'h2load-requests.tsv'),
        })
      const grpcGetBook = (multiplexed: boolean) =>
        counted(service, 'grpc', async () => ({
          tool: 'h2load',
          ...(await h2load({
            url: `${grpcUrl}/${GET_BOOK}`,
            bodyFile: bodies.grpcFrame,
            headers: { 'content-type': 'application/grpc', te: 'trailers', authorization },
            multiplexed,
          })),
        }))
      const bookPath = `/v1/books/${bookId}`
      const drivers: Record<RpcRunName, () => Promise<RpcRun>> = {
        restRandom: async () => ({
          tool: 'wrk',
          ...(await context.drive(service, 'read', { token: context.jwt.token })),
        }),
        restOneId: async () => ({
          tool: 'wrk',
          ...(await context.drive(service, 'path', { token: context.jwt.token, path: bookPath })),
        }),
        restOneIdH2load: async () => ({
          tool: 'h2load --h1',
          ...(await h2load({ url: service.url + bookPath, headers: { authorization }, h1: true })),
        }),
        grpc: () => grpcGetBook(false),
        grpcMultiplexed: () => grpcGetBook(true),
        connectBinary: () =>
          counted(service, 'connect', async () => ({
            tool: 'wrk',
            ...(await context.drive(service, 'post', {
              token: context.jwt.token,
              path: `/${GET_BOOK}`,
              bodyFile: bodies.connectMessage,
              contentType: 'application/proto',
            })),
          })),
      }
      for (const name of rotated(names, round)) {
        context.say(`    ${RPC_RUNS[name]} (${name})`)
        runs.add(name, await drivers[name]())
      }
      await context.stop(service)
    }
    return {
      rpc: {
        bookId,
        runs: Object.fromEntries(names.map((name) => [name, runs.median(name)])) as Record<RpcRunName, RpcRun>,
      },
    }
  },
}

/** The binary GetBookRequest, as Connect posts it, and as a gRPC frame: uncompressed flag, length, message. */
function writeBodies(folder: string, bookId: string) {
  const message = toBinary(GetBookRequestSchema, create(GetBookRequestSchema, { id: bookId }))
  const frame = Buffer.alloc(5 + message.length)
  frame.writeUInt8(0, 0)
  frame.writeUInt32BE(message.length, 1)
  frame.set(message, 5)
  const paths = { connectMessage: join(folder, 'get-book.bin'), grpcFrame: join(folder, 'get-book.grpc') }
  writeFileSync(paths.connectMessage, message)
  writeFileSync(paths.grpcFrame, frame)
  return paths
}

/**
 * One GetBook over gRPC and one over Connect binary, with Connect-ES clients, must return the book: the load
 * generators see no gRPC status. The gRPC listener opens once the HTTP one does, so its first refusals are waited
 * out.
 */
async function expectTheBook(httpUrl: string, grpcUrl: string, authorization: string, bookId: string) {
  const sessions = new Http2SessionManager(grpcUrl)
  const grpc = createClient(BookService, createGrpcTransport({ baseUrl: grpcUrl, sessionManager: sessions }))
  const connect = createClient(
    BookService,
    createConnectTransport({ baseUrl: httpUrl, httpVersion: '1.1', useBinaryFormat: true }),
  )
  const headers = { authorization }
  try {
    for (const [door, call] of [
      ['gRPC', () => grpc.getBook({ id: bookId }, { headers, timeoutMs: 5000 })],
      ['Connect binary', () => connect.getBook({ id: bookId }, { headers, timeoutMs: 5000 })],
    ] as const) {
      const deadline = performance.now() + 10_000
      for (;;) {
        try {
          const { book } = await call()
          if (book?.id !== bookId) throw new Error(`${door} GetBook answered ${JSON.stringify(book)}, not ${bookId}`)
          break
        } catch (error) {
          const refused = error instanceof ConnectError && error.code === Code.Unavailable
          if (!refused || performance.now() > deadline) throw error
          await sleep(50)
        }
      }
    }
  } finally {
    sessions.abort()
  }
}

/** `drive`, with the GetBook calls the service counted meanwhile by status code (protocol: its metrics label). */
async function counted(server: Server, protocol: string, drive: () => Promise<RpcRun>): Promise<RpcRun> {
  const before = await getBookCalls(server.url, protocol)
  const result = await drive()
  const after = await getBookCalls(server.url, protocol)
  const calls = Object.fromEntries(
    Object.entries(after)
      .map(([code, count]) => [code, count - (before[code] ?? 0)] as const)
      .filter(([, count]) => count > 0),
  )
  return { ...result, calls }
}

/** rpc_server_duration_seconds_count of GetBook over `protocol`, by status code, from the service's /metrics. */
async function getBookCalls(url: string, protocol: string): Promise<Record<string, number>> {
  const response = await fetch(`${url}/metrics`)
  if (!response.ok) throw new Error(`GET /metrics answered ${response.status}`)
  const calls: Record<string, number> = {}
  for (const line of (await response.text()).split('\n')) {
    if (!line.startsWith('rpc_server_duration_seconds_count{')) continue
    const labels = Object.fromEntries([...line.matchAll(/(\w+)="([^"]*)"/g)].map((match) => [match[1], match[2]]))
    if (labels.rpc_method !== GET_BOOK || labels.protocol !== protocol || labels.code === undefined) continue
    calls[labels.code] = (calls[labels.code] ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return calls
}
