// Every route's access, checked when the route is added: under /v1 a route must declare it (secure by default: a
// new resource cannot start open by omission), and the OpenAPI document's security is made from the declaration,
// so the document shows what authentication enforces.
import type { FastifyInstance } from 'fastify'
import { missingScope } from '../../auth/tokens.ts'
import type { Access } from '../toolkit/access.ts'
import { problemResponse } from '../toolkit/responses.ts'

/** The API's own routes: none of them may leave its access unsaid. */
const API_PREFIX = '/v1/'

/** OpenAPI operation security: a token with the scope when AUTH_MODE=jwt, nothing when authentication is off. */
export function operationSecurity(access: Access): Record<string, string[]>[] {
  return access.kind === 'public' ? [] : [{ bearerAuth: [access.scope] }, {}]
}

/**
 * Call before any route is added. Routes outside /v1 that declare nothing (the docs page's assets, added by its
 * plugin) are public; every other route of the service declares PUBLIC explicitly.
 */
export function requireDeclaredAccess(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    const access = route.config?.access
    if (access === undefined) {
      if (`${route.url}/`.startsWith(API_PREFIX)) {
        const methods = [route.method].flat().join(',')
        throw new Error(
          `${methods} ${route.url} declares no access: give it config.access, requiresScope(…) or PUBLIC (src/http/toolkit/access.ts)`,
        )
      }
      return
    }
    if (route.schema !== undefined && route.schema.hide !== true) {
      route.schema = {
        ...route.schema,
        security: operationSecurity(access),
        response: documented403(route.schema.response, access),
      }
    }
  })
}

type Responses = Record<string, { content?: Record<string, { example?: { instance?: string } }> }>

/** A documented 403 names the scope this route needs, as the answer will. */
function documented403(responses: unknown, access: Access): unknown {
  const forbidden = (responses as Responses | undefined)?.[403]
  if (access.kind !== 'scope' || forbidden === undefined) return responses
  const instance = forbidden.content?.['application/problem+json']?.example?.instance ?? '/'
  return { ...(responses as Responses), 403: problemResponse(403, missingScope(access.scope), { instance }) }
}
