// The one admission step every door runs before a call reaches its operation: who the caller is (the token, if
// any), its request budget, its budget of refused tokens, and the operation's declared access. It returns what it
// decided; the REST hook and the RPC interceptor only translate that into status and headers, or code and details.
//
// An authenticated caller is counted by its subject, so users behind one NAT do not share a budget and a subject
// does not get a fresh one at each address; an anonymous caller, and a token that failed, by the client address
// (IPv6 by its /64, the block one host is usually given). Refused tokens count per address, and an address that has
// spent that budget is refused before its token is even verified.
import ipaddr from 'ipaddr.js'
import { allows } from '../auth/access.ts'
import { bearerToken, missingScope, type Principal, TokenRejected, type TokenVerifier } from '../auth/tokens.ts'
import type { Logger } from '../logger.ts'
import type { BudgetState, Budgets } from './budgets.ts'
import type { Operation } from './operation.ts'

export interface Call {
  /** The client address (src/admission/client-address.ts). */
  client: string
  /** The Authorization header or metadata, as sent. */
  authorization: string | undefined
  /** The operation called, as its resource declares it (src/admission/operation.ts). */
  operation: Operation
  log: Pick<Logger, 'info' | 'warn'>
}

export type Refusal =
  | { kind: 'unauthenticated'; detail: string; error?: 'invalid_token' | 'invalid_request' }
  | { kind: 'forbidden'; detail: string; scopes: readonly string[] }
  | { kind: 'rate-limited'; detail: string; budget: BudgetState }
  | { kind: 'token-budget-spent'; detail: string; budget: BudgetState }

export interface Admission {
  /** Undefined when the call is admitted. */
  refusal: Refusal | undefined
  /** The caller verified by its token, when it sent one that was good. */
  principal: Principal | undefined
  /** The request budget after this call, for the RateLimit-* answer headers; undefined when not limited. */
  budget: BudgetState | undefined
}

/** Decides at once where it can (no budget to count, no token to verify), else with a promise. */
export type Admit = (call: Call) => Admission | Promise<Admission>

export function createAdmission(options: {
  /** Undefined with AUTH_MODE=none: every call is anonymous and every access is open. */
  tokens: TokenVerifier | undefined
  publicReads: boolean
  budgets: Budgets
}): Admit {
  const { tokens, publicReads, budgets } = options
  const { requests, failures } = budgets

  /** The caller when it is known at once: anonymous where no token is needed, or a token verified before. */
  function knownCaller(call: Call): Principal | undefined | typeof PENDING {
    const { access, effect } = call.operation
    if (tokens === undefined || access.kind === 'public') return undefined
    if (call.authorization === undefined) return publicReads && effect === 'read' ? undefined : PENDING
    const token = bearerToken(call.authorization)
    return (token === undefined ? undefined : tokens.remembered(token)) ?? PENDING
  }

  /** A caller not known at once: the token it needs and lacks, or one not verified yet, checked within budget. */
  async function authenticate(call: Call, verifier: TokenVerifier): Promise<Principal | Refusal> {
    if (call.authorization === undefined) return { kind: 'unauthenticated', detail: 'a bearer token is required' }
    const address = addressKey(call.client)
    const spent = await failures?.spent(address)
    if (spent !== undefined) return { kind: 'token-budget-spent', detail: failures?.detail ?? '', budget: spent }
    const refuse = async (refusal: Refusal) => {
      if ((await failures?.failed(address)) === true) {
        call.log.warn({ client: address }, 'authentication failure budget used up; refusing tokens')
      }
      return refusal
    }
    const token = bearerToken(call.authorization)
    if (token === undefined) {
      return refuse({
        kind: 'unauthenticated',
        detail: 'the Authorization header must be "Bearer <JWT>"',
        error: 'invalid_request',
      })
    }
    try {
      return await verifier.verify(token)
    } catch (error) {
      if (!(error instanceof TokenRejected)) throw error
      const reason = error.cause as Error
      call.log.info({ err: { name: reason.name, message: reason.message } }, 'token rejected')
      return refuse({ kind: 'unauthenticated', detail: error.message, error: 'invalid_token' })
    }
  }

  /** The rest of the step once the caller is known: its request budget, then the refusal or the access check. */
  async function count(call: Call, principal: Principal | undefined, refusal: Refusal | undefined): Promise<Admission> {
    let budget: BudgetState | undefined
    if (limited(call) && requests !== undefined) {
      // Every call is counted, refused ones included: by its subject when it has one, else by its address.
      const taken = await requests.take(principal === undefined ? addressKey(call.client) : `sub:${principal.subject}`)
      budget = taken
      if (taken.exceeded)
        return { refusal: { kind: 'rate-limited', detail: requests.detail, budget }, principal, budget }
    }
    return decide(call, principal, refusal, budget)
  }

  return (call) => {
    // The usual calls are decided without a promise: no budget to count, and no token or one verified before.
    const known = knownCaller(call)
    if (known !== PENDING && !(limited(call) && requests !== undefined)) {
      return decide(call, known, undefined, undefined)
    }
    // PENDING only comes with a verifier.
    const caller = known === PENDING ? authenticate(call, tokens as TokenVerifier) : Promise.resolve(known)
    return caller.then((outcome) =>
      outcome !== undefined && 'kind' in outcome ? count(call, undefined, outcome) : count(call, outcome, undefined),
    )
  }
}

const PENDING = Symbol('pending')

const limited = (call: Call) => call.operation.limit === 'api'

function decide(
  call: Call,
  principal: Principal | undefined,
  refusal: Refusal | undefined,
  budget: BudgetState | undefined,
): Admission {
  if (refusal !== undefined) return { refusal, principal, budget }
  const { access } = call.operation
  if (principal !== undefined && access.kind === 'scope' && !allows(access, principal.scopes)) {
    return {
      refusal: { kind: 'forbidden', detail: missingScope(access.scopes), scopes: access.scopes },
      principal,
      budget,
    }
  }
  return { refusal: undefined, principal, budget }
}

/** The budget key of an address: IPv6 by its /64, an IPv4-mapped IPv6 address as the IPv4 it is. */
export function addressKey(address: string): string {
  if (!ipaddr.isValid(address)) return `ip:${address}`
  const parsed = ipaddr.process(address)
  if (parsed.kind() === 'ipv4') return `ip:${parsed.toString()}`
  const prefix = ipaddr.IPv6.networkAddressFromCIDR(`${parsed.toString()}/64`)
  return `ip:${prefix.toString()}/64`
}
