// 405 with Allow for a known path asked with another method (Fastify would answer 404).
import { METHODS } from 'node:http'
import type { FastifyInstance } from 'fastify'
import { PUBLIC } from '../toolkit/access.ts'
import { HttpError } from '../toolkit/problem.ts'

/**
 * Call before routes are registered; the returned function adds the 405 routes once they all are. Every method
 * Node's parser accepts gets one, so Fastify is taught the ones it does not route by default (TRACE and QUERY it
 * knows; PROPFIND, SEARCH, PURGE, CONNECT, … it does not).
 */
export function trackRouteMethods(app: FastifyInstance, { answerOptions }: { answerOptions: boolean }): () => void {
  for (const method of METHODS) if (!app.supportedMethods.includes(method)) app.addHttpMethod(method)
  const methodsByUrl = new Map<string, Set<string>>()
  app.addHook('onRoute', (route) => {
    const methods = methodsByUrl.get(route.url) ?? new Set<string>()
    for (const method of [route.method].flat()) methods.add(method)
    methodsByUrl.set(route.url, methods)
  })

  return () => {
    for (const [url, methods] of [...methodsByUrl]) {
      const allow = [...methods].sort().join(', ')
      const others = METHODS.filter((method) => !methods.has(method) && (answerOptions || method !== 'OPTIONS'))
      if (others.length === 0) continue
      const reject = async () => {
        throw new HttpError(405, `method not allowed; use ${allow}`, { headers: { allow } })
      }
      // Rejected in onRequest, before any body is read: its size, type or content cannot change the answer.
      // Public: the answer only names the methods the path has, which the document shows anyone.
      app.route({
        method: others,
        url,
        config: { access: PUBLIC },
        schema: { hide: true },
        onRequest: reject,
        handler: reject,
      })
    }
  }
}
