// Draining: readiness turns 503 first, then responses close their connections so clients move on.
import type { FastifyInstance } from 'fastify'

export interface Drain {
  /** Marks the instance as leaving: /readyz answers 503 from now on. */
  begin(): void
  isDraining(): boolean
}

declare module 'fastify' {
  interface FastifyInstance {
    drain: Drain
  }
}

export function registerDrain(app: FastifyInstance): Drain {
  let draining = false
  const drain: Drain = {
    begin: () => {
      draining = true
    },
    isDraining: () => draining,
  }
  app.decorate('drain', drain)
  app.addHook('preClose', async () => drain.begin())
  // A request that arrived before the drain would otherwise keep its connection open for
  // SERVER_TIMEOUT_IDLE and hold up the exit.
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (draining) reply.header('connection', 'close')
    done(null, payload)
  })
  return drain
}
