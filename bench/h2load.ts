// h2load (Debian's nghttp2-client) as a load generator: closed loop at fixed connections like wrk, over HTTP/2
// cleartext (and so native gRPC, from a prepared frame) or, with --h1, over HTTP/1.1.
import { execFile } from 'node:child_process'
import { readFileSync, rmSync } from 'node:fs'
import { promisify } from 'node:util'
import { type HttpResult, warmThenMeasure } from './load.ts'

const run = promisify(execFile)

export interface H2loadOptions {
  url: string
  /** Posted as it is on every request (h2load -d); without it, a GET. */
  bodyFile?: string
  headers: Record<string, string>
  /** HTTP/1.1 instead of HTTP/2. */
  h1?: boolean
  connections: number
  /** Requests in flight on each connection (h2load -m): 1 unless told, as wrk keeps. */
  streams?: number
  seconds: number
  /** Where h2load writes one line per request, from which the percentiles are taken. */
  logFile: string
}

/** One h2load run: its counts, its throughput, and every request's latency in microseconds, sorted. */
async function h2load(options: H2loadOptions) {
  rmSync(options.logFile, { force: true })
  const args = [
    '-t1',
    `-c${options.connections}`,
    `-m${options.streams ?? 1}`,
    `-D${options.seconds}`,
    `--log-file=${options.logFile}`,
    ...Object.entries(options.headers).flatMap(([name, value]) => ['-H', `${name}: ${value}`]),
    ...(options.bodyFile === undefined ? [] : ['-d', options.bodyFile]),
    ...(options.h1 ? ['--h1'] : []),
    options.url,
  ]
  const { stdout } = await run('h2load', args, { maxBuffer: 1 << 20 })
  const count = (pattern: RegExp) => {
    const match = pattern.exec(stdout)
    if (match === null) throw new Error(`h2load printed no ${pattern.source}:\n${stdout}`)
    return Number(match[1])
  }
  const latenciesUs = readFileSync(options.logFile, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => Number(line.split('\t')[2]))
    .sort((a, b) => a - b)
  rmSync(options.logFile, { force: true })
  return {
    requestsPerSecond: count(/finished in [\d.]+m?s, ([\d.]+) req\/s/),
    done: count(/requests: \d+ total, \d+ started, (\d+) done/),
    errored: count(/ (\d+) errored/),
    timeouts: count(/ (\d+) timeout/),
    non2xx: count(/ (\d+) 3xx/) + count(/ (\d+) 4xx/) + count(/ (\d+) 5xx/),
    latenciesUs,
  }
}

const percentileMs = (sortedUs: number[], percent: number) =>
  sortedUs.length === 0
    ? 0
    : Number(
        (
          (sortedUs[Math.min(sortedUs.length - 1, Math.ceil((percent / 100) * sortedUs.length) - 1)] ?? 0) / 1000
        ).toFixed(2),
      )

/**
 * Warms up, then drives the url for `seconds` while watching the server's process tree. A gRPC error is an
 * HTTP 200 with the status in the trailers, which h2load does not read: the caller counts those.
 */
export async function measureH2load(
  pid: number,
  options: H2loadOptions & { warmupSeconds: number },
): Promise<HttpResult> {
  const { result, ...usage } = await warmThenMeasure(pid, options.warmupSeconds, options.seconds, (seconds) =>
    h2load({ ...options, seconds }),
  )
  return {
    requestsPerSecond: Math.round(result.requestsPerSecond),
    p50Ms: percentileMs(result.latenciesUs, 50),
    p99Ms: percentileMs(result.latenciesUs, 99),
    maxMs: percentileMs(result.latenciesUs, 100),
    requests: result.done,
    // Not h2load's "failed": that counts the answers outside 2xx as well, which non2xx reports.
    errors: result.errored + result.timeouts,
    non2xx: result.non2xx,
    ...usage,
  }
}
