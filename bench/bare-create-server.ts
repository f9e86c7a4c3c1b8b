// The outbox's cost on the create path: a bare node:http server, as bench/bare-server.ts (same driver, prepared
// statements, write pool and body handling), that answers POST /v1/books with the service's create, which writes
// the book and its event in one statement, or with BARE_EVENTS=off the same statement without the event
// (bench/without-event.ts). One program for both, so that the event's insert is all that differs.
//
//   DATABASE_URL=postgres://… PORT=8082 BARE_EVENTS=off DB_POOL_MAX=10 DB_POOL_READS=1 node bench/bare-create-server.ts
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import postgres from 'postgres'
import { v7 as uuidv7 } from 'uuid'
import { CREATE_SQL } from './without-event.ts'

const DATE_OID = 1082
const withEvents = process.env.BARE_EVENTS !== 'off'
const poolMax = Number(process.env.DB_POOL_MAX ?? 10)
const poolReads = Number(process.env.DB_POOL_READS ?? poolMax)
// The bare server's write pool: what DB_POOL_READS leaves of DB_POOL_MAX, or all of it.
const writes = postgres(process.env.DATABASE_URL as string, {
  max: poolReads < poolMax ? poolMax - poolReads : poolMax,
  prepare: true,
  types: { calendarDate: { to: DATE_OID, from: [DATE_OID], serialize: String, parse: (text: string) => text } },
  onnotice: () => {},
})

function send(response: ServerResponse, status: number, body?: unknown) {
  const text = body === undefined ? '' : JSON.stringify(body)
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  response.end(text)
}

// No validation, as in bench/bare-server.ts: the load generator's fixed body, with the service's defaults.
async function readBook(request: IncomingMessage): Promise<unknown[]> {
  const chunks: Buffer[] = []
  for await (const chunk of request) chunks.push(chunk as Buffer)
  const book = JSON.parse(Buffer.concat(chunks).toString('utf8'))
  return [
    book.title,
    book.author,
    book.published_date,
    book.status ?? 'pending',
    book.image_url ?? null,
    book.description ?? null,
  ]
}

async function handle(request: IncomingMessage, response: ServerResponse) {
  if (request.url === '/readyz') {
    await writes`SELECT 1`
    return send(response, 200, { status: 'ok' })
  }
  if (request.url === '/v1/books' && request.method === 'POST') {
    const book = [uuidv7(), ...(await readBook(request))]
    // The event's id, and no trace.
    const [row] = withEvents
      ? await writes.unsafe(CREATE_SQL.withEvent, [...book, uuidv7(), null] as never[], { prepare: true })
      : await writes.unsafe(CREATE_SQL.withoutEvent, book as never[], { prepare: true })
    return send(response, 201, row)
  }
  send(response, 404)
}

const server = createServer((request, response) => {
  handle(request, response).catch((error: unknown) => {
    console.error(error)
    if (!response.headersSent) send(response, 500)
  })
})
server.keepAliveTimeout = 65_000
server.listen(Number(process.env.PORT ?? 8082), '127.0.0.1')
process.on('SIGTERM', () => {
  server.close()
  server.closeAllConnections()
  void writes.end({ timeout: 1 }).then(() => process.exit(0))
})
