// A throwaway database on the PostgreSQL server for each test file, or a clear skip where there is no server.
import { randomBytes } from 'node:crypto'
import postgres from 'postgres'

export const ADMIN_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

/** Set by .ci/run: a missing server is then a failure, not a skip. */
export const REQUIRE_SERVICES = process.env.REQUIRE_TEST_SERVICES === 'true'

let reachable: Promise<string | undefined> | undefined

/** undefined when the server answers; otherwise why it does not, for the skip message. */
export function postgresServerUnavailable(): Promise<string | undefined> {
  reachable ??= (async () => {
    const sql = postgres(ADMIN_URL, { max: 1, connect_timeout: 3, onnotice: () => {} })
    try {
      await sql`SELECT 1`
      return undefined
    } catch (error) {
      const reason = `no PostgreSQL server at ${redact(ADMIN_URL)} (${(error as Error).message}); set TEST_DATABASE_URL`
      if (REQUIRE_SERVICES) throw new Error(`REQUIRE_TEST_SERVICES=true but ${reason}`)
      return reason
    } finally {
      await sql.end({ timeout: 1 })
    }
  })()
  return reachable
}

function redact(url: string): string {
  const parsed = new URL(url)
  if (parsed.password !== '') parsed.password = '***'
  return parsed.toString()
}

export interface ServerDatabase {
  url: string
  name: string
  drop(): Promise<void>
}

/** Creates an empty database with a unique name; drop() removes it, closing any connection left. */
export async function createServerDatabase(): Promise<ServerDatabase> {
  const name = `myapp_test_${randomBytes(6).toString('hex')}`
  const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {} })
  try {
    await admin.unsafe(`CREATE DATABASE ${name}`)
  } finally {
    await admin.end()
  }
  const url = new URL(ADMIN_URL)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    name,
    async drop() {
      const sql = postgres(ADMIN_URL, { max: 1, onnotice: () => {} })
      try {
        await sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      } finally {
        await sql.end()
      }
    },
  }
}
