// An operation, declared once by the resource that owns it: who may call it, which budget it counts against, and
// whether it only reads. The REST route and the RPC method that serve it both point at this one declaration; the
// admission step, load shedding and the OpenAPI document read it there, and nothing decides by the URL's text.
//
//   export const OPERATIONS = declareOperations({
//     getBook: { summary: 'Read a book', access: requiresScope('books:read'), effect: 'read' },
//     …
//   })
//   app.get('/:id', { config: { operation: OPERATIONS.getBook }, schema }, handler)   // REST
//   operations: { getBook: OPERATIONS.getBook }                                      // RPC, by method name
import { type Access, PUBLIC } from '../auth/access.ts'

/**
 * `api`: counted in the caller's request budget, and shed when the service is overloaded. `probe`: neither, so that
 * the orchestrator, the scraper and the docs page see an overloaded replica as it is.
 */
export type LimitClass = 'api' | 'probe'

export interface Operation {
  /** The operation's name: the OpenAPI operationId, and in logs and tests. */
  readonly id: string
  readonly summary: string
  readonly description?: string
  readonly access: Access
  /** `read`: no side effect, which AUTH_PUBLIC_READS opens without a token. */
  readonly effect: 'read' | 'write'
  readonly limit: LimitClass
}

export type OperationDeclaration = Omit<Operation, 'id' | 'limit'> & { readonly limit?: LimitClass }

/** Names each declaration by its key; `limit` is `api` unless it says otherwise. */
export function declareOperations<const Names extends string>(
  declarations: Record<Names, OperationDeclaration>,
): Readonly<Record<Names, Operation>> {
  const operations = {} as Record<Names, Operation>
  for (const id of Object.keys(declarations) as Names[]) {
    operations[id] = Object.freeze({ limit: 'api', ...declarations[id], id })
  }
  return Object.freeze(operations)
}

const BUILT_IN = declareOperations({
  /** What a request that matched no route is admitted as: open (it gets its 404), and counted like any API call. */
  unmatched: { summary: 'No such route', access: PUBLIC, effect: 'read' },
  /**
   * What the HTTP routes of the RPC doors (Connect and gRPC-Web on the HTTP port) serve as routes: the admission
   * step runs in the RPC interceptor instead, once the method, and so its own operation, is known.
   */
  rpcCall: { summary: 'A Connect or gRPC-Web call, admitted by its method', access: PUBLIC, effect: 'read' },
})
export const UNMATCHED: Operation = BUILT_IN.unmatched
export const RPC_CALL: Operation = BUILT_IN.rpcCall
