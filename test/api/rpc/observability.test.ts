// An RPC call is logged once (as 'call', never also as an HTTP 'request'), measured in rpc_server_duration_seconds
// by method, protocol and code, and traced as a SERVER span that continues the caller's trace, on either port.
import assert from 'node:assert/strict'
import { after, before, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Code } from '@connectrpc/connect'
import { describe } from '../../helpers/describe.ts'
import { attribute, CLIENT_KIND, type ExportedSpan, otlpReceiver, SERVER_KIND } from '../../helpers/otlp-receiver.ts'
import { bookClient, quickBackend, type RpcService, rpcFailure, startRpcService } from '../../helpers/rpc-clients.ts'
import { bodyOf, jsonRequest, type LogRecord } from '../../helpers/service.ts'

const MISSING_ID = '01900000-0000-7000-8000-000000000000'
const book = { title: 'Solaris', author: 'Stanisław Lem', published_date: '1961-06-01' }

async function createBook(service: RpcService): Promise<string> {
  const response = await service.fetch('/v1/books', jsonRequest('POST', book))
  assert.equal(response.status, 201)
  return (await bodyOf(response)).id
}

/** The count of one rpc_server_duration_seconds series in a Prometheus text scrape; 0 when absent. */
function callsCounted(text: string, labels: { rpc_method: string; protocol: string; code: string }): number {
  for (const line of text.split('\n')) {
    const match = /^rpc_server_duration_seconds_count\{(.*)\} (\d+)$/.exec(line)
    if (match === null) continue
    const found = Object.fromEntries([...(match[1] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map(([, k, v]) => [k, v]))
    if (Object.entries(labels).every(([key, value]) => found[key] === value)) return Number(match[2])
  }
  return 0
}

/** Waits for log lines written after the answer was sent (the HTTP request line is written on finish). */
async function linesAfter(service: RpcService, from: number, wanted: (lines: LogRecord[]) => boolean) {
  for (let attempt = 0; attempt < 50 && !wanted(service.logs.slice(from)); attempt++) await sleep(20)
  return service.logs.slice(from)
}

describe('RPC calls in the logs and the metrics', () => {
  let service: RpcService
  let bookId: string
  before(async () => {
    service = await startRpcService(await quickBackend())
    bookId = await createBook(service)
  })
  after(() => service?.close())

  it("when four calls arrive on the HTTP port, then each has one 'call' line with its method and code, and none a 'request' line", async () => {
    const client = bookClient(service, 'connect-json')
    const from = service.logs.length
    await client.getBook({ id: bookId })
    await client.getBook({ id: bookId })
    assert.equal((await rpcFailure(client.getBook({ id: MISSING_ID }))).code, Code.NotFound)
    assert.equal((await rpcFailure(client.getBook({ id: 'not-a-uuid' }))).code, Code.InvalidArgument)
    // A REST request in the same stretch: its 'request' line shows that such lines are written, here and now.
    assert.equal((await service.fetch(`/v1/books/${bookId}`)).status, 200)
    const lines = await linesAfter(service, from, (written) => written.some((line) => line.message === 'request'))

    const calls = lines.filter((line) => line.message === 'call')
    assert.deepEqual(
      calls.map((line) => [line.rpc_method, line.protocol, line.code]),
      [
        ['books.v1.BookService/GetBook', 'connect', 'OK'],
        ['books.v1.BookService/GetBook', 'connect', 'OK'],
        ['books.v1.BookService/GetBook', 'connect', 'NOT_FOUND'],
        ['books.v1.BookService/GetBook', 'connect', 'INVALID_ARGUMENT'],
      ],
    )
    for (const line of calls) {
      assert.equal(line.level, 'info')
      assert.equal(line.remote_ip, '127.0.0.1')
      assert.equal(typeof line.latency, 'number')
    }
    assert.equal(calls[2]?.message_detail, 'book not found')
    const requests = lines.filter((line) => line.message === 'request')
    assert.deepEqual(
      requests.map((line) => line.url),
      [`/v1/books/${bookId}`],
      'only the REST request has a request line',
    )
  })

  it('when GetBook is called over gRPC twice for a book and once for a missing one, then the histogram counts 2 OK and 1 NOT_FOUND', async () => {
    const scrape = async () => {
      const response = await service.fetch('/metrics')
      assert.equal(response.status, 200)
      return response.text()
    }
    const series = (protocol: string, code: string) => ({
      rpc_method: 'books.v1.BookService/GetBook',
      protocol,
      code,
    })
    const before = await scrape()
    const grpc = bookClient(service, 'grpc')
    await grpc.getBook({ id: bookId })
    await grpc.getBook({ id: bookId })
    await rpcFailure(grpc.getBook({ id: MISSING_ID }))
    await bookClient(service, 'connect-binary').getBook({ id: bookId })
    const after = await scrape()
    const added = (protocol: string, code: string) =>
      callsCounted(after, series(protocol, code)) - callsCounted(before, series(protocol, code))
    assert.equal(added('grpc', 'OK'), 2)
    assert.equal(added('grpc', 'NOT_FOUND'), 1)
    assert.equal(added('connect', 'OK'), 1, 'the Connect call on the HTTP port, by its own protocol')
    assert.equal(added('connect', 'NOT_FOUND'), 0)
  })

  it("when a call outlives its deadline, then its 'call' line says DEADLINE_EXCEEDED, as the client was told", {}, async () => {
    const client = bookClient(service, 'grpc')
    // A first call opens the connection, so that the next one reaches the server within its deadline's reach.
    await client.listBooks({})
    const from = service.logs.length
    // A deadline already passed when the call arrives: a 1 ms one could still be met by a fast server.
    const error = await rpcFailure(client.listBooks({}, { headers: { 'grpc-timeout': '0m' } }))
    assert.equal(error.code, Code.DeadlineExceeded)
    const lines = await linesAfter(service, from, (written) => written.some((line) => line.message === 'call'))
    const call = lines.find((line) => line.message === 'call')
    assert.equal(call?.rpc_method, 'books.v1.BookService/ListBooks')
    assert.equal(call?.code, 'DEADLINE_EXCEEDED')
  })
})

describe('RPC calls in traces', () => {
  let receiver: Awaited<ReturnType<typeof otlpReceiver>>
  let service: RpcService
  let bookId: string
  before(async () => {
    receiver = await otlpReceiver()
    service = await startRpcService(await quickBackend(), {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_SERVICE_NAME: 'myapp-rpc-test',
    })
    bookId = await createBook(service)
  })
  after(async () => {
    await service?.close()
    receiver?.server.close()
  })

  /** The spans of one trace, once exported. */
  const traceOf = async (traceId: string) => {
    await service.tracing?.forceFlush()
    return receiver.spans.filter((span) => span.traceId === traceId)
  }

  it('when a sampled caller calls GetBook on the gRPC port, then a SERVER span of that name continues its trace, with the query under it', async () => {
    const traceId = '5bf92f3577b34da6a3ce929d0e0e4736'
    const callerSpanId = '10f067aa0ba902b7'
    await bookClient(service, 'grpc').getBook(
      { id: bookId },
      { headers: { traceparent: `00-${traceId}-${callerSpanId}-01` } },
    )
    const spans = await traceOf(traceId)
    const server = spans.find((span) => span.kind === SERVER_KIND)
    assert.ok(server, `a SERVER span in the caller's trace: ${JSON.stringify(receiver.spans.map((s) => s.name))}`)
    assert.equal(server.name, 'books.v1.BookService/GetBook')
    assert.equal(server.parentSpanId, callerSpanId)
    assert.equal(attribute(server, 'rpc.system'), 'grpc')
    assert.equal(attribute(server, 'rpc.service'), 'books.v1.BookService')
    assert.equal(attribute(server, 'rpc.method'), 'GetBook')
    assert.equal(Number(attribute(server, 'rpc.grpc.status_code')), 0)
    const query = spans.find((span) => span.kind === CLIENT_KIND)
    assert.ok(query, 'a CLIENT span for the query')
    assert.equal(query.parentSpanId, server.spanId)
  })

  it("when a sampled call is logged, then its 'call' line carries the trace and span ids", {}, async () => {
    const traceId = '8bf92f3577b34da6a3ce929d0e0e4736'
    const from = service.logs.length
    await bookClient(service, 'grpc').getBook(
      { id: bookId },
      { headers: { traceparent: `00-${traceId}-40f067aa0ba902b7-01` } },
    )
    const server = (await traceOf(traceId)).find((span) => span.kind === SERVER_KIND)
    assert.ok(server, 'the call was traced')
    const call = service.logs.slice(from).find((line) => line.message === 'call')
    assert.equal(call?.trace_id, traceId)
    assert.equal(call?.span_id, server.spanId)
  })

  it('when a sampled caller calls GetBook on the HTTP port, then the RPC span is in its trace, under the HTTP span', async () => {
    const traceId = '6bf92f3577b34da6a3ce929d0e0e4736'
    const callerSpanId = '20f067aa0ba902b7'
    const missing = await rpcFailure(
      bookClient(service, 'connect-json').getBook(
        { id: MISSING_ID },
        { headers: { traceparent: `00-${traceId}-${callerSpanId}-01` } },
      ),
    )
    assert.equal(missing.code, Code.NotFound)
    const spans = await traceOf(traceId)
    const rpc = spans.find((span) => span.name === 'books.v1.BookService/GetBook')
    assert.ok(rpc, `the RPC span in the caller's trace: ${JSON.stringify(spans.map((s) => s.name))}`)
    assert.equal(rpc.kind, SERVER_KIND)
    assert.equal(attribute(rpc, 'rpc.system'), 'connect_rpc')
    assert.equal(Number(attribute(rpc, 'rpc.grpc.status_code')), Code.NotFound)
    // Up the parents from the RPC span: every one is in this service's part of the trace, and the top one is the
    // caller's span.
    const byId = new Map(spans.map((span) => [span.spanId, span]))
    let top = rpc
    while (top.parentSpanId !== undefined && byId.has(top.parentSpanId))
      top = byId.get(top.parentSpanId) as ExportedSpan
    assert.equal(top.parentSpanId, callerSpanId)
    assert.equal(top.kind, SERVER_KIND)
  })

  it('when a caller is not sampled, then the call on the gRPC port exports no span of its trace', async () => {
    const traceId = '7bf92f3577b34da6a3ce929d0e0e4736'
    await bookClient(service, 'grpc').getBook(
      { id: bookId },
      { headers: { traceparent: `00-${traceId}-30f067aa0ba902b7-00` } },
    )
    assert.deepEqual(await traceOf(traceId), [])
  })
})
