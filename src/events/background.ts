// What the events need besides requests, started by the server entry point: the relay to NATS when one is
// configured, with the outbox gauges, and the sweep that keeps the outbox to its retention.
import type { EventsConfig } from '../config/events.ts'
import type { Database } from '../db/database.ts'
import type { Logger } from '../logger.ts'
import type { Metrics } from '../observability/metrics.ts'
import { createOutbox } from './outbox.ts'
import { type Relay, startRelay } from './relay.ts'

const SWEEP_INTERVAL_MS = 10 * 60_000

export interface EventsBackground {
  stop(): Promise<void>
}

export function startEventsBackground({
  config,
  database,
  logger,
  metrics,
  traced = false,
}: {
  config: EventsConfig
  database: Database
  logger: Logger
  /** The app's metrics, when they are served. */
  metrics?: Metrics | undefined
  /** Tracing is on. */
  traced?: boolean
}): EventsBackground {
  const relay: Relay | undefined =
    config.nats === undefined
      ? undefined
      : startRelay({ database, nats: config.nats, logger, metrics, traced, maxAgeMs: config.retentionMs })
  const outbox = createOutbox(database)
  // Every replica with a relay reports the backlog, whichever holds the lock: the table is the same from each, and
  // one that can still be scraped tells while another is stuck. Without a relay no event is ever marked
  // published, so "unpublished" would be the whole feed: the gauges are left out.
  const stopReporting = relay === undefined ? undefined : metrics?.reportOutboxBacklog(() => outbox.backlog())
  // Every replica schedules the sweep; the database lets one at a time run it (an advisory lock).
  const sweep = () =>
    outbox.sweep(config.retentionMs, { relayed: relay !== undefined }).then(
      (deleted) => {
        if (deleted !== undefined && deleted > 0) logger.info({ deleted }, 'expired events deleted from the outbox')
      },
      (error: unknown) => logger.warn({ err: error }, 'could not delete expired events'),
    )
  const timer = setInterval(sweep, SWEEP_INTERVAL_MS).unref()
  return {
    async stop() {
      clearInterval(timer)
      stopReporting?.()
      await relay?.stop()
    },
  }
}
