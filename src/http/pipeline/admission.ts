// The admission step (src/admission/admission.ts) as an onRequest hook: it runs the step with what the request and
// its route declare, and translates the outcome into HTTP: RateLimit-* on every answer of a limited request, 401
// with WWW-Authenticate, 403 naming the scope, 429 with Retry-After.
import type { FastifyInstance } from 'fastify'
import type { Admission, Admit, Refusal } from '../../admission/admission.ts'
import type { BudgetState } from '../../admission/budgets.ts'
import { RPC_CALL, UNMATCHED } from '../../admission/operation.ts'
import type { Principal } from '../../auth/tokens.ts'
import { HttpError } from '../toolkit/problem.ts'

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified caller, when a bearer token was presented and accepted. */
    principal: Principal | undefined
  }
}

const REALM = 'myapp'
const CLIENT_CLOSED_REQUEST = 499

function challenge(error?: string, description?: string, scope?: string): string {
  const parts = [`realm="${REALM}"`]
  if (error) parts.push(`error="${error}"`)
  if (description) parts.push(`error_description="${description.replace(/"/g, "'")}"`)
  if (scope) parts.push(`scope="${scope}"`)
  return `Bearer ${parts.join(', ')}`
}

const budgetHeaders = (budget: BudgetState) => ({
  'ratelimit-limit': String(budget.limit),
  'ratelimit-remaining': String(budget.remaining),
  'ratelimit-reset': String(budget.resetSeconds),
})

function httpErrorOf(refusal: Refusal): HttpError {
  switch (refusal.kind) {
    case 'unauthenticated':
      return new HttpError(401, refusal.detail, {
        headers: { 'www-authenticate': challenge(refusal.error, refusal.error && refusal.detail) },
      })
    case 'forbidden':
      return new HttpError(403, refusal.detail, {
        headers: { 'www-authenticate': challenge('insufficient_scope', refusal.detail, refusal.scopes.join(' ')) },
      })
    case 'rate-limited':
    case 'token-budget-spent':
      return new HttpError(429, refusal.detail, {
        headers: { ...budgetHeaders(refusal.budget), 'retry-after': String(refusal.budget.resetSeconds) },
      })
  }
}

/** Register after load shedding and before anything that reads the body. */
export function registerAdmission(app: FastifyInstance, admit: Admit): void {
  app.decorateRequest('principal', undefined)
  app.addHook('onRequest', (request, reply, done) => {
    // The interceptor admits an RPC call, once its method is known.
    const operation = request.routeOptions.config.operation ?? UNMATCHED
    if (operation === RPC_CALL) return done()
    // A connection the client reset before Node learned its peer has no address for the step to key on, and the
    // answer goes nowhere: it ends here with 499, as nginx logs a client that closed first, and is no 5xx.
    if (request.ip === undefined) return done(new HttpError(CLIENT_CLOSED_REQUEST, 'the client closed the connection'))
    const answer = (admission: Admission) => {
      if (admission.budget !== undefined) reply.headers(budgetHeaders(admission.budget))
      request.principal = admission.principal
      done(admission.refusal === undefined ? undefined : httpErrorOf(admission.refusal))
    }
    const admission = admit({
      client: request.ip,
      authorization: request.headers.authorization,
      // The route's own declaration; a request that matched no route has none, and gets its 404 or 405.
      // The route's declared operation; a request that matched no route gets its 404 as UNMATCHED.
      operation,
      log: request.log,
    })
    // A callback hook that answers at once when the step did: one promise and microtask less per request.
    if (admission instanceof Promise) admission.then(answer, done)
    else answer(admission)
  })
}
