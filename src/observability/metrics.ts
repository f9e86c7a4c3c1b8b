// Prometheus metrics (prom-client): RED metrics per route template, database timings, the events outbox and its
// relay, runtime defaults.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'

// Seconds; finer at the low end, where a books API should live.
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
// Seconds from a change to JetStream's acknowledgement of its event: a poll interval while the relay keeps up,
// up to an outage's length while NATS is away.
const RELAY_LAG_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600]
// A scrape waits no longer than this for the outbox reading, then leaves its gauges out: /metrics must answer
// while the database is slow, locked or away (and the embedded one's single connection is busy with a batch).
const OUTBOX_READ_TIMEOUT_MS = 1000

/** The unpublished events, as read from the database at scrape time. */
export interface OutboxBacklog {
  depth: number
  oldestAgeSeconds: number
}

/** The value `promise` settles to within `ms`; undefined when it rejects or takes longer. */
function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms, undefined)
    promise.then(
      (value) => {
        clearTimeout(timer)
        resolve(value)
      },
      () => {
        clearTimeout(timer)
        resolve(undefined)
      },
    )
  })
}

/** One registry per app, so that tests can build several apps in one process. */
export function createMetrics() {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  // Gauges named like counters (promtool rejects them); the per-type gauges without _total sum to the same.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
    registry.removeSingleMetric(name)
  }
  let readOutbox: (() => Promise<OutboxBacklog>) | undefined
  let reading: Promise<OutboxBacklog> | undefined
  // Both gauges of a scrape share one reading, and so does a scrape that comes while the last one's is still
  // running: a slow database gets one of these queries at a time, never a queue of them.
  const outboxBacklog = (): Promise<OutboxBacklog | undefined> => {
    if (readOutbox === undefined) return Promise.resolve(undefined)
    reading ??= readOutbox().finally(() => {
      reading = undefined
    })
    return within(reading, OUTBOX_READ_TIMEOUT_MS)
  }
  return {
    registry,
    /** The text a scrape gets; a cluster worker replaces it with the whole cluster's (src/cluster.ts). */
    render: (): Promise<string> => registry.metrics(),
    httpRequestDuration: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'Time from request received to response sent, by route template',
      labelNames: ['method', 'route', 'status_code'] as const,
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    rpcServerDuration: new Histogram({
      name: 'rpc_server_duration_seconds',
      help: 'Time from call received to answer sent, by RPC method, protocol and status code',
      labelNames: ['rpc_method', 'protocol', 'code'] as const,
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    httpRequestsInFlight: new Gauge({
      name: 'http_requests_in_flight',
      help: 'Requests received and not yet answered',
      registers: [registry],
    }),
    dbQueryDuration: new Histogram({
      name: 'db_query_duration_seconds',
      help: 'Time for one SQL statement, by operation',
      labelNames: ['operation', 'outcome'] as const,
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    dbQueriesInFlight: new Gauge({
      name: 'db_queries_in_flight',
      help: 'SQL statements sent and not yet answered (connections in use, or queued for one)',
      registers: [registry],
    }),
    dbPoolMaxConnections: new Gauge({
      name: 'db_pool_max_connections',
      help: 'Connections the pool may open (DB_POOL_MAX; 1 for the embedded database)',
      registers: [registry],
    }),
    dbConnectionErrors: new Counter({
      name: 'db_connection_errors_total',
      help: 'Statements that failed because the database was unreachable or unavailable',
      registers: [registry],
    }),
    /**
     * Makes the outbox gauges read `read` at each scrape (src/events/background.ts, where a relay runs); until
     * then, after the returned function is called, and whenever a reading fails or is late, they are left out.
     */
    reportOutboxBacklog(read: () => Promise<OutboxBacklog>): () => void {
      readOutbox = read
      return () => {
        if (readOutbox === read) readOutbox = undefined
      }
    },
    // Every replica reads the same table: a cluster's workers report it once ('max'), not once each.
    eventsOutboxDepth: new Gauge({
      name: 'events_outbox_depth',
      help: 'Committed events JetStream has not acknowledged yet (counted up to a bound); only where a relay runs',
      aggregator: 'max',
      registers: [registry],
      async collect() {
        const backlog = await outboxBacklog()
        if (backlog === undefined) this.remove()
        else this.set(backlog.depth)
      },
    }),
    eventsOutboxOldestAge: new Gauge({
      name: 'events_outbox_oldest_unpublished_age_seconds',
      help: 'Age of the oldest event JetStream has not acknowledged yet, 0 when there is none; only where a relay runs',
      aggregator: 'max',
      registers: [registry],
      async collect() {
        const backlog = await outboxBacklog()
        if (backlog === undefined) this.remove()
        else this.set(backlog.oldestAgeSeconds)
      },
    }),
    eventsPublishErrors: new Counter({
      name: 'events_publish_errors_total',
      help: 'Attempts of the outbox relay to reach NATS or publish an event that failed, by reason',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    eventsRelayLag: new Histogram({
      name: 'events_relay_lag_seconds',
      help: "Time from a change's transaction to JetStream's acknowledgement of its event, per event published",
      buckets: RELAY_LAG_BUCKETS,
      registers: [registry],
    }),
    ready: new Gauge({
      name: 'myapp_ready',
      help: '1 when the last readiness check passed, 0 when it failed',
      registers: [registry],
    }),
  }
}
export type Metrics = ReturnType<typeof createMetrics>
