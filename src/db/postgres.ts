// Server PostgreSQL through postgres.js: reads pipelined on a few connections, prepared statements, bounded pools.
import { readFileSync } from 'node:fs'
import { type ConnectionOptions, checkServerIdentity } from 'node:tls'
import postgres from 'postgres'
import type { Config } from '../config/config.ts'
import type { Database } from './database.ts'
import { isConnectionFailure, isTransientMidFlight } from './errors.ts'

type PostgresConfig = Extract<Config['database'], { kind: 'postgres' }>

const DATE_OID = 1082
const CIRCUIT_OPEN_MS = 500
const READ_ONLY = /^\s*SELECT\b/i

export function openPostgres(
  config: Pick<
    PostgresConfig,
    | 'url'
    | 'poolMax'
    | 'poolReads'
    | 'connectTimeoutMs'
    | 'statementTimeoutMs'
    | 'queryTimeoutMs'
    | 'preparedStatements'
  >,
): Database {
  // A transaction-mode pooler (PgBouncer) hands each statement to any server connection: named prepared
  // statements and session settings sent at start-up would not follow it.
  const prepare = config.preparedStatements
  const { url, ssl } = tlsOf(config.url)
  const pool = (max: number) =>
    postgres(url, {
      ...(ssl === undefined ? {} : { ssl }),
      max,
      connect_timeout: config.connectTimeoutMs / 1000,
      idle_timeout: 60,
      max_lifetime: 30 * 60,
      prepare,
      connection: {
        application_name: 'myapp',
        ...(config.statementTimeoutMs > 0 ? { statement_timeout: config.statementTimeoutMs } : {}),
      },
      // A calendar date is not an instant: keep it as the 'YYYY-MM-DD' text PostgreSQL sends.
      types: { calendarDate: { to: DATE_OID, from: [DATE_OID], serialize: String, parse: (text: string) => text } },
      onnotice: () => {},
      // Reconnect every 100-200 ms after a failure (the default backs off to 20 s): queries queued behind a
      // reconnect wait little, and service resumes soon after the server accepts connections again.
      backoff: () => 0.1 + Math.random() * 0.1,
    })
  // postgres.js pipelines the statements waiting on a connection: a few connections carrying many reads in flight
  // answer more of them than many connections carrying one each. Whatever holds a connection longer goes to the
  // rest of DB_POOL_MAX, so it never stalls the reads queued behind it: a transaction or session keeps its
  // connection until it ends, and a write waits for its commit to reach the disk, which PostgreSQL flushes for
  // many connections at once but for one connection's pipeline one commit at a time. With no connection left over,
  // one pool serves all.
  const split = config.poolReads < config.poolMax
  const reads = pool(split ? config.poolReads : config.poolMax)
  const others = split ? pool(config.poolMax - config.poolReads) : reads

  // statement_timeout only helps while the server runs; a stopped or unreachable one needs a client-side bound,
  // covering the wait for a pool connection too.
  const bounded = <T>(pending: postgres.PendingQuery<postgres.Row[]>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      // No pending.cancel(): cancelling a query still waiting for a connection wedged postgres.js's pool in a
      // crash test (it never recovered after the server came back); the statement_timeout ends it server-side.
      const timer = setTimeout(() => {
        reject(
          Object.assign(new Error(`no answer from PostgreSQL within ${config.queryTimeoutMs} ms`), {
            code: 'QUERY_TIMEOUT',
          }),
        )
      }, config.queryTimeoutMs)
      pending.then(
        (rows) => {
          clearTimeout(timer)
          resolve(rows as T)
        },
        (error: unknown) => {
          clearTimeout(timer)
          reject(error)
        },
      )
    })

  // A small circuit breaker: right after PostgreSQL proved unreachable, fail at once (503) instead of queueing
  // behind reconnect attempts; after CIRCUIT_OPEN_MS the next statements try again.
  let openUntil = 0
  const guarded = async <T>(run: () => Promise<T>): Promise<T> => {
    if (performance.now() < openUntil) {
      throw Object.assign(new Error('PostgreSQL was unreachable moments ago'), { code: 'CIRCUIT_OPEN' })
    }
    try {
      return await run()
    } catch (error) {
      if (isConnectionFailure(error)) openUntil = performance.now() + CIRCUIT_OPEN_MS
      throw error
    }
  }
  const params = (values: readonly unknown[]) => values as postgres.ParameterOrJSON<never>[]

  return {
    kind: 'postgres',
    async query(text, values = []) {
      const readOnly = READ_ONLY.test(text)
      const run = (sql: postgres.Sql) => bounded<never>(sql.unsafe(text, params(values), { prepare }))
      try {
        return await guarded(() => run(readOnly ? reads : others))
      } catch (error) {
        // A read that lost its connection mid-flight (server restart, failover, terminated backend) is retried
        // once, on a connection the failure did not touch (the reads' own one is still being replaced); a write
        // never is, since it may have committed before the answer was lost.
        if (!readOnly || !isTransientMidFlight(error)) throw error
        return run(others)
      }
    },
    transaction: (work) =>
      guarded(
        () =>
          others.begin((tx) =>
            work({ query: (text, values = []) => bounded(tx.unsafe(text, params(values), { prepare })) }),
          ) as Promise<never>,
      ),
    async withSession(work) {
      const reserved = await others.reserve()
      try {
        return await work({
          query: (text, params = []) => reserved.unsafe(text, params as postgres.ParameterOrJSON<never>[]),
          exec: async (script) => {
            await reserved.unsafe(script)
          },
        })
      } finally {
        reserved.release()
      }
    },
    async ping() {
      await reads`SELECT 1`
    },
    async close() {
      await Promise.all([reads.end({ timeout: 5 }), split ? others.end({ timeout: 5 }) : undefined])
    },
  }
}

/**
 * verify-full as libpq means it: the server's certificate must chain to the CA in the sslrootcert file (a
 * parameter postgres.js does not know, and would send to the server as a setting) or to the system's, and must
 * name the URL's host. The host is checked explicitly: for an IP address postgres.js sends no server name, and
 * Node would check the certificate against "localhost".
 */
function tlsOf(text: string): { url: string; ssl?: ConnectionOptions } {
  const url = new URL(text)
  const file = url.searchParams.get('sslrootcert')
  const mode = url.searchParams.get('sslmode') ?? (file === 'system' ? 'verify-full' : null)
  if (mode !== 'verify-full') {
    if (file !== null) throw new Error('sslrootcert needs sslmode=verify-full')
    return { url: text }
  }
  url.searchParams.delete('sslrootcert')
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1')
  return {
    url: url.toString(),
    ssl: {
      ...(file === null || file === 'system' ? {} : { ca: readFileSync(file, 'utf8') }),
      rejectUnauthorized: true,
      checkServerIdentity: (_servername, certificate) => checkServerIdentity(host, certificate),
    },
  }
}
