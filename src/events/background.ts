// What the events need besides requests, started by the server entry point: the relay to NATS when one is
// configured, and the sweep that keeps the outbox to its retention.
import type { EventsConfig } from '../config/events.ts'
import type { Database } from '../db/database.ts'
import type { Logger } from '../logger.ts'
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
}: {
  config: EventsConfig
  database: Database
  logger: Logger
}): EventsBackground {
  const relay: Relay | undefined =
    config.nats === undefined ? undefined : startRelay({ database, nats: config.nats, logger })
  const outbox = createOutbox(database)
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
      await relay?.stop()
    },
  }
}
