// Bearer tokens (AUTH_MODE=jwt), for every door of the service: verified by jose (pinned algorithms, iss, aud,
// exp, nbf, sub required) and remembered once good. The HTTP pipeline and the RPC interceptors both ask here, so a
// token means the same over REST, Connect and gRPC.
import { createRemoteJWKSet, importSPKI, type JWTPayload, type JWTVerifyGetKey, jwtVerify, type KeyObject } from 'jose'
import type { Config } from '../config/config.ts'

export type JwtConfig = Extract<Config['auth'], { mode: 'jwt' }>

export interface Principal {
  subject: string
  scopes: ReadonlySet<string>
}

/** Why a token was refused; the message is safe to show the caller. */
export class TokenRejected extends Error {
  override readonly name = 'TokenRejected'
}

/** The token of an `Authorization: Bearer <JWT>` value, or undefined when the value has another shape. */
export function bearerToken(header: string): string | undefined {
  return /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*)$/.exec(header)?.[1]
}

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

export interface TokenVerifier {
  /** A token verified before and still good: answered without a promise, the usual case. */
  remembered(token: string): Principal | undefined
  /** Verifies the token; rejects with TokenRejected (carrying jose's reason as its cause) when it is not good. */
  verify(token: string): Promise<Principal>
}

export async function createTokenVerifier(config: JwtConfig): Promise<TokenVerifier> {
  const keys = await keysFor(config)
  const verified = new VerifiedTokens()
  // A token already being verified is not verified again: the requests a client sends at once after a token
  // refresh share one check, and one outcome.
  const pending = new Map<string, Promise<Principal>>()
  const check = async (token: string): Promise<Principal> => {
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
      throw new TokenRejected('the bearer token is invalid or expired', { cause: error })
    }
    const principal = { subject: payload.sub as string, scopes: scopesOf(payload) }
    verified.set(token, principal, (payload.exp as number) * 1000 + config.clockSkewSeconds * 1000)
    return principal
  }
  return {
    remembered: (token) => verified.get(token),
    verify(token) {
      const inFlight = pending.get(token)
      if (inFlight !== undefined) return inFlight
      const checked = check(token).finally(() => pending.delete(token))
      pending.set(token, checked)
      return checked
    },
  }
}

/** The detail of a refusal for want of a scope: one text for every door and for the documents. */
const anyOf = new Intl.ListFormat('en', { type: 'disjunction' })
export const missingScope = (scopes: readonly string[]) => `the token lacks the ${anyOf.format(scopes)} scope`
