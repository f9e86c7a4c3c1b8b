// What each feature costs (read by id with everything on, everything off, each feature off alone), and scale-out
// on one machine with node:cluster workers.
import { type Context, rotated, roundsOf, SERVICE, type Section } from '../context.ts'
import type { HttpResult } from '../load.ts'

/** The same build with every optional feature off. */
const FEATURES_OFF = {
  LOG_LEVEL: 'warn',
  METRICS_ENABLED: 'false',
  OTEL_SDK_DISABLED: 'true',
  AUTH_MODE: 'none',
  AUTH_ALLOW_NONE: 'true',
  RATE_LIMIT_MAX: '0',
  LOAD_SHED_EVENT_LOOP_DELAY: '0',
}
const VARIANTS: Record<string, Record<string, string>> = {
  'all features on': {},
  'all features off': FEATURES_OFF,
  'only logging and metrics': { ...FEATURES_OFF, LOG_LEVEL: 'info', METRICS_ENABLED: 'true' },
  'without request logging': { LOG_LEVEL: 'warn' },
  'without metrics': { METRICS_ENABLED: 'false' },
  'without tracing': { OTEL_SDK_DISABLED: 'true' },
  'without authentication': { AUTH_MODE: 'none', AUTH_ALLOW_NONE: 'true' },
  'without rate limit': { RATE_LIMIT_MAX: '0' },
  '2 workers': { WEB_CONCURRENCY: '2' },
}

export const features: Section = {
  name: 'features',
  about: 'read by id with each feature off in turn, and with 2 workers',
  async run(context: Context) {
    const database = await context.database()
    const http = roundsOf<HttpResult>((result) => result.requestsPerSecond)
    const entries = Object.entries(VARIANTS)
    for (let round = 1; round <= context.settings.rounds; round++) {
      context.say(`  round ${round} of ${context.settings.rounds}`)
      for (const [name, overrides] of rotated(entries, round)) {
        const server = await context.start(`service-${name}`, SERVICE, context.productionEnv(database.url, overrides))
        context.say(`    read, ${name}`)
        await database.reset()
        const token = overrides.AUTH_MODE === 'none' ? {} : { token: context.jwt.token }
        http.add(name, await context.drive(server, 'read', token))
        await context.stop(server)
      }
    }
    return {
      features: Object.fromEntries(
        Object.keys(VARIANTS)
          .filter((name) => name !== '2 workers')
          .map((name) => [name, http.median(name)]),
      ),
      cluster: { '1 worker': http.median('all features on'), '2 workers': http.median('2 workers') },
    }
  },
}
