// The benchmark's ceiling for Node.js: a bare node:http server that runs the service's own statements through
// the same driver (postgres.js, prepared statements) and writes the rows as JSON. No framework, no validation, no
// logging, no metrics: whatever the service does beyond this is its cost. Pools as the service's: reads on
// DB_POOL_READS connections, writes on the rest of DB_POOL_MAX; one pool for both when DB_POOL_READS is not below
// DB_POOL_MAX (the default). The benchmark runs it with reads on one pipelined connection (bench/context.ts). With
// BARE_EVENTS=off its create is the same statement without the event's insert (bench/without-event.ts): the outbox's
// cost on the create path, all else equal.
//
//   DATABASE_URL=postgres://… PORT=8081 DB_POOL_MAX=10 DB_POOL_READS=1 [BARE_EVENTS=off] node bench/bare-server.ts
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import postgres from 'postgres'
import { v7 as uuidv7 } from 'uuid'
import { BOOK_SQL, insertParameters, listStatements, updateParameters } from '../src/books/repository.ts'
import type { BookInput } from '../src/books/schemas.ts'
import { CREATE_SQL } from './without-event.ts'

const DATE_OID = 1082
const withEvents = process.env.BARE_EVENTS !== 'off'
const poolMax = Number(process.env.DB_POOL_MAX ?? 10)
const poolReads = Number(process.env.DB_POOL_READS ?? poolMax)
const pool = (max: number) =>
  postgres(process.env.DATABASE_URL as string, {
    max,
    prepare: true,
    types: { calendarDate: { to: DATE_OID, from: [DATE_OID], serialize: String, parse: (text: string) => text } },
    onnotice: () => {},
  })
const split = poolReads < poolMax
const reads = pool(split ? poolReads : poolMax)
const writes = split ? pool(poolMax - poolReads) : reads

const BOOK_PATH = /^\/v1\/books\/([0-9a-f-]{36})$/

function send(response: ServerResponse, status: number, body?: unknown) {
  const text = body === undefined ? '' : JSON.stringify(body)
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  response.end(text)
}

// No validation: the bare server trusts its input (the load generator's fixed body); the statements' parameters
// fill in the service's defaults.
async function readBook(request: IncomingMessage): Promise<BookInput> {
  const chunks: Buffer[] = []
  for await (const chunk of request) chunks.push(chunk as Buffer)
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as BookInput
}

/** The event's part of a write's parameters: its id, and no trace. */
const untracedEvent = () => ({ eventId: uuidv7(), traceparent: null })

async function handle(request: IncomingMessage, response: ServerResponse) {
  const url = request.url ?? '/'
  if (url === '/hello') return send(response, 200, { status: 'ok' })
  if (url === '/readyz') {
    await reads`SELECT 1`
    return send(response, 200, { status: 'ok' })
  }
  const match = BOOK_PATH.exec(url)
  if (match !== null && request.method === 'GET') {
    const [row] = await reads.unsafe(BOOK_SQL.findById, [match[1] as string], { prepare: true })
    return row === undefined ? send(response, 404) : send(response, 200, row)
  }
  if (match !== null && request.method === 'PUT') {
    // The statement writes its event too (the outbox).
    const values = updateParameters(match[1] as string, await readBook(request), undefined, untracedEvent())
    const [row] = await writes.unsafe(BOOK_SQL.update, values as never[], { prepare: true })
    return row === undefined ? send(response, 404) : send(response, 200, row)
  }
  if (url.startsWith('/v1/books') && request.method === 'GET') {
    const params = new URL(url, 'http://bare').searchParams
    // The first page, as the service sends it by default: no count.
    const { page } = listStatements({
      page: 1,
      pageSize: 10,
      sort: (params.get('sort') ?? '-created_at') as never,
      ...(params.has('author') ? { author: params.get('author') as string } : {}),
      ...(params.has('status') ? { status: params.get('status') as never } : {}),
      ...(params.has('q') ? { q: params.get('q') as string } : {}),
    })
    const rows = await reads.unsafe(page.text, page.values as never[], { prepare: true })
    return send(response, 200, rows.slice(0, 10))
  }
  if (url === '/v1/books' && request.method === 'POST') {
    const values = insertParameters(uuidv7(), await readBook(request), untracedEvent())
    const [row] = withEvents
      ? await writes.unsafe(CREATE_SQL.withEvent, values as never[], { prepare: true })
      : await writes.unsafe(CREATE_SQL.withoutEvent, CREATE_SQL.withoutEventParameters(values) as never[], {
          prepare: true,
        })
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
server.listen(Number(process.env.PORT ?? 8081), '127.0.0.1')
process.on('SIGTERM', () => {
  server.close()
  server.closeAllConnections()
  void Promise.all([reads.end({ timeout: 1 }), writes.end({ timeout: 1 })]).then(() => process.exit(0))
})
