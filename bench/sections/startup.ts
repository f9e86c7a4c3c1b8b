// Cold start and idle memory, against the bare server's. A first start has no compile cache, as in a new
// container; a restart reuses the one the first start wrote (NODE_COMPILE_CACHE, as the image sets it).
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { BARE, type Context, SERVICE, type Section } from '../context.ts'
import { type Server, treeUsage } from '../processes.ts'

export const startup: Section = {
  name: 'startup',
  about: 'cold start, restart with the compile cache, idle RSS; the bare server for reference',
  async run(context: Context) {
    const database = await context.database()
    const compileCache = join(context.workDir, 'compile-cache')
    const sharedCache = { NODE_COMPILE_CACHE: join(compileCache, 'shared') }
    const service = (name: string, cache: string) =>
      context.start(name, SERVICE, context.productionEnv(database.url, { NODE_COMPILE_CACHE: cache }))
    await context.stop(await service('service-prime', sharedCache.NODE_COMPILE_CACHE))
    return {
      startup: {
        service: await coldStarts(context, (i) => service('service-cold', join(compileCache, `first-${i}`))),
        restart: await coldStarts(context, () => service('service-restart', sharedCache.NODE_COMPILE_CACHE)),
        bare: await coldStarts(context, () => context.start('bare-cold', BARE, context.bareEnv(database.url))),
      },
    }
  },
}

/** Start-to-ready times and idle RSS (BENCH_IDLE_SECONDS after ready) over BENCH_COLD_STARTS starts; medians. */
async function coldStarts(context: Context, startOne: (i: number) => Promise<Server>) {
  const { coldStarts: runs, idleSeconds } = context.settings
  const startMs: number[] = []
  const idleRssMb: number[] = []
  for (let i = 0; i < runs; i++) {
    const server = await startOne(i)
    startMs.push(server.startMs)
    await sleep(idleSeconds * 1000)
    idleRssMb.push(treeUsage(server.pid).rssBytes / 2 ** 20)
    await context.stop(server)
  }
  const median = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b)
    return Number((sorted[Math.floor(sorted.length / 2)] ?? 0).toFixed(1))
  }
  return { startMs: median(startMs), idleRssMb: median(idleRssMb), runs }
}
