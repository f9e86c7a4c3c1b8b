// Reads random books at a fixed overall rate with autocannon, in a process of its own so that the harness's
// own work (and garbage collection) never shows up as server latency. Prints one JSON line with the result.
//
//   node bench/at-rate.ts '{"url":"http://127.0.0.1:8080","books":100000,"rate":3000,"connections":16,"seconds":8}'
import autocannon from 'autocannon'

interface Options {
  url: string
  books: number
  token?: string
  rate: number
  connections: number
  seconds: number
}

const options = JSON.parse(process.argv[2] ?? '{}') as Options
const bookPath = () =>
  `/v1/books/00000000-0000-7000-8000-${(1 + Math.floor(Math.random() * options.books)).toString(16).padStart(12, '0')}`

const result = await autocannon({
  url: options.url,
  connections: options.connections,
  duration: options.seconds,
  overallRate: options.rate,
  headers: options.token === undefined ? {} : { authorization: `Bearer ${options.token}` },
  requests: [{ setupRequest: (request) => ({ ...request, path: bookPath() }) }],
})
process.stdout.write(
  `${JSON.stringify({
    requests: result.requests.total,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    maxMs: result.latency.max,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  })}\n`,
)
