// Which database: a PostgreSQL server (DATABASE_URL, or the Go service's DB_* variables) or the embedded one, and
// how the service talks to it.
import { type Static, Type } from 'typebox'
import { parseDuration } from './duration.ts'
import { type Problem, problem } from './problems.ts'
import { Duration, Flag, Matching, Secret } from './variables.ts'

export const DatabaseEnvSchema = Type.Object({
  DATABASE_URL: Type.Optional(
    Secret(
      Matching('^postgres(ql)?://', 'must be a postgres:// or postgresql:// URL', {
        description: 'PostgreSQL URL; takes precedence over DB_*',
      }),
    ),
  ),
  DB_HOST: Type.Optional(Type.String({ minLength: 1, description: 'PostgreSQL host (with DB_USER, DB_NAME)' })),
  DB_PORT: Type.Integer({ minimum: 1, maximum: 65535, default: 5432, description: 'PostgreSQL port' }),
  DB_USER: Type.Optional(Type.String({ minLength: 1, description: 'PostgreSQL user' })),
  DB_PASS: Type.Optional(Secret(Type.String({ description: 'PostgreSQL password' }))),
  DB_NAME: Type.Optional(Type.String({ minLength: 1, description: 'PostgreSQL database' })),
  DB_SSLMODE: Type.Enum(['disable', 'prefer', 'require', 'verify-full'], {
    default: 'disable',
    description: "TLS to PostgreSQL, with DB_* or DATABASE_URL (the stricter of this and the URL's sslmode applies)",
  }),
  DB_SSLROOTCERT: Type.Optional(
    Type.String({
      minLength: 1,
      description:
        'CA certificate file (PEM) that verify-full checks the server against instead of the system CAs; the certificate must name the host dialled',
    }),
  ),
  DB_DEBUG: Flag('Log every SQL statement (text and duration, never parameters)'),
  DB_POOL_MAX: Type.Integer({
    minimum: 1,
    maximum: 1000,
    default: 10,
    description: 'Connections per process, both pools together',
  }),
  DB_POOL_READS: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: 1000,
      description:
        'Of DB_POOL_MAX, the connections that carry single reads (SELECT), pipelined; writes, transactions and sessions get the rest (unset, or none left: one pool for all)',
    }),
  ),
  DB_CONNECT_TIMEOUT: Duration('5s', 'Time allowed to open a connection; then 503'),
  DB_STATEMENT_TIMEOUT: Duration('10s', 'PostgreSQL statement_timeout of each connection; 0 sends none'),
  DB_QUERY_TIMEOUT: Duration(
    '12s',
    'Longest wait for any statement, enforced by the service since a hung server never answers; then 503',
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
})
export type DatabaseEnv = Static<typeof DatabaseEnvSchema>

export function databaseProblems(env: DatabaseEnv): Problem[] {
  const problems: Problem[] = []
  if (env.DATABASE_URL !== undefined) {
    try {
      new URL(env.DATABASE_URL)
    } catch {
      problems.push(problem('DATABASE_URL', 'must be a valid URL'))
    }
  } else if (env.DB_HOST !== undefined || env.DB_USER !== undefined || env.DB_NAME !== undefined) {
    for (const name of ['DB_HOST', 'DB_USER', 'DB_NAME'] as const) {
      if (env[name] === undefined) problems.push(problem(name, 'required when any of DB_HOST, DB_USER, DB_NAME is set'))
    }
  }
  if (env.DB_SSLROOTCERT !== undefined && env.DB_SSLMODE !== 'verify-full')
    problems.push(problem('DB_SSLROOTCERT', 'is used only with DB_SSLMODE=verify-full'))
  return problems
}

export function databaseConfig(env: DatabaseEnv) {
  const url =
    env.DATABASE_URL !== undefined
      ? withTls(env.DATABASE_URL, env)
      : env.DB_HOST === undefined
        ? undefined
        : withTls(urlFromParts(env), env)
  return url === undefined
    ? { kind: 'embedded' as const, path: env.DB_EMBEDDED_PATH, debug: env.DB_DEBUG }
    : {
        kind: 'postgres' as const,
        url,
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
}

/** The database settings as logged: where the server is, never the URL with its credentials. */
export function describeDatabase(database: ReturnType<typeof databaseConfig>) {
  if (database.kind === 'embedded') return database
  const url = new URL(database.url)
  return { ...database, url: undefined, host: url.hostname, port: url.port, name: url.pathname.slice(1) }
}

function urlFromParts(env: DatabaseEnv): string {
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
function withTls(text: string, env: DatabaseEnv): string {
  const url = new URL(text)
  const before = url.search
  const own = url.searchParams.get('sslmode')
  const rank = (mode: string) => SSL_MODES.indexOf(mode)
  if (own === null ? env.DB_SSLMODE !== 'disable' : rank(own) >= 0 && rank(env.DB_SSLMODE) > rank(own))
    url.searchParams.set('sslmode', env.DB_SSLMODE)
  if (env.DB_SSLROOTCERT !== undefined) url.searchParams.set('sslrootcert', env.DB_SSLROOTCERT)
  return url.search === before ? text : url.toString()
}
