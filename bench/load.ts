// The load generators: wrk (closed loop, fixed connections) for throughput, autocannon for a fixed request rate,
// pgbench for the database's own ceiling on the same statements; h2load, for HTTP/2 and gRPC, is in bench/h2load.ts.
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { watch } from './processes.ts'

const run = promisify(execFile)
const SCRIPT = fileURLToPath(new URL('./scenario.lua', import.meta.url))

export interface HttpResult {
  requestsPerSecond: number
  p50Ms: number
  p99Ms: number
  maxMs: number
  requests: number
  /** Connection, read and write errors and timeouts. */
  errors: number
  /** Answers outside 2xx and 3xx. */
  non2xx: number
  cpuPercent: number
  peakRssMb: number
}

export interface WrkOptions {
  url: string
  scenario: string
  path?: string
  token?: string
  /** For the "post" scenario: the body, sent as it is from this file, and its content type. */
  bodyFile?: string
  contentType?: string
  books: number
  connections: number
  seconds: number
}

async function wrk(options: WrkOptions) {
  const { stdout } = await run(
    'wrk',
    ['-t1', `-c${options.connections}`, `-d${options.seconds}s`, '--timeout', '10s', '-s', SCRIPT, options.url],
    {
      env: {
        ...process.env,
        BENCH_SCENARIO: options.scenario,
        BENCH_PATH: options.path ?? '/',
        BENCH_TOKEN: options.token ?? '',
        BENCH_BOOKS: String(options.books),
        BENCH_BODY_FILE: options.bodyFile ?? '',
        BENCH_CONTENT_TYPE: options.contentType ?? '',
      },
      maxBuffer: 1 << 20,
    },
  )
  const line = stdout.split('\n').find((text) => text.startsWith('WRK_RESULT '))
  if (line === undefined) throw new Error(`wrk printed no result:\n${stdout}`)
  return JSON.parse(line.slice('WRK_RESULT '.length)) as Record<string, number>
}

/** Runs `drive` for a warm-up (when asked for), then again while watching the server's process tree. */
export async function warmThenMeasure<T>(
  pid: number,
  warmupSeconds: number,
  seconds: number,
  drive: (seconds: number) => Promise<T>,
): Promise<{ result: T; cpuPercent: number; peakRssMb: number }> {
  if (warmupSeconds > 0) await drive(warmupSeconds)
  const watcher = watch(pid)
  const result = await drive(seconds)
  const usage = watcher.stop()
  return { result, cpuPercent: Math.round(usage.cpuPercent), peakRssMb: Math.round(usage.peakRssBytes / 2 ** 20) }
}

/** Warms up, then drives one scenario for `seconds` while watching the server process tree. */
export async function measureHttp(pid: number, options: WrkOptions & { warmupSeconds: number }): Promise<HttpResult> {
  const { result, ...usage } = await warmThenMeasure(pid, options.warmupSeconds, options.seconds, (seconds) =>
    wrk({ ...options, seconds }),
  )
  const ms = (us: number | undefined) => Number(((us ?? 0) / 1000).toFixed(2))
  return {
    requestsPerSecond: Math.round(((result.requests ?? 0) * 1e6) / (result.duration_us ?? 1)),
    p50Ms: ms(result.p50_us),
    p99Ms: ms(result.p99_us),
    maxMs: ms(result.max_us),
    requests: result.requests ?? 0,
    errors:
      (result.connect_errors ?? 0) + (result.read_errors ?? 0) + (result.write_errors ?? 0) + (result.timeouts ?? 0),
    non2xx: result.non_2xx ?? 0,
    ...usage,
  }
}

const AT_RATE = fileURLToPath(new URL('./at-rate.ts', import.meta.url))

/**
 * Reads random books at a fixed overall rate (autocannon in its own process: bench/at-rate.ts), for latency below
 * saturation. A warm-up at the same rate comes first, so that the measured part sees compiled code.
 */
export async function measureAtRate(
  pid: number,
  options: { url: string; books: number; token?: string; rate: number; connections: number; seconds: number } & {
    warmupSeconds: number
  },
): Promise<HttpResult & { targetRate: number }> {
  const { warmupSeconds, ...autocannonOptions } = options
  const { result, ...usage } = await warmThenMeasure(pid, warmupSeconds, options.seconds, async (seconds) => {
    const { stdout } = await run(process.execPath, [AT_RATE, JSON.stringify({ ...autocannonOptions, seconds })], {
      maxBuffer: 1 << 20,
    })
    // bench/at-rate.ts prints these fields of the result.
    return JSON.parse(stdout) as Pick<HttpResult, 'requests' | 'p50Ms' | 'p99Ms' | 'maxMs' | 'errors' | 'non2xx'>
  })
  return {
    targetRate: options.rate,
    requestsPerSecond: Math.round(result.requests / options.seconds),
    ...result,
    ...usage,
  }
}

export interface PgbenchResult {
  transactionsPerSecond: number
  meanLatencyMs: number
  failed: number
}

/** pgbench with custom scripts (weights allowed: file@9), prepared statements, `clients` connections. */
export async function pgbench(options: {
  databaseUrl: string
  scripts: string[]
  clients: number
  seconds: number
}): Promise<PgbenchResult> {
  const url = new URL(options.databaseUrl)
  const args = [
    '-n',
    '-M',
    'prepared',
    '-c',
    String(options.clients),
    '-j',
    '1',
    '-T',
    String(options.seconds),
    '-h',
    url.hostname,
    '-p',
    url.port || '5432',
    '-U',
    decodeURIComponent(url.username || 'postgres'),
    ...options.scripts.flatMap((script) => ['-f', script]),
    url.pathname.slice(1),
  ]
  const { stdout } = await run('pgbench', args, { env: { ...process.env, PGPASSWORD: url.password } })
  const number = (pattern: RegExp) => Number(pattern.exec(stdout)?.[1] ?? Number.NaN)
  return {
    transactionsPerSecond: Math.round(number(/tps = ([\d.]+) \(without initial connection time\)/)),
    meanLatencyMs: number(/latency average = ([\d.]+) ms/),
    failed: number(/number of failed transactions: (\d+)/) || 0,
  }
}
