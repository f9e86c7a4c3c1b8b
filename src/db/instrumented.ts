// Every statement measured (db_query_duration_seconds), traced as a CLIENT span when tracing is on, and logged
// with DB_DEBUG. One wrapper, so both backends are observed the same way.
import { SpanKind, trace } from '@opentelemetry/api'
import {
  ATTR_DB_NAMESPACE,
  ATTR_DB_OPERATION_NAME,
  ATTR_DB_QUERY_TEXT,
  ATTR_DB_SYSTEM_NAME,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
} from '@opentelemetry/semantic-conventions'
import type { Logger } from '../logger.ts'
import type { Metrics } from '../observability/metrics.ts'
import { endingSpan, tracer } from '../observability/tracing.ts'
import type { Database, Queryable } from './database.ts'
import { isDatabaseUnavailable } from './errors.ts'

export interface Instrumentation {
  metrics?: Metrics | undefined
  /** DB_DEBUG: log each statement's text and duration (never its parameters, which may hold personal data). */
  logger?: Logger | undefined
  /** Set when tracing is on: where the statements go, for the span attributes. */
  target?: { name: string; address: string; port: number } | undefined
}

// A write that also writes its event (WITH changed AS (UPDATE …) INSERT …) is named by its first statement.
const operationOf = (text: string) =>
  (/^\s*WITH\s+\w+\s+AS\s*\(\s*(\w+)/i.exec(text) ?? /^\s*(\w+)/.exec(text))?.[1]?.toUpperCase() ?? 'UNKNOWN'

export function instrumentDatabase(database: Database, { metrics, logger, target }: Instrumentation): Database {
  const log = logger?.child({ component: 'db' })

  const measured =
    (run: Queryable['query']): Queryable['query'] =>
    async <Row>(text: string, params?: readonly unknown[]) => {
      const operation = operationOf(text)
      const started = performance.now()
      metrics?.dbQueriesInFlight.inc()
      let outcome = 'error'
      try {
        const rows = await run<Row>(text, params)
        outcome = 'ok'
        return rows
      } catch (error) {
        if (isDatabaseUnavailable(error)) metrics?.dbConnectionErrors.inc()
        throw error
      } finally {
        const seconds = (performance.now() - started) / 1000
        metrics?.dbQueriesInFlight.dec()
        metrics?.dbQueryDuration.observe({ operation, outcome }, seconds)
        log?.info({ sql: text, duration_ms: Number((seconds * 1000).toFixed(3)) }, 'query')
      }
    }

  const traced =
    (run: Queryable['query']): Queryable['query'] =>
    <Row>(text: string, params?: readonly unknown[]) => {
      if (target === undefined) return run<Row>(text, params)
      // Inside a request whose trace is not sampled, a child span would be dropped anyway: skip making it.
      if (trace.getActiveSpan()?.isRecording() === false) return run<Row>(text, params)
      const operation = operationOf(text)
      return tracer().startActiveSpan(
        `${operation} ${target.name}`,
        {
          kind: SpanKind.CLIENT,
          attributes: {
            [ATTR_DB_SYSTEM_NAME]: 'postgresql',
            [ATTR_DB_OPERATION_NAME]: operation,
            [ATTR_DB_QUERY_TEXT]: text,
            [ATTR_DB_NAMESPACE]: target.name,
            [ATTR_SERVER_ADDRESS]: target.address,
            [ATTR_SERVER_PORT]: target.port,
          },
        },
        (span) => endingSpan(span, () => run<Row>(text, params)),
      )
    }

  const instrument = (run: Queryable['query']) => traced(measured(run))
  return {
    kind: database.kind,
    query: instrument((text, params) => database.query(text, params)),
    transaction: (work) =>
      database.transaction((tx) => work({ query: instrument((text, params) => tx.query(text, params)) })),
    withSession: (work) =>
      database.withSession((session) =>
        work({ ...session, query: instrument((text, params) => session.query(text, params)) }),
      ),
    ping: () => database.ping(),
    close: () => database.close(),
  }
}
