// A route serves one declared operation (src/admission/operation.ts), named in its config; its operationId,
// summary, description and security in the OpenAPI document all come from that declaration.
//
//   app.get('/:id', { config: { operation: OPERATIONS.getBook }, schema: { params, response } }, handler)
//
// A route without one is refused when the app is built (src/http/pipeline/operations.ts).
import type { Operation } from '../../admission/operation.ts'

export { declareOperations, type Operation } from '../../admission/operation.ts'
export { type Access, PUBLIC, requiresScope } from '../../auth/access.ts'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The operation this route serves. Required on every route. */
    operation?: Operation
  }
}
