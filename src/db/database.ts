// The one data-access seam: the same parametrised SQL runs on server PostgreSQL and on embedded PGlite.
import type { Config } from '../config/config.ts'
import type { Logger } from '../logger.ts'
import type { Metrics } from '../observability/metrics.ts'
import { instrumentDatabase } from './instrumented.ts'

export interface Queryable {
  /** Runs one parametrised statement ($1, $2, …) and returns its rows. */
  query<Row>(text: string, params?: readonly unknown[]): Promise<Row[]>
}

/** One dedicated connection, for work that needs session state such as advisory locks. */
export interface Session extends Queryable {
  /** Runs a script of several statements with no parameters (simple query protocol). */
  exec(script: string): Promise<void>
}

export interface Database extends Queryable {
  readonly kind: 'postgres' | 'embedded'
  /** Runs `work` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T>
  withSession<T>(work: (session: Session) => Promise<T>): Promise<T>
  /** Resolves when the database answers a trivial query. */
  ping(): Promise<void>
  close(): Promise<void>
}

export interface DatabaseObservers {
  /** Where statement timings go (the app's metrics); none for command-line tools. */
  metrics?: Metrics
  /** Trace each statement as a CLIENT span. */
  traced?: boolean
}

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
