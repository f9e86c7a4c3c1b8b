// The service's configuration: one TypeBox schema for the environment, parsed once at start-up.
import { existsSync, readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { parseEnv } from 'node:util'
import { Ajv, type ErrorObject } from 'ajv'
import { type Static, Type } from 'typebox'
import { GO_DURATION_PATTERN, parseDuration } from './duration.ts'

const Duration = (defaultValue: string, description: string) =>
  Type.String({ pattern: GO_DURATION_PATTERN, default: defaultValue, description })
const Flag = (description: string) => Type.Boolean({ default: false, description })

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

export const EnvSchema = Type.Object({
  SERVER_HOST: Type.String({ default: '0.0.0.0', minLength: 1, description: 'Address to listen on' }),
  SERVER_PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 8080, description: 'Port to listen on' }),
  SERVER_TIMEOUT_READ: Duration('5s', 'Time allowed to receive the request headers, and again the body'),
  SERVER_TIMEOUT_WRITE: Duration('10s', 'A connection with no bytes moving for this long is closed'),
  SERVER_TIMEOUT_IDLE: Duration('65s', 'Keep-alive idle time; above the usual 60s of load balancers'),
  SERVER_SHUTDOWN_DELAY: Duration('0s', 'After SIGTERM, keep serving this long with /readyz at 503 before closing'),
  SERVER_SHUTDOWN_TIMEOUT: Duration('15s', 'Grace period for in-flight requests after SIGTERM'),
  SERVER_BODY_LIMIT: Type.Integer({ minimum: 1024, default: 65536, description: 'Largest request body in bytes' }),
  SERVER_MAX_PIPELINED: Type.Integer({
    minimum: 1,
    maximum: 1000,
    default: 4,
    description: 'Requests of one connection answered at once; later pipelined ones wait, and the socket is not read',
  }),
  SERVER_TRUST_PROXY: Type.Optional(
    Type.String({
      description:
        'Proxies whose X-Forwarded-For, -Proto and -Host are believed: their addresses or CIDR ranges, comma-separated, or a hop count (none by default)',
    }),
  ),
  WEB_CONCURRENCY: Type.Integer({
    minimum: 1,
    maximum: 64,
    default: 1,
    description: 'Worker processes sharing the port (node:cluster), for hosts outside Kubernetes',
  }),
  SERVER_DEBUG: Flag('Debug logging (same as LOG_LEVEL=debug)'),
  CORS_ALLOWED_ORIGINS: Type.String({
    default: '',
    pattern: '^(https?://[^,\\s/]+)?(,https?://[^,\\s/]+)*$',
    description: 'Comma-separated origins allowed to call the API from a browser (none by default)',
  }),
  APP_ENV: Type.Enum(['development', 'production'], {
    default: 'development',
    description: 'production refuses to start without authentication unless AUTH_ALLOW_NONE=true',
  }),
  AUTH_MODE: Type.Enum(['none', 'jwt'], { default: 'none', description: 'none, or jwt: bearer tokens on /v1/books' }),
  AUTH_ALLOW_NONE: Flag('Allow AUTH_MODE=none with APP_ENV=production'),
  AUTH_JWT_ISSUER: Type.Optional(Type.String({ minLength: 1, description: 'Required iss claim (jwt mode)' })),
  AUTH_JWT_AUDIENCE: Type.Optional(Type.String({ minLength: 1, description: 'Required aud claim (jwt mode)' })),
  AUTH_JWT_JWKS_URL: Type.Optional(
    Type.String({ pattern: '^https?://', description: 'Signing keys (JWKS), cached and refreshed' }),
  ),
  AUTH_JWT_PUBLIC_KEY: Type.Optional(
    Type.String({ minLength: 1, description: 'Signing key as PEM (SPKI), instead of a JWKS' }),
  ),
  AUTH_JWT_ALGORITHMS: Type.String({
    default: 'RS256',
    pattern:
      '^(RS256|RS384|RS512|PS256|PS384|PS512|ES256|ES384|ES512|EdDSA)(,(RS256|RS384|RS512|PS256|PS384|PS512|ES256|ES384|ES512|EdDSA))*$',
    description: 'Accepted signature algorithms, comma-separated (never none or HMAC)',
  }),
  AUTH_CLOCK_SKEW: Duration('30s', 'Leeway for exp and nbf'),
  AUTH_PUBLIC_READS: Flag('GET requests need no token'),
  LOAD_SHED_EVENT_LOOP_DELAY: Duration('1s', 'Answer 503 while the event loop lags more than this; 0 = never'),
  RATE_LIMIT_MAX: Type.Integer({
    minimum: 0,
    default: 600,
    description: 'Requests per client per window on /v1; 0 = off',
  }),
  RATE_LIMIT_WINDOW: Duration('1m', 'Rate limit window'),
  AUTH_FAILURE_LIMIT: Type.Integer({
    minimum: 0,
    default: 20,
    description: 'Refused bearer tokens per client address per window before its tokens get 429; 0 = off',
  }),
  AUTH_FAILURE_WINDOW: Duration('1m', 'Window of AUTH_FAILURE_LIMIT'),
  REDIS_URL: Type.Optional(
    Type.String({ pattern: '^rediss?://', description: 'Redis shared by replicas for the rate limit (secret)' }),
  ),
  REQUIRE_IF_MATCH: Flag('PUT and DELETE without If-Match answer 428'),
  DOCS_ENABLED: Type.Boolean({ default: true, description: 'Serve the API reference page at /docs' }),
  LOG_LEVEL: Type.Optional(Type.Enum(LOG_LEVELS, { description: 'Log level (default info, debug with SERVER_DEBUG)' })),
  DATABASE_URL: Type.Optional(
    Type.String({ pattern: '^postgres(ql)?://', description: 'PostgreSQL URL; takes precedence over DB_*' }),
  ),
  DB_HOST: Type.Optional(Type.String({ minLength: 1, description: 'PostgreSQL host (with DB_USER, DB_NAME)' })),
  DB_PORT: Type.Integer({ minimum: 1, maximum: 65535, default: 5432, description: 'PostgreSQL port' }),
  DB_USER: Type.Optional(Type.String({ minLength: 1, description: 'PostgreSQL user' })),
  DB_PASS: Type.Optional(Type.String({ description: 'PostgreSQL password (secret)' })),
  DB_NAME: Type.Optional(Type.String({ minLength: 1, description: 'PostgreSQL database' })),
  DB_SSLMODE: Type.Enum(['disable', 'prefer', 'require', 'verify-full'], {
    default: 'disable',
    description: "TLS to PostgreSQL, with DB_* or DATABASE_URL (the stricter of this and the URL's sslmode applies)",
  }),
  DB_SSLROOTCERT: Type.Optional(
    Type.String({
      minLength: 1,
      description: 'CA certificate file (PEM) verify-full checks the server against, instead of the system CAs',
    }),
  ),
  DB_DEBUG: Flag('Log every SQL statement (text and duration, never parameters)'),
  DB_POOL_MAX: Type.Integer({ minimum: 1, maximum: 1000, default: 10, description: 'Connections per process' }),
  DB_POOL_READS: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: 1000,
      description:
        'Of DB_POOL_MAX, the connections that carry single reads (SELECT), pipelined; writes, transactions and sessions get the rest (unset, or none left: one pool for all)',
    }),
  ),
  DB_CONNECT_TIMEOUT: Duration('5s', 'Time allowed to open a connection'),
  DB_STATEMENT_TIMEOUT: Duration('10s', 'PostgreSQL statement_timeout of each connection; 0 sends none'),
  DB_QUERY_TIMEOUT: Duration(
    '12s',
    'Longest wait for any statement, enforced by the service (a hung server never answers)',
  ),
  DB_PREPARED_STATEMENTS: Type.Boolean({
    default: true,
    description: 'Named prepared statements; false behind PgBouncer in transaction mode',
  }),
  DB_MIGRATE_ON_START: Flag('Apply pending migrations at start-up (always on for the embedded database)'),
  DB_EMBEDDED_PATH: Type.String({
    default: './data/pglite',
    minLength: 1,
    description: 'Folder of the embedded database used when no server is configured; memory:// keeps it in memory',
  }),
  TZ: Type.String({ default: 'UTC', description: 'Process time zone (API timestamps are always UTC)' }),
  METRICS_ENABLED: Type.Boolean({ default: true, description: 'Serve Prometheus metrics at /metrics' }),
  OTEL_EXPORTER_OTLP_ENDPOINT: Type.Optional(
    Type.String({ pattern: '^https?://', description: 'OTLP/HTTP collector base URL; tracing is off without one' }),
  ),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: Type.Optional(
    Type.String({ pattern: '^https?://', description: 'Full OTLP/HTTP traces URL (default: endpoint + /v1/traces)' }),
  ),
  OTEL_EXPORTER_OTLP_HEADERS: Type.Optional(
    Type.String({ description: 'Headers for the collector, k1=v1,k2=v2 (secret)' }),
  ),
  OTEL_SERVICE_NAME: Type.String({ default: 'myapp', minLength: 1, description: 'service.name of the spans' }),
  OTEL_TRACES_SAMPLER: Type.Enum(
    [
      'always_on',
      'always_off',
      'traceidratio',
      'parentbased_always_on',
      'parentbased_always_off',
      'parentbased_traceidratio',
    ],
    {
      default: 'parentbased_traceidratio',
      description: "Which traces to record (default: a caller's choice, else a ratio)",
    },
  ),
  OTEL_TRACES_SAMPLER_ARG: Type.Number({
    minimum: 0,
    maximum: 1,
    default: 0.1,
    description: 'Ratio for *traceidratio (default 0.1: every tenth trace that starts here)',
  }),
  OTEL_BSP_SCHEDULE_DELAY: Type.Integer({
    minimum: 1,
    default: 5000,
    description: 'Milliseconds between span exports',
  }),
  OTEL_SDK_DISABLED: Flag('Turn tracing off even with an endpoint set'),
})
export type Env = Static<typeof EnvSchema>

