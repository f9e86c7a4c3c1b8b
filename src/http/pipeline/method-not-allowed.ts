// 405 with Allow for a known path asked with another method (Fastify would answer 404).
import { METHODS } from 'node:http'
import type { FastifyInstance } from 'fastify'
import type { Operation } from '../../admission/operation.ts'
import { declareOperations, PUBLIC } from '../toolkit/operation.ts'
import { HttpError } from '../toolkit/problem.ts'

// Public: the answer only names the methods the path has, which the document shows anyone. Counted as the path's
// own operations are: a probe's path as a probe, any other as an API call.
const WRONG_METHOD = declareOperations({
  api: { summary: 'A method the path does not have', access: PUBLIC, effect: 'read' },
  probe: { summary: 'A method the probe path does not have', access: PUBLIC, effect: 'read', limit: 'probe' },
})

/**
 * Call before routes are registered; the returned function adds the 405 routes once they all are. Every method
 * Node's parser accepts gets one, so Fastify is taught the ones it does not route by default (TRACE and QUERY it
 * knows; PROPFIND, SEARCH, PURGE, CONNECT, … it does not).
 */
export function trackRouteMethods(app: FastifyInstance, { answerOptions }: { answerOptions: boolean }): () => void {
  for (const method of METHODS) if (!app.supportedMethods.includes(method)) app.addHttpMethod(method)
  const methodsByUrl = new Map<string, Set<string>>()
  const probeUrls = new Set<string>()
  const apiUrls = new Set<string>()
  app.addHook('onRoute', (route) => {
    const methods = methodsByUrl.get(route.url) ?? new Set<string>()
    for (const method of [route.method].flat()) methods.add(method)
    methodsByUrl.set(route.url, methods)
    const operation: Operation | undefined = route.config?.operation
    ;(operation?.limit === 'probe' ? probeUrls : apiUrls).add(route.url)
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
      app.route({
        method: others,
        url,
        config: { operation: probeUrls.has(url) && !apiUrls.has(url) ? WRONG_METHOD.probe : WRONG_METHOD.api },
        schema: { hide: true },
        onRequest: reject,
        handler: reject,
      })
    }
  }
}
