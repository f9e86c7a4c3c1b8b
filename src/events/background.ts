// What the events need besides requests: the relay to NATS when one is configured, with the outbox gauges, and
// the job that keeps the outbox to its retention (run by src/jobs with the resources' jobs).
import type { EventsConfig } from '../config/events.ts'
import type { Database } from '../db/database.ts'
import type { Job } from '../jobs/jobs.ts'
import type { Logger } from '../logger.ts'
import type { Metrics } from '../observability/metrics.ts'
import type { EventCatalog } from './cloudevents.ts'
import { type Outbox, outboxSweep } from './outbox.ts'
import { type Relay, startRelay } from './relay.ts'

export interface EventsBackground {
  /** The outbox's retention sweep, for the jobs runner. */
  jobs: readonly Job[]
  stop(): Promise<void>
}

export function startEventsBackground({
  config,
  database,
  catalog,
  outbox,
  logger,
  metrics,
  traced = false,
}: {
  config: EventsConfig
  database: Database
  catalog: EventCatalog
  outbox: Outbox
  logger: Logger
  /** The app's metrics, when they are served. */
  metrics?: Metrics | undefined
  /** Tracing is on. */
  traced?: boolean
}): EventsBackground {
  const relay: Relay | undefined =
    config.nats === undefined
      ? undefined
      : startRelay({ database, catalog, nats: config.nats, logger, metrics, traced, maxAgeMs: config.retentionMs })
  // Every replica with a relay reports the backlog, whichever holds the lock: the table is the same from each, and
  // one that can still be scraped tells while another is stuck. Without a relay no event is ever marked
  // published, so "unpublished" would be the whole feed: the gauges are left out.
  const stopReporting = relay === undefined ? undefined : metrics?.reportOutboxBacklog(() => outbox.backlog())
  return {
    jobs: [outboxSweep(config.retentionMs, { relayed: relay !== undefined })],
    async stop() {
      stopReporting?.()
      await relay?.stop()
    },
  }
}