const SECRET_VARIABLES = new Set([
  'DATABASE_URL',
  'DB_PASS',
  'OTEL_EXPORTER_OTLP_HEADERS',
  'REDIS_URL',
  'AUTH_JWT_PUBLIC_KEY',
])

export class ConfigError extends Error {
  readonly problems: readonly string[]
  constructor(problems: readonly string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`)
    this.name = 'ConfigError'
    this.problems = problems
  }
}

// No meta-schema check of our own schema at every start (see src/http/validation.ts).
const validateEnv = new Ajv({
  coerceTypes: true,
  useDefaults: true,
  allErrors: true,
  strict: false,
  validateSchema: false,
}).compile(EnvSchema)

/** Parses the environment into the frozen configuration, or throws a ConfigError naming every bad variable. */
export function parseConfig(source: Readonly<Record<string, string | undefined>>) {
  const known = Object.keys(EnvSchema.properties)
  // An empty assignment (FOO=) means "not set", as in most .env tooling.
  const env: Record<string, unknown> = {}
  for (const name of known) {
    const value = source[name]
    if (value !== undefined && value !== '') env[name] = value
  }

  const problems = validateEnv(env) ? [] : (validateEnv.errors ?? []).map((error) => describeProblem(error, source))
  const parsed = env as Env
  problems.push(...crossFieldProblems(parsed))
  if (problems.length > 0) throw new ConfigError([...new Set(problems)])
  return deepFreeze(toConfig(parsed))
}
export type Config = ReturnType<typeof parseConfig>

function describeProblem(error: ErrorObject, source: Readonly<Record<string, string | undefined>>): string {
  const name = error.instancePath.slice(1)
  const shown = SECRET_VARIABLES.has(name) ? '' : ` (got "${source[name]}")`
  switch (error.keyword) {
    case 'type':
      return `${name}: must be ${error.params.type === 'boolean' ? 'true or false' : `an ${error.params.type}`}${shown}`
    case 'pattern':
      if (name === 'DATABASE_URL') return `${name}: must be a postgres:// or postgresql:// URL`
      if (name.startsWith('OTEL_')) return `${name}: must be an http:// or https:// URL${shown}`
      if (name === 'REDIS_URL') return `${name}: must be a redis:// or rediss:// URL`
      if (name === 'AUTH_JWT_JWKS_URL') return `${name}: must be an http:// or https:// URL${shown}`
      if (name === 'AUTH_JWT_ALGORITHMS') return `${name}: must list RS*, PS*, ES* or EdDSA algorithms${shown}`
      if (name === 'CORS_ALLOWED_ORIGINS') {
        return `${name}: must be comma-separated origins such as https://app.example.com${shown}`
      }
      return `${name}: must be a Go duration such as 3s, 250ms or 1m30s${shown}`
    case 'enum':
      return `${name}: must be one of ${(error.params.allowedValues as string[]).join(', ')}${shown}`
    case 'minimum':
    case 'maximum':
      return `${name}: must be ${error.keyword === 'minimum' ? '>=' : '<='} ${error.params.limit}${shown}`
    default:
      return `${name}: ${error.message ?? 'is invalid'}${shown}`
  }
}

