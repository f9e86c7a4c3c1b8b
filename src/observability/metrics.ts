// Prometheus metrics (prom-client): RED metrics per route template, database timings, runtime defaults.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'

// Seconds; finer at the low end, where a books API should live.
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/** One registry per app, so that tests can build several apps in one process. */
export function createMetrics() {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  // Gauges named like counters (promtool rejects them); the per-type gauges without _total sum to the same.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
    registry.removeSingleMetric(name)
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
    ready: new Gauge({
      name: 'myapp_ready',
      help: '1 when the last readiness check passed, 0 when it failed',
      registers: [registry],
    }),
  }
}
export type Metrics = ReturnType<typeof createMetrics>
