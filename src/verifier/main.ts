// Entry point of the verifier (npm run verifier): parse its configuration, follow the books' events, verify their
// images, until SIGTERM or SIGINT, then stop following and exit.
import { loadOrExit } from '../config/load.ts'
import { createLogger, flushLogs } from '../logger.ts'
import { startTracing } from '../observability/tracing.ts'
import { parseVerifierConfig } from './config.ts'
import { createVerifierService } from './service.ts'

// From its own environment only: a .env beside the clone is the books service's (its SERVER_PORT is not ours).
const config = loadOrExit(parseVerifierConfig, 'verifier', () => process.env)
const logger = createLogger(config.log.level, undefined, 'verifier')
const tracing = startTracing(config.tracing)
const service = createVerifierService({ config, logger })
const { port } = await service.start()
logger.info(
  { books: config.books.url, protocol: config.books.protocol, port, allow: config.images.allow },
  'verifier started',
)

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, async () => {
    logger.info({ signal }, 'stopping')
    await service.close()
    await tracing?.shutdown()
    await flushLogs(logger)
    process.exit(0)
  })
}
