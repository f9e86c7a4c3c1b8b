// The one data-access seam: the same parametrised SQL runs on server PostgreSQL and on embedded PGlite.
// Types only, so that the backends and their wrappers can depend on it without an import cycle; open.ts builds one.
import type { Metrics } from '../observability/metrics.ts'

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
