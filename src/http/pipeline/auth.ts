// AUTH_MODE=jwt: bearer tokens on every route that declares a scope (src/http/toolkit/access.ts), verified by jose
// (pinned algorithms, iss, aud, exp, nbf). 401 with WWW-Authenticate when the token is missing or bad, 403 without
// the route's scope;
// 429 for a client that has used up its budget of refused tokens (AUTH_FAILURE_LIMIT): until its window ends, no
// new token of that client is checked, and only those verified here before are honoured. Only refused tokens count.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { bearerToken, missingScope, type Principal, TokenRejected, type TokenVerifier } from '../../auth/tokens.ts'
import type { Config } from '../../config/config.ts'
import { HttpError } from '../toolkit/problem.ts'
import type { AuthFailureBudget } from './rate-limit.ts'

export type { Principal }

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified caller, when a bearer token was presented and accepted. */
    principal: Principal | undefined
  }
}

const REALM = 'myapp'
const READ_METHODS = new Set(['GET', 'HEAD'])

function challenge(error?: string, description?: string, scope?: string): string {
  const parts = [`realm="${REALM}"`]
  if (error) parts.push(`error="${error}"`)
  if (description) parts.push(`error_description="${description.replace(/"/g, "'")}"`)
  if (scope) parts.push(`scope="${scope}"`)
  return `Bearer ${parts.join(', ')}`
}

const unauthorized = (detail: string, error?: string) =>
  new HttpError(401, detail, { headers: { 'www-authenticate': challenge(error, error && detail) } })

/** With AUTH_MODE=jwt, `tokens` verifies them (src/auth/tokens.ts, shared with the RPC doors). */
export function registerAuth(
  app: FastifyInstance,
  config: Config['auth'],
  tokens: TokenVerifier | undefined,
  failures: AuthFailureBudget | undefined,
): void {
  app.decorateRequest('principal', undefined)
  if (config.mode === 'none' || tokens === undefined) return

  const verify = (request: FastifyRequest, token: string): Promise<Principal> =>
    tokens.verify(token).catch((error: unknown) => {
      if (!(error instanceof TokenRejected)) throw error
      const reason = error.cause as Error
      request.log.info({ err: { name: reason.name, message: reason.message } }, 'token rejected')
      throw unauthorized(error.message, 'invalid_token')
    })

  const authorize = (request: FastifyRequest, principal: Principal, needed: string): HttpError | undefined => {
    if (!principal.scopes.has(needed)) {
      return new HttpError(403, missingScope(needed), {
        headers: { 'www-authenticate': challenge('insufficient_scope', missingScope(needed), needed) },
      })
    }
    request.principal = principal
    return undefined
  }

  // A callback hook: a token seen before (the usual case) is checked without a promise.
  app.addHook('onRequest', (request, _reply, done) => {
    // The route's own declaration; a request that matched no route has none, and gets its 404 or 405.
    const access = request.routeOptions.config.access
    if (access === undefined || access.kind === 'public') return done()
    const needed = access.scope
    const header = request.headers.authorization
    if (header === undefined) {
      if (config.publicReads && READ_METHODS.has(request.method)) return done()
      return done(unauthorized('a bearer token is required'))
    }
    const token = bearerToken(header)
    const principal = token === undefined ? undefined : tokens.remembered(token)
    if (principal !== undefined) return done(authorize(request, principal, needed))

    const check = () => {
      if (token === undefined) {
        const malformed = unauthorized('the Authorization header must be "Bearer <JWT>"', 'invalid_request')
        if (failures === undefined) return done(malformed)
        return void failures.failed(request).then(() => done(malformed))
      }
      verify(request, token).then(
        (checked) => done(authorize(request, checked, needed)),
        (error: Error) => {
          if (failures === undefined || !(error instanceof HttpError) || error.statusCode !== 401) return done(error)
          failures.failed(request).then(() => done(error))
        },
      )
    }
    if (failures === undefined) return check()
    // A client that has spent its budget of refused tokens gets 429, and its token is not even verified.
    failures.refusal(request).then(
      (refused) => (refused === undefined ? check() : done(refused)),
      (error: Error) => done(error),
    )
  })
}
