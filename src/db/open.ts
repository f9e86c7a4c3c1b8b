// Opens the configured backend behind the Database seam, wrapped for metrics, tracing and debug logs when asked.
import type { Config } from '../config/config.ts'
import type { Logger } from '../logger.ts'
import type { Database, DatabaseObservers } from './database.ts'
import { instrumentDatabase } from './instrumented.ts'

export async function openDatabase(
  config: Config['database'],
  logger: Logger,
  { metrics, traced = false }: DatabaseObservers = {},
): Promise<Database> {
  // Imported on demand: a server deployment never loads PGlite's WebAssembly, and vice versa.
  const database =
    config.kind === 'postgres'
      ? (await import('./postgres.ts')).openPostgres(config)
      : await (await import('./pglite.ts')).openPglite(config.path)
  metrics?.dbPoolMaxConnections.set(config.kind === 'postgres' ? config.poolMax : 1)
  if (metrics === undefined && !traced && !config.debug) return database
  return instrumentDatabase(database, {
    metrics,
    logger: config.debug ? logger : undefined,
    target: traced ? targetOf(config) : undefined,
  })
}

function targetOf(config: Config['database']) {
  if (config.kind === 'embedded') return { name: 'postgres', address: 'pglite', port: 0 }
  const url = new URL(config.url)
  return { name: url.pathname.slice(1), address: url.hostname, port: Number(url.port || 5432) }
}
