// The scenarios, each on the service (production mode), the bare server and pgbench in turn, every run starting
// from the seeded data (what creates added is deleted, then VACUUM ANALYZE); then /livez against a bare hello, and
// the cost of a /metrics scrape after the load.
import { BARE, type Context, roundsOf, SERVICE, type Section } from '../context.ts'
import { type HttpResult, type PgbenchResult, pgbench } from '../load.ts'
import { pgbenchScripts } from '../pgbench.ts'

export const SCENARIOS = ['read', 'list', 'list-filter', 'create', 'update', 'mix'] as const

export const scenarios: Section = {
  name: 'scenarios',
  about: 'every scenario on the service, the bare server and pgbench; /livez against a bare hello',
  async run(context: Context) {
    const { settings } = context
    const database = await context.database()
    const scripts = pgbenchScripts(context.workDir, settings.books)
    const http = roundsOf<HttpResult>((result) => result.requestsPerSecond)
    const pgbenchRuns = roundsOf<PgbenchResult>((result) => result.transactionsPerSecond)
    let metricsScrape = { meanMs: 0, bytes: 0 }
    // Every measurement is repeated BENCH_ROUNDS times, alternating, and the run with the median throughput is
    // reported: single runs on a shared 2-core machine vary too much to compare.
    for (let round = 1; round <= settings.rounds; round++) {
      context.say(`  round ${round} of ${settings.rounds}`)
      const service = await context.start('service', SERVICE, context.productionEnv(database.url))
      const bare = await context.start('bare', BARE, context.bareEnv(database.url))
      for (const scenario of SCENARIOS) {
        context.say(`    ${scenario}: service, bare, pgbench`)
        await database.reset()
        http.add(`service ${scenario}`, await context.drive(service, scenario, { token: context.jwt.token }))
        await database.reset()
        http.add(`bare ${scenario}`, await context.drive(bare, scenario))
        await database.reset()
        pgbenchRuns.add(
          scenario,
          await pgbench({
            databaseUrl: database.url,
            scripts: scripts[scenario] ?? [],
            clients: settings.connections,
            seconds: settings.seconds,
          }),
        )
      }
      await database.reset()
      context.say('    /livez and bare /hello')
      http.add('livez', await context.drive(service, 'path', { path: '/livez' }))
      http.add('hello', await context.drive(bare, 'path', { path: '/hello' }))
      if (round === 1) metricsScrape = await scrapeCost(service.url)
      await context.stop(service)
      await context.stop(bare)
    }
    return {
      scenarios: Object.fromEntries(
        SCENARIOS.map((scenario) => [
          scenario,
          {
            service: http.median(`service ${scenario}`),
            bare: http.median(`bare ${scenario}`),
            pgbench: pgbenchRuns.median(scenario),
          },
        ]),
      ),
      frameworkTax: { livez: http.median('livez'), hello: http.median('hello') },
      metricsScrape,
    }
  },
}

/** 200 sequential scrapes of /metrics: mean time and size. */
async function scrapeCost(url: string) {
  let bytes = 0
  const count = 200
  const started = performance.now()
  for (let i = 0; i < count; i++) bytes = (await (await fetch(`${url}/metrics`)).arrayBuffer()).byteLength
  return { meanMs: Number(((performance.now() - started) / count).toFixed(2)), bytes }
}
