// Entry point: parse config, open the database, serve until SIGTERM/SIGINT, then drain and exit.
import cluster from 'node:cluster'
import { setTimeout as sleep } from 'node:timers/promises'
import { clusterMetrics, runPrimary } from './cluster.ts'
import { describeConfig } from './config/config.ts'
import { loadConfigOrExit } from './config/load.ts'
import type { Database } from './db/database.ts'
import { EmbeddedFolderError, isDatabaseUnavailable } from './db/errors.ts'
import { openDatabase } from './db/open.ts'
import { createLogger, flushLogs, type Logger } from './logger.ts'
import { createMetrics } from './observability/metrics.ts'
import { startTracing } from './observability/tracing.ts'
import { createService } from './service.ts'

/**
 * Runs the start-up database step, waiting with capped exponential backoff while the database is unavailable,
 * so that a replica started before its database waits instead of crash-looping. SIGTERM still stops it.
 */
async function untilDatabaseAnswers(logger: Logger, step: () => Promise<void>) {
  const stop = () => process.exit(0)
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        await step()
        return
      } catch (error) {
        if (!isDatabaseUnavailable(error)) throw error
        const delayMs = Math.min(5000, 250 * 2 ** attempt)
        logger.warn({ err: error, attempt, retry_in_ms: delayMs }, 'database not reachable at start-up; waiting')
        await sleep(delayMs)
      }
    }
  } finally {
    process.off('SIGTERM', stop)
    process.off('SIGINT', stop)
  }
}

// The migrator (umzug) is loaded only when it is used: it is a sizeable part of the start-up's module graph.
const migrator = async (database: Database) => (await import('./db/migrator.ts')).createMigrator(database)

async function warnAboutPendingMigrations(database: Database, logger: Logger) {
  const pending = await (await migrator(database)).pending()
  if (pending.length > 0) {
    logger.warn({ pending }, 'migrations are pending: run "npm run migrate -- up" (or set DB_MIGRATE_ON_START=true)')
  }
}

async function main(): Promise<void> {
  const config = loadConfigOrExit()
  const logger = createLogger(config.log.level)
  if (cluster.isPrimary) logger.info({ config: describeConfig(config) }, 'starting')
  if (config.server.workers > 1 && cluster.isPrimary) {
    runPrimary(config.server.workers, logger)
    return
  }

  const metrics = createMetrics()
  if (cluster.isWorker) metrics.render = clusterMetrics(metrics.registry)
  const tracing = startTracing(config.tracing)
  const database = await openDatabase(config.database, logger, { metrics, traced: tracing !== undefined })
  await untilDatabaseAnswers(logger, async () => {
    if (config.database.kind === 'embedded' || config.database.migrateOnStart) {
      const applied = await (await migrator(database)).up()
      if (applied.length > 0) logger.info({ applied }, 'migrations applied')
    } else {
      await database.ping()
    }
  })

  const service = await createService({ config, database, logger, metrics })
  const { app } = service
  await service.start()
  // Pending migrations are only a warning here (the migrate Job applies them), so the check does not hold up
  // serving; it runs once the server listens.
  if (config.database.kind === 'postgres' && !config.database.migrateOnStart) {
    warnAboutPendingMigrations(database, logger).catch((error: unknown) =>
      logger.warn({ err: error }, 'could not check for pending migrations'),
    )
  }

  let stopping = false
  const stop = async (signal: NodeJS.Signals) => {
    if (stopping) return
    stopping = true
    const { shutdownDelayMs, shutdownTimeoutMs } = config.server
    app.drain.begin()
    if (shutdownDelayMs > 0) {
      logger.info({ signal, delay_ms: shutdownDelayMs }, 'shutting down: not ready, still serving')
      await sleep(shutdownDelayMs)
    }
    logger.info({ signal, grace_ms: shutdownTimeoutMs }, 'shutting down: draining in-flight requests')
    const deadline = setTimeout(() => {
      logger.error('grace period over; closing the remaining connections')
      app.server.closeAllConnections()
      void flushLogs(logger).then(() => process.exit(1))
    }, shutdownTimeoutMs)
    await service.close()
    await database.close()
    await tracing?.shutdown()
    clearTimeout(deadline)
    logger.info('stopped')
    await flushLogs(logger)
    process.exit(0)
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}

main().catch((error: unknown) => {
  // The embedded database folder is in use or not writable: the message says all, with no stack.
  if (error instanceof EmbeddedFolderError) {
    createLogger('info').fatal(error.message)
    process.exit(error.exitCode)
  }
  createLogger('info').fatal({ err: error }, 'start-up failed')
  process.exit(1)
})
