// Starts the real app on a random port against a fresh database of either backend, with its logs captured.
import type { AddressInfo } from 'node:net'
import type { App } from '../../src/app.ts'
import { parseConfig } from '../../src/config/config.ts'
import type { Database } from '../../src/db/database.ts'
import { createMigrator } from '../../src/db/migrator.ts'
import { openDatabase } from '../../src/db/open.ts'
import { createLogger } from '../../src/logger.ts'
import { createMetrics } from '../../src/observability/metrics.ts'
import { startTracing, type Tracing } from '../../src/observability/tracing.ts'
import type { Resource } from '../../src/resource.ts'
import { RESOURCES } from '../../src/resources.ts'
import { createService } from '../../src/service.ts'
import { assertConformsToContract } from './contract.ts'
import { createServerDatabase, postgresServerUnavailable, type ServerDatabase } from './postgres-server.ts'

const ALL_BACKENDS = ['postgres', 'embedded'] as const
export type Backend = (typeof ALL_BACKENDS)[number]

/** The backends the suites run on: TEST_BACKENDS (comma-separated), embedded only when unset, as `npm test` runs. */
export const BACKENDS: readonly Backend[] = selectBackends(process.env.TEST_BACKENDS ?? 'embedded')

function selectBackends(list: string): Backend[] {
  const names = list.split(',').map((name) => name.trim())
  const unknown = names.filter((name) => !(ALL_BACKENDS as readonly string[]).includes(name))
  if (unknown.length > 0)
    throw new Error(`TEST_BACKENDS: unknown ${unknown.join(', ')} (use ${ALL_BACKENDS.join(',')})`)
  return ALL_BACKENDS.filter((backend) => names.includes(backend))
}

export type LogRecord = Record<string, unknown> & { level: string; message?: string }

/** The reason to skip tests of this backend here, or undefined to run them. */
export async function skipReason(backend: Backend): Promise<string | false> {
  return backend === 'postgres' ? ((await postgresServerUnavailable()) ?? false) : false
}

export interface TestService {
  backend: Backend
  baseUrl: string
  app: App
  database: Database
  /** The PostgreSQL server database behind the service (postgres backend only). */
  serverDatabase: ServerDatabase | undefined
  logs: LogRecord[]
  /** Set when the env configured an OTLP endpoint. */
  tracing: Tracing | undefined
  /** fetch() against the service; every response is checked against the OpenAPI document. */
  fetch(path: string, init?: RequestInit): Promise<Response>
  close(): Promise<void>
}

/**
 * `events`: also run what src/server.ts starts beside the app, the events relay (with NATS_URL) and the background
 * jobs. `resources`: what the service serves, its own by default.
 */
export async function startService(
  backend: Backend,
  env: Record<string, string> = {},
  options: { events?: boolean; resources?: readonly Resource[] } = {},
): Promise<TestService> {
  const serverDatabase = backend === 'postgres' ? await createServerDatabase() : undefined
  const config = parseConfig({
    SERVER_HOST: '127.0.0.1',
    SERVER_PORT: '0',
    // Tests come from one address in bursts; the rate-limit tests set their own limit.
    RATE_LIMIT_MAX: '0',
    // Several services share this process, and starting one stalls the loop: shedding is tested on its own.
    LOAD_SHED_EVENT_LOOP_DELAY: '0',
    ...(serverDatabase === undefined ? { DB_EMBEDDED_PATH: 'memory://' } : { DATABASE_URL: serverDatabase.url }),
    ...env,
  })
  const logs: LogRecord[] = []
  const logger = createLogger('debug', { write: (line: string) => void logs.push(JSON.parse(line)) })
  const metrics = createMetrics()
  const tracing = startTracing(config.tracing)
  const database = await openDatabase(config.database, logger, {
    metrics,
    traced: config.tracing.tracesUrl !== undefined,
  })
  await createMigrator(database).up()
  const service = await createService({ config, database, logger, metrics, resources: options.resources ?? RESOURCES })
  const { app } = service
  await service.start({ background: options.events === true })
  const { port } = app.server.address() as AddressInfo
  const baseUrl = `http://127.0.0.1:${port}`

  return {
    backend,
    baseUrl,
    app,
    database,
    serverDatabase,
    logs,
    tracing,
    async fetch(path, init) {
      const response = await fetch(`${baseUrl}${path}`, init)
      await assertConformsToContract(init?.method ?? 'GET', path, response)
      return response
    },
    async close() {
      await service.close()
      await database.close()
      await tracing?.shutdown()
      await serverDatabase?.drop()
    },
  }
}

// Tests check response bodies field by field; an untyped JSON value keeps those checks short.
// biome-ignore lint/suspicious/noExplicitAny: JSON of any shape, asserted on by the caller
export type Json = any

export function bodyOf(response: Response): Promise<Json> {
  return response.json()
}

export function jsonRequest(method: string, body: unknown, headers: Record<string, string> = {}): RequestInit {
  return {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  }
}
