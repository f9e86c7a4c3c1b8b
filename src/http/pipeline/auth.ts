// AUTH_MODE=jwt: bearer tokens on every route that declares a scope (src/http/toolkit/access.ts), verified by jose
// (pinned algorithms, iss, aud, exp, nbf). 401 with WWW-Authenticate when the token is missing or bad, 403 without
// the route's scope;
// 429 for a client that has used up its budget of refused tokens (AUTH_FAILURE_LIMIT): until its window ends, no
// token of that client is checked, and only those verified here before are honoured.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { createRemoteJWKSet, importSPKI, type JWTPayload, type JWTVerifyGetKey, jwtVerify, type KeyObject } from 'jose'
import type { Config } from '../../config/config.ts'
import { HttpError } from '../toolkit/problem.ts'
import { missingScope } from './access.ts'
import type { AuthFailureBudget } from './rate-limit.ts'

type JwtConfig = Extract<Config['auth'], { mode: 'jwt' }>

export interface Principal {
  subject: string
  scopes: ReadonlySet<string>
}

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

function scopesOf(payload: JWTPayload): Set<string> {
  const scope = payload.scope ?? payload.scp
  if (typeof scope === 'string') return new Set(scope.split(' ').filter(Boolean))
  if (Array.isArray(scope)) return new Set(scope.filter((item): item is string => typeof item === 'string'))
  return new Set()
}

async function keysFor(config: JwtConfig): Promise<JWTVerifyGetKey | KeyObject | Uint8Array> {
  if (config.jwksUrl !== undefined) {
    // Cached; refetched at most every 30 s when a token names a key id it does not know (key rotation).
    return createRemoteJWKSet(new URL(config.jwksUrl), { cacheMaxAge: 10 * 60_000, cooldownDuration: 30_000 })
  }
  return importSPKI(config.publicKey as string, config.algorithms[0] as string)
}

/**
 * Tokens already verified, so that a client's next requests skip the signature check (an ES256 verification
 * halved the throughput of reads). Keyed by the whole token, signature included, so a changed token is checked
 * afresh; an entry lasts until the token expires, and at most a minute, so a key withdrawn from the JWKS stops
 * being honoured as soon as jose's own key cache would let it go.
 */
class VerifiedTokens {
  static readonly MAX_ENTRIES = 10_000
  static readonly MAX_AGE_MS = 60_000
  readonly #entries = new Map<string, { principal: Principal; until: number }>()

  get(token: string): Principal | undefined {
    const entry = this.#entries.get(token)
    if (entry === undefined) return undefined
    if (Date.now() < entry.until) return entry.principal
    this.#entries.delete(token)
    return undefined
  }

  set(token: string, principal: Principal, expiresAtMs: number): void {
    // Full: forget the oldest entry (a Map iterates in insertion order).
    if (this.#entries.size >= VerifiedTokens.MAX_ENTRIES)
      this.#entries.delete(this.#entries.keys().next().value as string)
    this.#entries.set(token, { principal, until: Math.min(expiresAtMs, Date.now() + VerifiedTokens.MAX_AGE_MS) })
  }
}

export async function registerAuth(
  app: FastifyInstance,
  config: Config['auth'],
  failures: AuthFailureBudget | undefined,
): Promise<void> {
  app.decorateRequest('principal', undefined)
  if (config.mode === 'none') return
  const keys = await keysFor(config)
  const verified = new VerifiedTokens()

  const verify = async (request: FastifyRequest, token: string): Promise<Principal> => {
    let payload: JWTPayload
    try {
      ;({ payload } = await jwtVerify(token, keys as never, {
        issuer: config.issuer,
        audience: config.audience,
        algorithms: config.algorithms,
        clockTolerance: config.clockSkewSeconds,
        requiredClaims: ['exp', 'sub'],
      }))
    } catch (error) {
      request.log.info({ err: { name: (error as Error).name, message: (error as Error).message } }, 'token rejected')
      throw unauthorized('the bearer token is invalid or expired', 'invalid_token')
    }
    const principal = { subject: payload.sub as string, scopes: scopesOf(payload) }
    verified.set(token, principal, (payload.exp as number) * 1000 + config.clockSkewSeconds * 1000)
    return principal
  }

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
    const token = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*)$/.exec(header)?.[1]
    const principal = token === undefined ? undefined : verified.get(token)
    if (principal !== undefined) return done(authorize(request, principal, needed))

    const check = (forgive: () => void) => {
      if (token === undefined) {
        return done(unauthorized('the Authorization header must be "Bearer <JWT>"', 'invalid_request'))
      }
      verify(request, token).then(
        (checked) => {
          forgive()
          done(authorize(request, checked, needed))
        },
        (error: Error) => done(error),
      )
    }
    if (failures === undefined) return check(() => {})
    // Any credential not seen to be good is charged before it is looked at: a client out of budget gets 429 and
    // its token is not even verified.
    failures.charge(request).then(
      (attempt) => (attempt.refused === undefined ? check(attempt.forgive) : done(attempt.refused)),
      (error: Error) => done(error),
    )
  })
}
