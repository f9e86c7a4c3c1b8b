// The composition root: the one place the service is put together from its resources (src/resources.ts) and its
// shared layers. The entry point (src/server.ts), the tests and the scripts all build the service here, so what
// they run is what production runs.
import { type App, buildApp } from './app.ts'
import type { Config } from './config/config.ts'
import type { Database } from './db/database.ts'
import { startEventsBackground } from './events/background.ts'
import { eventsHttp } from './events/http/resource.ts'
import { createOutbox } from './events/outbox.ts'
import { startJobs } from './jobs/jobs.ts'
import type { Logger } from './logger.ts'
import type { Metrics } from './observability/metrics.ts'
import type { Resource } from './resource.ts'
import { catalogOf, RESOURCES } from './resources.ts'

export interface ServiceDependencies {
  config: Config
  /** Opened, and migrated, by the caller: the entry point waits for it, a test makes a fresh one. */
  database: Database
  logger: Logger
  metrics: Metrics
  /** What it serves: the service's resources, unless a test adds one of its own. */
  resources?: readonly Resource[]
}

export interface Service {
  app: App
  /**
   * Listens on SERVER_PORT (and GRPC_PORT), then, unless `background` is false, starts what runs besides requests:
   * the events relay (with NATS_URL), the outbox gauges, and every background job.
   */
  start(options?: { background?: boolean }): Promise<void>
  /** Stops serving (draining what is in flight), then the background work. The database stays open. */
  close(): Promise<void>
}

export async function createService({
  config,
  database,
  logger,
  metrics,
  resources = RESOURCES,
}: ServiceDependencies): Promise<Service> {
  const catalog = catalogOf(resources)
  const outbox = createOutbox(database, catalog)
  const parts = resources.map((resource) => resource.build({ database, logger, writes: config.writes }))
  const app = await buildApp({
    config,
    database,
    logger,
    metrics,
    http: [
      ...parts.flatMap((part) => (part.http === undefined ? [] : [part.http])),
      eventsHttp({ catalog, outbox, writeTimeoutMs: config.server.writeTimeoutMs }),
    ],
    rpc: parts.flatMap((part) => part.rpc ?? []),
  })

  let stopBackground: (() => Promise<void>) | undefined
  return {
    app,
    async start({ background = true } = {}) {
      await app.listen({ host: config.server.host, port: config.server.port })
      if (!background) return
      const events = startEventsBackground({
        config: config.events,
        database,
        catalog,
        outbox,
        logger,
        metrics: config.metrics.enabled ? metrics : undefined,
        traced: config.tracing.tracesUrl !== undefined,
      })
      const jobs = startJobs([...parts.flatMap((part) => part.jobs ?? []), ...events.jobs], { database, logger })
      stopBackground = async () => {
        jobs.stop()
        await events.stop()
      }
    },
    async close() {
      await app.close()
      await stopBackground?.()
    },
  }
}
