// Every route serves a declared operation (src/admission/operation.ts), checked as the route is added: a route that
// names none stops the app from starting (secure by default: nothing starts open by omission), and the OpenAPI
// operation is written from the declaration, so the document shows what admission enforces.
import type { FastifyInstance } from 'fastify'
import type { Operation } from '../../admission/operation.ts'
import type { Access } from '../../auth/access.ts'
import { missingScope } from '../../auth/tokens.ts'
import { problemResponse } from '../toolkit/responses.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** What the routes a plugin adds without a config of ours serve, while routesServing() registers it. */
    undeclaredRoutesServe: Operation | undefined
  }
}

/**
 * Registers a plugin that adds routes of its own (the docs page, the CORS preflight): each serves `operation`.
 * Awaited, so that exactly the routes it adds meanwhile are its.
 */
export async function routesServing(
  app: FastifyInstance,
  operation: Operation,
  register: () => PromiseLike<unknown>,
): Promise<void> {
  app.undeclaredRoutesServe = operation
  try {
    await register()
  } finally {
    app.undeclaredRoutesServe = undefined
  }
}

/** OpenAPI operation security: a token with the scope when AUTH_MODE=jwt, nothing when authentication is off. */
export function operationSecurity(access: Access): Record<string, string[]>[] {
  return access.kind === 'public' ? [] : [...access.scopes.map((scope) => ({ bearerAuth: [scope] })), {}]
}

/** Call before any route is added. */
export function requireDeclaredOperations(app: FastifyInstance): void {
  app.decorate('undeclaredRoutesServe', undefined)
  app.addHook('onRoute', function declared(route) {
    let operation: Operation | undefined = route.config?.operation
    if (operation === undefined) {
      // Read through the instance the route is added on, which sees the app's own value.
      operation = this.undeclaredRoutesServe
      if (operation === undefined) {
        const methods = [route.method].flat().join(',')
        throw new Error(
          `${methods} ${route.url} serves no declared operation: give it config.operation (src/admission/operation.ts)`,
        )
      }
      route.config = { ...route.config, operation }
    }
    if (route.schema !== undefined && route.schema.hide !== true) {
      route.schema = {
        ...route.schema,
        operationId: operation.id,
        summary: operation.summary,
        ...(operation.description === undefined ? {} : { description: operation.description }),
        security: operationSecurity(operation.access),
        response: documented403(route.schema.response, operation.access),
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
  return { ...(responses as Responses), 403: problemResponse(403, missingScope(access.scopes), { instance }) }
}
