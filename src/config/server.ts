// The process and its listener: address, timeouts, shutdown, load shedding, proxies, workers and time zone.
import { isIP } from 'node:net'
import { type Static, Type } from 'typebox'
import type { DatabaseEnv } from './database.ts'
import { parseDuration } from './duration.ts'
import { type Problem, problem } from './problems.ts'
import { Duration } from './variables.ts'

export const ServerEnvSchema = Type.Object({
  SERVER_HOST: Type.String({ default: '0.0.0.0', minLength: 1, description: 'Address to listen on' }),
  SERVER_PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 8080, description: 'Port to listen on' }),
  SERVER_TIMEOUT_READ: Duration('5s', 'Time allowed to receive the request headers, and again the body; then 408'),
  SERVER_TIMEOUT_WRITE: Duration(
    '10s',
    'A connection with a request in progress and no byte moving either way for this long is closed',
  ),
  SERVER_TIMEOUT_IDLE: Duration('65s', 'Keep-alive idle time; above the usual 60s of load balancers'),
  SERVER_SHUTDOWN_DELAY: Duration('0s', 'After SIGTERM, keep serving this long with /readyz at 503 before closing'),
  SERVER_SHUTDOWN_TIMEOUT: Duration(
    '15s',
    'Grace period for in-flight requests after SIGTERM; past it connections are cut and the exit code is 1',
  ),
  SERVER_BODY_LIMIT: Type.Integer({
    minimum: 1024,
    default: 65536,
    description: 'Largest request body in bytes (413 above it)',
  }),
  SERVER_MAX_PIPELINED: Type.Integer({
    minimum: 1,
    maximum: 1000,
    default: 4,
    description: 'Requests of one connection answered at once; later pipelined ones wait, and the socket is not read',
  }),
  SERVER_TRUST_PROXY: Type.Optional(
    Type.String({
      description:
        'Proxies whose X-Forwarded-For, -Proto and -Host are believed: their addresses or CIDR ranges, comma-separated, or a hop count; unset, the socket peer is the client',
    }),
  ),
  GRPC_PORT: Type.Integer({
    minimum: 0,
    maximum: 65535,
    default: 0,
    description:
      'Port of the native gRPC listener (HTTP/2 cleartext, with reflection and grpc.health.v1), 0 = off; Connect and gRPC-Web are on SERVER_PORT either way',
  }),
  WEB_CONCURRENCY: Type.Integer({
    minimum: 1,
    maximum: 64,
    default: 1,
    description:
      'Worker processes sharing the port (node:cluster), for hosts outside Kubernetes; more than 1 needs a PostgreSQL server',
  }),
  LOAD_SHED_EVENT_LOOP_DELAY: Duration(
    '1s',
    'While the event loop lags more than this, requests other than probes and /metrics get 503; 0 = never',
  ),
  TZ: Type.String({ default: 'UTC', description: 'Process time zone (API timestamps are always UTC)' }),
})
export type ServerEnv = Static<typeof ServerEnvSchema>

export function serverProblems(env: ServerEnv & Pick<DatabaseEnv, 'DATABASE_URL' | 'DB_HOST'>): Problem[] {
  const problems: Problem[] = []
  if (env.WEB_CONCURRENCY > 1 && env.DATABASE_URL === undefined && env.DB_HOST === undefined) {
    problems.push(
      problem(
        'WEB_CONCURRENCY',
        'more than one worker needs a PostgreSQL server (the embedded database is one process)',
      ),
    )
  }
  problems.push(...parseTrustProxy(env.SERVER_TRUST_PROXY).problems)
  if (env.GRPC_PORT !== 0 && env.GRPC_PORT === env.SERVER_PORT) {
    problems.push(problem('GRPC_PORT', 'must differ from SERVER_PORT (gRPC has a listener of its own)'))
  }
  if (env.TZ !== 'UTC' && !isTimeZone(env.TZ)) {
    problems.push(problem('TZ', 'must be an IANA time zone such as UTC or Asia/Singapore', { showValue: true }))
  }
  return problems
}

export function serverConfig(env: ServerEnv) {
  return {
    server: {
      host: env.SERVER_HOST,
      port: env.SERVER_PORT,
      /** undefined: no gRPC listener. */
      grpcPort: env.GRPC_PORT === 0 ? undefined : env.GRPC_PORT,
      readTimeoutMs: parseDuration(env.SERVER_TIMEOUT_READ),
      writeTimeoutMs: parseDuration(env.SERVER_TIMEOUT_WRITE),
      idleTimeoutMs: parseDuration(env.SERVER_TIMEOUT_IDLE),
      shutdownDelayMs: parseDuration(env.SERVER_SHUTDOWN_DELAY),
      shutdownTimeoutMs: parseDuration(env.SERVER_SHUTDOWN_TIMEOUT),
      bodyLimit: env.SERVER_BODY_LIMIT,
      maxPipelined: env.SERVER_MAX_PIPELINED,
      loadShedEventLoopDelayMs: parseDuration(env.LOAD_SHED_EVENT_LOOP_DELAY),
      workers: env.WEB_CONCURRENCY,
      trustProxy: parseTrustProxy(env.SERVER_TRUST_PROXY).trust,
    },
    timeZone: env.TZ,
  }
}

function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: name })
    return true
  } catch {
    return false
  }
}

/**
 * Whose forwarding headers count: no one (false), the nearest N hops whatever their address (a number), or the
 * peers within these addresses and ranges.
 */
export type TrustProxy = false | number | readonly string[]

function parseTrustProxy(text: string | undefined): { trust: TrustProxy; problems: Problem[] } {
  const name = 'SERVER_TRUST_PROXY'
  if (text === undefined) return { trust: false, problems: [] }
  if (/^\s*\d+\s*$/.test(text)) {
    const hops = Number(text)
    return hops >= 1
      ? { trust: hops, problems: [] }
      : { trust: false, problems: [problem(name, 'a hop count must be 1 or more; leave it unset to trust no proxy')] }
  }
  const entries = text.split(',').map((entry) => entry.trim())
  const problems = entries.flatMap((entry) => {
    const why = addressOrRangeProblem(entry)
    return why === undefined ? [] : [problem(name, why)]
  })
  return { trust: problems.length === 0 ? entries : false, problems }
}

/** Why an entry is not an IPv4 or IPv6 address or CIDR range, or undefined when it is one. */
function addressOrRangeProblem(entry: string): string | undefined {
  if (entry === '') return 'an entry is empty (list addresses or CIDR ranges separated by commas, or give a hop count)'
  const [address = '', prefix, ...rest] = entry.split('/')
  const family = isIP(address)
  if (family === 0 || rest.length > 0) {
    return `"${entry}" is not an IPv4 or IPv6 address or CIDR range (such as 10.0.0.5, 10.0.0.0/8 or fd00::/8), nor a hop count`
  }
  const bits = family === 4 ? 32 : 128
  // A /0 range would trust every peer, which is the same as letting every client choose its address.
  if (prefix !== undefined && !(/^\d{1,3}$/.test(prefix) && Number(prefix) >= 1 && Number(prefix) <= bits)) {
    return `"${entry}" needs a prefix length from 1 to ${bits}`
  }
  return undefined
}