function crossFieldProblems(env: Env): string[] {
  const problems: string[] = []
  if (env.DATABASE_URL !== undefined) {
    try {
      new URL(env.DATABASE_URL)
    } catch {
      problems.push('DATABASE_URL: must be a valid URL')
    }
  } else if (env.DB_HOST !== undefined || env.DB_USER !== undefined || env.DB_NAME !== undefined) {
    for (const name of ['DB_HOST', 'DB_USER', 'DB_NAME'] as const) {
      if (env[name] === undefined) problems.push(`${name}: required when any of DB_HOST, DB_USER, DB_NAME is set`)
    }
  }
  if (env.AUTH_MODE === 'jwt') {
    for (const name of ['AUTH_JWT_ISSUER', 'AUTH_JWT_AUDIENCE'] as const) {
      if (env[name] === undefined) problems.push(`${name}: required when AUTH_MODE=jwt`)
    }
    if ((env.AUTH_JWT_JWKS_URL === undefined) === (env.AUTH_JWT_PUBLIC_KEY === undefined)) {
      problems.push(
        'AUTH_JWT_JWKS_URL: set exactly one of AUTH_JWT_JWKS_URL and AUTH_JWT_PUBLIC_KEY when AUTH_MODE=jwt',
      )
    }
  } else if (env.APP_ENV === 'production' && !env.AUTH_ALLOW_NONE) {
    problems.push(
      'AUTH_MODE: must be jwt when APP_ENV=production (or set AUTH_ALLOW_NONE=true to run without authentication)',
    )
  }
  if (env.WEB_CONCURRENCY > 1 && env.DATABASE_URL === undefined && env.DB_HOST === undefined) {
    problems.push(
      'WEB_CONCURRENCY: more than one worker needs a PostgreSQL server (the embedded database is one process)',
    )
  }
  problems.push(...parseTrustProxy(env.SERVER_TRUST_PROXY).problems)
  if (env.DB_SSLROOTCERT !== undefined && env.DB_SSLMODE !== 'verify-full')
    problems.push('DB_SSLROOTCERT: is used only with DB_SSLMODE=verify-full')
  if (env.TZ !== 'UTC' && !isTimeZone(env.TZ))
    problems.push(`TZ: must be an IANA time zone such as UTC or Asia/Singapore (got "${env.TZ}")`)
  return problems
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

function parseTrustProxy(text: string | undefined): { trust: TrustProxy; problems: string[] } {
  const name = 'SERVER_TRUST_PROXY'
  if (text === undefined) return { trust: false, problems: [] }
  if (/^\s*\d+\s*$/.test(text)) {
    const hops = Number(text)
    return hops >= 1
      ? { trust: hops, problems: [] }
      : { trust: false, problems: [`${name}: a hop count must be 1 or more; leave it unset to trust no proxy`] }
  }
  const entries = text.split(',').map((entry) => entry.trim())
  const problems = entries.flatMap((entry) => {
    const problem = addressOrRangeProblem(entry)
    return problem === undefined ? [] : [`${name}: ${problem}`]
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

function toConfig(env: Env) {
  const server = {
    host: env.SERVER_HOST,
    port: env.SERVER_PORT,
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
  }
  const log = { level: env.LOG_LEVEL ?? (env.SERVER_DEBUG ? 'debug' : 'info') }
  const databaseUrl =
    env.DATABASE_URL !== undefined
      ? withTls(env.DATABASE_URL, env)
      : env.DB_HOST === undefined
        ? undefined
        : withTls(urlFromParts(env), env)
  const database =
    databaseUrl === undefined
      ? { kind: 'embedded' as const, path: env.DB_EMBEDDED_PATH, debug: env.DB_DEBUG }
      : {
          kind: 'postgres' as const,
          url: databaseUrl,
          poolMax: env.DB_POOL_MAX,
          // One pool unless asked: on one read connection every read waits behind the slowest one pipelined before it.
          poolReads: env.DB_POOL_READS ?? env.DB_POOL_MAX,
          connectTimeoutMs: parseDuration(env.DB_CONNECT_TIMEOUT),
          statementTimeoutMs: parseDuration(env.DB_STATEMENT_TIMEOUT),
          queryTimeoutMs: parseDuration(env.DB_QUERY_TIMEOUT),
          preparedStatements: env.DB_PREPARED_STATEMENTS,
          migrateOnStart: env.DB_MIGRATE_ON_START,
          debug: env.DB_DEBUG,
        }
  const tracesUrl =
    env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ??
    (env.OTEL_EXPORTER_OTLP_ENDPOINT === undefined
      ? undefined
      : `${env.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, '')}/v1/traces`)
  const tracing = {
    tracesUrl: env.OTEL_SDK_DISABLED ? undefined : tracesUrl,
    headers: parseHeaders(env.OTEL_EXPORTER_OTLP_HEADERS),
    serviceName: env.OTEL_SERVICE_NAME,
    sampler: env.OTEL_TRACES_SAMPLER,
    samplerRatio: env.OTEL_TRACES_SAMPLER_ARG,
    exportDelayMs: env.OTEL_BSP_SCHEDULE_DELAY,
  }
  return {
    server,
    log,
    database,
    docs: { enabled: env.DOCS_ENABLED },
    books: { requireIfMatch: env.REQUIRE_IF_MATCH },
    auth:
      env.AUTH_MODE === 'jwt'
        ? {
            mode: 'jwt' as const,
            issuer: env.AUTH_JWT_ISSUER as string,
            audience: env.AUTH_JWT_AUDIENCE as string,
            jwksUrl: env.AUTH_JWT_JWKS_URL,
            publicKey: env.AUTH_JWT_PUBLIC_KEY,
            algorithms: env.AUTH_JWT_ALGORITHMS.split(','),
            clockSkewSeconds: parseDuration(env.AUTH_CLOCK_SKEW) / 1000,
            publicReads: env.AUTH_PUBLIC_READS,
          }
        : { mode: 'none' as const },
    environment: env.APP_ENV,
    rateLimit: {
      max: env.RATE_LIMIT_MAX,
      windowMs: parseDuration(env.RATE_LIMIT_WINDOW),
      redisUrl: env.REDIS_URL,
      namespace: 'myapp-rate-limit:',
      authFailures: { max: env.AUTH_FAILURE_LIMIT, windowMs: parseDuration(env.AUTH_FAILURE_WINDOW) },
    },
    cors: { origins: env.CORS_ALLOWED_ORIGINS.split(',').filter((origin) => origin !== '') },
    metrics: { enabled: env.METRICS_ENABLED },
    tracing,
    timeZone: env.TZ,
  }
}

/** OTEL_EXPORTER_OTLP_HEADERS: comma-separated key=value pairs, values URL-encoded (the OTel spec's format). */
function parseHeaders(text: string | undefined): Record<string, string> {
  const headers: Record<string, string> = {}
  for (const pair of (text ?? '').split(',')) {
    const at = pair.indexOf('=')
    if (at > 0) headers[pair.slice(0, at).trim()] = decodeURIComponent(pair.slice(at + 1).trim())
  }
  return headers
}

function urlFromParts(env: Env): string {
  const url = new URL('postgres://localhost')
  url.hostname = env.DB_HOST as string
  url.port = String(env.DB_PORT)
  url.username = env.DB_USER as string
  url.password = env.DB_PASS ?? ''
  url.pathname = `/${env.DB_NAME}`
  return url.toString()
}

// Weakest first: libpq's modes, of which DB_SSLMODE offers four.
const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']

/**
 * DB_SSLMODE and DB_SSLROOTCERT applied to a PostgreSQL URL, as libpq's sslmode and sslrootcert parameters. A URL
 * that names its own sslmode keeps it unless DB_SSLMODE is stricter, so neither can weaken the other.
 */
function withTls(text: string, env: Env): string {
  const url = new URL(text)
  const before = url.search
  const own = url.searchParams.get('sslmode')
  const rank = (mode: string) => SSL_MODES.indexOf(mode)
  if (own === null ? env.DB_SSLMODE !== 'disable' : rank(own) >= 0 && rank(env.DB_SSLMODE) > rank(own))
    url.searchParams.set('sslmode', env.DB_SSLMODE)
  if (env.DB_SSLROOTCERT !== undefined) url.searchParams.set('sslrootcert', env.DB_SSLROOTCERT)
  return url.search === before ? text : url.toString()
}

/** What is safe to log about the configuration: everything except credentials. */
export function describeConfig(config: Config) {
  const { database } = config
  const tracing = { ...config.tracing, headers: Object.keys(config.tracing.headers) }
  const rateLimit = { ...config.rateLimit, redisUrl: config.rateLimit.redisUrl === undefined ? undefined : '[set]' }
  if (database.kind === 'embedded') return { ...config, tracing, rateLimit }
  const url = new URL(database.url)
  return {
    ...config,
    tracing,
    rateLimit,
    database: { ...database, url: undefined, host: url.hostname, port: url.port, name: url.pathname.slice(1) },
  }
}

/** The process environment merged over a .env file in the working directory (real variables win). */
export function readEnvironment(
  env: NodeJS.ProcessEnv = process.env,
  dotenvPath = '.env',
): Record<string, string | undefined> {
  const fromFile = existsSync(dotenvPath) ? parseEnv(readFileSync(dotenvPath, 'utf8')) : {}
  return { ...fromFile, ...env }
}

function deepFreeze<T extends object>(value: T): Readonly<T> {
  for (const child of Object.values(value)) {
    if (child !== null && typeof child === 'object') deepFreeze(child)
  }
  return Object.freeze(value)
}
