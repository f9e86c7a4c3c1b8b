// Latency below saturation: read by id at half of its maximum rate, on the service and, at the same rate, on the
// bare server (the latency this machine gives with no service in the way).
import { BARE, type Context, SERVICE, type Section } from '../context.ts'
import { measureAtRate } from '../load.ts'
import type { Results } from '../report.ts'

export const rate: Section = {
  name: 'rate',
  about: 'read by id at half its maximum rate, on the service and the bare server',
  async run(context: Context, results: Readonly<Results>) {
    const { settings } = context
    const database = await context.database()
    // The maximum the scenarios measured; measured here when they did not run.
    let maximum = results.scenarios?.read?.service?.requestsPerSecond
    if (maximum === undefined) {
      const server = await context.start('service-read', SERVICE, context.productionEnv(database.url))
      await database.reset()
      maximum = (await context.drive(server, 'read', { token: context.jwt.token })).requestsPerSecond
      await context.stop(server)
    }
    const halfRate = Math.max(1, Math.round(maximum / 2))
    const atRate = async (name: string, script: string, env: Record<string, string>, token?: string) => {
      const server = await context.start(name, script, env)
      await database.reset()
      const result = await measureAtRate(server.pid, {
        url: server.url,
        books: settings.books,
        ...(token === undefined ? {} : { token }),
        rate: halfRate,
        connections: settings.connections,
        seconds: settings.seconds,
        warmupSeconds: settings.warmupSeconds,
      })
      await context.stop(server)
      return result
    }
    context.say(`  read at ${halfRate} req/s: service, bare`)
    return {
      readAtHalfRate: await atRate('service-rate', SERVICE, context.productionEnv(database.url), context.jwt.token),
      bareAtHalfRate: await atRate('bare-rate', BARE, context.bareEnv(database.url)),
    }
  },
}
