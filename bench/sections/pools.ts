// Reads against the driver's limit: the service with its default pool and with single reads pipelined on one
// connection (DB_POOL_READS=1), next to the bare node:http server with its reads on one pipelined connection, on
// reads, creates and the 90/10 mix, alternating in every round.
import { BARE, type Context, rotated, roundsOf, SERVICE, type Section } from '../context.ts'
import type { HttpResult } from '../load.ts'

const SCENARIOS = ['read', 'create', 'mix'] as const
/** The reference of every ratio in the section's table and targets. */
export const PIPELINED_BARE = 'bare node:http, reads on 1 connection, writes on 9'
export const DEFAULT_POOLS = 'service, default pools'
export const PIPELINED_SERVICE = 'service, DB_POOL_READS=1'

const SETTINGS: { name: string; script: string; service: boolean; env: Record<string, string> }[] = [
  { name: DEFAULT_POOLS, script: SERVICE, service: true, env: {} },
  { name: PIPELINED_SERVICE, script: SERVICE, service: true, env: { DB_POOL_READS: '1' } },
  { name: PIPELINED_BARE, script: BARE, service: false, env: {} },
]

export const pools: Section = {
  name: 'pools',
  about: 'read, create and mix: the service with its default pool and with DB_POOL_READS=1, the bare server',
  async run(context: Context) {
    const database = await context.database()
    const http = roundsOf<HttpResult>((result) => result.requestsPerSecond)
    for (let round = 1; round <= context.settings.rounds; round++) {
      context.say(`  round ${round} of ${context.settings.rounds}`)
      for (const setting of rotated(SETTINGS, round)) {
        const env = setting.service
          ? context.productionEnv(database.url, setting.env)
          : { ...context.bareEnv(database.url), ...setting.env }
        const server = await context.start(setting.name, setting.script, env)
        for (const scenario of SCENARIOS) {
          context.say(`    ${setting.name}: ${scenario}`)
          await database.reset()
          const token = setting.service ? { token: context.jwt.token } : {}
          http.add(`${setting.name} ${scenario}`, await context.drive(server, scenario, token))
        }
        await context.stop(server)
      }
    }
    return {
      pools: {
        reference: PIPELINED_BARE,
        settings: Object.fromEntries(
          SETTINGS.map((setting) => [
            setting.name,
            Object.fromEntries(SCENARIOS.map((scenario) => [scenario, http.median(`${setting.name} ${scenario}`)])),
          ]),
        ),
      },
    }
  },
}
