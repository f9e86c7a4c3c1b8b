// Load shedding: when the event loop lags behind (CPU saturated), answer 503 with Retry-After at once rather than
// queue work that would time out anyway. Operations of the `probe` class (health, metrics, the documents) are
// exempt, so that the orchestrator can see what happens.
//
// The lag is how late a 50 ms timer fires, measured here rather than with @fastify/under-pressure: its histogram
// reads "no sample in this window" as an infinite delay, so a pause far below the threshold (a GC, start-up
// compilation) shed every request of the next window (56 of 60 creates got 503 at a 1 s threshold in a test).
import type { FastifyInstance } from 'fastify'
import { HttpError } from '../toolkit/problem.ts'

const TICK_MS = 50

export function registerLoadShedding(app: FastifyInstance, maxEventLoopDelayMs: number): void {
  if (maxEventLoopDelayMs === 0) return
  let lagMs = 0
  let ticker: NodeJS.Timeout | undefined
  // Measuring starts once the app is ready: building it (schema compilation) blocks the loop, which is not load.
  app.addHook('onReady', async () => {
    let expected = performance.now() + TICK_MS
    ticker = setInterval(() => {
      const now = performance.now()
      lagMs = Math.max(0, now - expected)
      expected = now + TICK_MS
    }, TICK_MS).unref()
  })
  app.addHook('onClose', async () => clearInterval(ticker))
  app.addHook('onRequest', (request, _reply, done) => {
    if (lagMs <= maxEventLoopDelayMs || request.routeOptions.config.operation?.limit === 'probe') return done()
    request.log.warn({ event_loop_lag_ms: Math.round(lagMs) }, 'shedding load')
    done(new HttpError(503, 'the service is overloaded; try again later', { headers: { 'retry-after': '2' } }))
  })
}
